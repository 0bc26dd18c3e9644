"""The claims framework: claims as data, checkpoints under test, suites, expectations, reports, the retrain gate,
and the pytest plugin. ``library/`` holds the claims this project ships (one file per hypothesis)."""
