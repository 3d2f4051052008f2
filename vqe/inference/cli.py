"""Deprecated alias of ``vqe enhance`` (:mod:`vqe.cli.enhance`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.inference.cli", "enhance")
