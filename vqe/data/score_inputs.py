"""Deprecated alias of ``vqe score-inputs`` (:mod:`vqe.cli.score_inputs`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.data.score_inputs", "score-inputs")
