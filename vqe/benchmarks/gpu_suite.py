"""Deprecated alias of ``vqe bench-gpu`` (:mod:`vqe.cli.bench.gpu_suite`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.gpu_suite", "bench-gpu")
