"""Deprecated alias of ``vqe bench-frontier`` (:mod:`vqe.cli.bench.frontier`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.frontier", "bench-frontier")
