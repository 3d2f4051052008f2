"""Deprecated alias of ``vqe p910`` (:mod:`vqe.cli.p910`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.p910", "p910")
