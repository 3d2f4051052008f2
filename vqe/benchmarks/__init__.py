"""Benchmarks: scripts that print and save measured figures (python -m vqe.benchmarks.<name>)."""
