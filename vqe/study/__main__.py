"""Deprecated alias of ``vqe study`` (:mod:`vqe.cli.study`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.study", "study")
