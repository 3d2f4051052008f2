"""Deprecated alias of ``vqe bench-build-throughput`` (:mod:`vqe.cli.bench.build_throughput`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.build_throughput", "bench-build-throughput")
