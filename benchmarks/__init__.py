"""Conveyor's benchmarks: each module prints its numbers and a ratio against a baseline measured in the same run."""
