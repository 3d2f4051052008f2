"""Deprecated alias of ``vqe bench-train-step`` (:mod:`vqe.cli.bench.train_step`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.train_step", "bench-train-step")
