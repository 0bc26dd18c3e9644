"""What suite runs are kept and judged against: recorded expectations, the retrain gate, populations of seeds and
their bands, flake checks."""
