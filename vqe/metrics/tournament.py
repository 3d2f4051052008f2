"""Deprecated alias of ``vqe tournament`` (:mod:`vqe.cli.tournament`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.tournament", "tournament")
