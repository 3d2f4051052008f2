"""Deprecated aliases: the benchmarks are commands now, in :mod:`vqe.cli.bench` (``vqe bench-NAME``;
``vqe --help`` lists them). ``python -m vqe.benchmarks.NAME`` still runs them for one release."""
