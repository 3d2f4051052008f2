"""Deprecated alias of ``vqe pack`` (:mod:`vqe.cli.pack`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.export.pack", "pack")
