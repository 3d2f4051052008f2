"""Deprecated alias of ``vqe build`` (:mod:`vqe.cli.build`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.data.build", "build")
