"""Trivial module-level task functions for the executor tests. They live apart from the test modules so that a
spawned worker unpickling them imports only this file, not torch and the whole test module (~3 s a worker)."""

from __future__ import annotations


def square(x: int) -> int:
    return x * x


def plus_one(x: int) -> int:
    return x + 1
