"""Deprecated alias of ``vqe bench-baseline-bar`` (:mod:`vqe.cli.bench.baseline_bar`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.baseline_bar", "bench-baseline-bar")
