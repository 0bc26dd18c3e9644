"""What measures and checks are evaluated with: the checkpoint under test, its samples, ablation recipes, metrics,
intervals at the run's family-wise level, results and the counterexample search. Knows measures only by the
protocols in :mod:`.measurement`."""
