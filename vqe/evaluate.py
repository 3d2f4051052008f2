"""Deprecated alias of ``vqe evaluate`` (:mod:`vqe.cli.evaluate`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.evaluate", "evaluate")
