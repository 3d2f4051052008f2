"""Deprecated alias of ``vqe score-outputs`` (:mod:`vqe.cli.score_outputs`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.metrics.score_outputs", "score-outputs")
