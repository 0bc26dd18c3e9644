"""The environment layer: the real MiniGrid env spec, grid states rendered through it, and state families."""
