"""Foundations every layer may use: error types, atomic file I/O, paths, thread policy, tables, progress."""
