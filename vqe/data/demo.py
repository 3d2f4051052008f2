"""Deprecated alias of ``vqe demo`` (:mod:`vqe.cli.demo`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.data.demo", "demo")
