"""Deprecated alias of ``vqe baseline`` (:mod:`vqe.cli.baseline`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.baseline.cli", "baseline")
