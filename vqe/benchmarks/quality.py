"""Deprecated alias of ``vqe bench-quality`` (:mod:`vqe.cli.bench.quality`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.quality", "bench-quality")
