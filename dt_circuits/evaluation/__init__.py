"""Playing a DT in the real env: seeded rollouts, worker pools, calibration and Table 1."""
