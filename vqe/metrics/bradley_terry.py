"""Deprecated alias of ``vqe bradley-terry`` (:mod:`vqe.cli.bradley_terry`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.bradley_terry", "bradley-terry")
