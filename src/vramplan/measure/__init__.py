"""Measure real peaks on a GPU (optional extra `measure`): plan.py is pure bookkeeping, runner.py needs torch + CUDA."""
