"""Deprecated alias of ``vqe bench-inference`` (:mod:`vqe.cli.bench.inference`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.inference", "bench-inference")
