"""Deprecated alias of ``vqe bench-bradley-terry-fit`` (:mod:`vqe.cli.bench.bradley_terry_fit`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.bradley_terry_fit", "bench-bradley-terry-fit")
