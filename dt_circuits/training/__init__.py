"""Training a DT from trajectories into a checkpoint (CleanRL style: one config dataclass, one loop)."""
