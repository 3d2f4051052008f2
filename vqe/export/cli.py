"""Deprecated alias of ``vqe export`` (:mod:`vqe.cli.export`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.export.cli", "export")
