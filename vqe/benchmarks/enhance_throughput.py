"""Deprecated alias of ``vqe bench-enhance-throughput`` (:mod:`vqe.cli.bench.enhance_throughput`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.benchmarks.enhance_throughput", "bench-enhance-throughput")
