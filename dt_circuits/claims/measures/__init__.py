"""What a check measures, per example: behaviour and ablation on state families, paths, weight readings, rollouts,
the MemoryDT measures."""
