"""Benchmarks: scripts that print and save measured figures (vqe bench-NAME; vqe --help lists them)."""
