"""Deprecated alias of ``vqe bench-critics`` (:mod:`vqe.cli.bench.critics`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.critics", "bench-critics")
