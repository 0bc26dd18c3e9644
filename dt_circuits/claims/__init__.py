"""The claims framework, split by job (each sub-package imports only those after it in this list; an
import-linter contract checks it):

- ``plugin`` — the pytest plugin: claim files as test items, recorded negatives as strict xfails.
- ``records`` — what runs are kept and judged against: expectations, the retrain gate, populations, flake checks.
- ``output`` — what people and programs read: the suite's JSON and table, the HTML report, README tables.
- ``suite`` — finding claim files and running them; ``roles`` — which component plays each role a claim names.
- ``language`` — ``Claim`` and ``Check``: what a claim file writes (imported from :mod:`dt_circuits.claim`).
- ``measures`` — what a check measures: behaviour, ablation under every recipe, paths, weights, rollouts, memory.
- ``evaluation`` — what measures and checks are evaluated with: the subject, samples, recipes, metrics, intervals
  at the family-wise level, results and the counterexample search.

The claims this project ships are files in the repository's top-level ``claims/`` folder.
"""
