"""Offline data: the trajectory format, scripted policies and PPO as sources, collection."""
