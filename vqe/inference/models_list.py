"""Deprecated alias of ``vqe models`` (:mod:`vqe.cli.models`), kept for one release."""

if __name__ == "__main__":
    from vqe.moved import run_moved

    run_moved("vqe.inference.models_list", "models")
