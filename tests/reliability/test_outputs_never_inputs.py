"""No tool writes over what it reads (issue 25, item 2): an output path that is one of the
tool's inputs, or lies inside an input folder, is refused in one line before any work, and the
input is left byte for byte as it was. (The study's own files: test_study_reliability.py; a
training run's directory: test_training_reliability.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from model_helpers import write_checkpoint

from vqe.cli import (
    bradley_terry,
    p910,
    score_outputs,
    synthetic_inputs,
    temporal,
    tournament,
)
from vqe.cli.baseline import main as baseline_main
from vqe.cli.enhance import main as enhance_main
from vqe.cli.export import main as export_main
from vqe.models.loading import enhancer_from_preset
from vqe.video import write_video


def clip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)])
    return path


def votes_csv(path: Path) -> Path:
    path.write_text("left,right,vote\na,b,1\nb,c,2\na,c,4\n")
    return path


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# Each case: (build the inputs under tmp and return the tool's arguments, the tool's main).
Case = tuple[Callable[[Path], list[str]], Callable[[list[str]], int]]
CASES: dict[str, Case] = {
    "enhance into its input folder": (
        lambda d: ["--ckpt", str(write_checkpoint(enhancer_from_preset("tiny"), "tiny",
                                                  d / "m.ckpt")),
                   "--dir_in", str(clip(d / "in" / "a.mp4").parent), "--dir_out", str(d / "in"),
                   "--device", "cpu", "--no-progress"],
        enhance_main,
    ),  # fmt: skip
    "baseline into a folder inside its input": (
        lambda d: ["--dir_in", str(clip(d / "in" / "a.mp4").parent), "--dir_out",
                   str(d / "in" / "out")],
        baseline_main,
    ),  # fmt: skip
    "export over its checkpoint": (
        lambda d: [str(write_checkpoint(enhancer_from_preset("tiny"), "tiny", d / "m.onnx")),
                   "--format", "onnx", "--out", str(d / "m.onnx"), "--overwrite"],
        export_main,
    ),  # fmt: skip
    "bradley-terry json over its votes": (
        lambda d: [str(votes_csv(d / "votes.csv")), "--json", str(d / "votes.csv")],
        bradley_terry.main,
    ),
    "bradley-terry plot over its votes": (
        lambda d: [str(votes_csv(d / "votes.png")), "--plot", str(d / "votes.png")],
        bradley_terry.main,
    ),
    "p910 over its ccr file": (
        lambda d: [str(votes_csv(d / "ccr.csv")), str(d / "ccr.csv")],
        p910.main,
    ),
    "temporal profile over its input": (
        lambda d: [str(clip(d / "o.mp4")), str(clip(d / "i.mp4")), "--profile", str(d / "i.mp4")],
        temporal.main,
    ),
    "score-outputs into its enhanced folder": (
        lambda d: ["--enhanced", str(clip(d / "enh" / "a.mp4").parent), "--data-root", str(d),
                   "--out", str(d / "enh" / "scores"), "--allow-random-critics"],
        score_outputs.main,
    ),  # fmt: skip
    "tournament json inside a method folder": (
        lambda d: ["--methods", f"ours={clip(d / 'ours' / 'a.mp4').parent}", "--inputs",
                   str(clip(d / "in" / "a.mp4").parent), "--json", str(d / "ours" / "r.json"),
                   "--allow-random-critics"],
        tournament.main,
    ),  # fmt: skip
    "synthetic-inputs into its data root": (
        lambda d: ["--data-root", str(clip(d / "root" / "x.mp4").parent), "--out",
                   str(d / "root" / "synthetic")],
        synthetic_inputs.main,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_arguments, tool = CASES[case]
    arguments = make_arguments(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert tool(arguments) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is, or lies inside, the input" in lines[0], lines
    assert snapshot(tmp_path) == before
