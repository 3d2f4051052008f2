"""vqe.cli.config_hints: a mistyped Hydra key gets one line naming the nearest key, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vqe import cli
from vqe.cli.config_hints import check_overrides, dotted_keys, unknown_key_message

ROOT = Path(__file__).resolve().parents[1]


def test_dotted_keys_name_every_node() -> None:
    tree = {"trainer": {"max_epochs": 2, "limit": {"val": 1}}, "seed": 0, "ckpt": None}
    assert dotted_keys(tree) == [
        "trainer", "trainer.max_epochs", "trainer.limit", "trainer.limit.val", "seed", "ckpt",
    ]  # fmt: skip


def test_message_names_the_nearest_key_or_how_to_add_one() -> None:
    keys = ["trainer", "trainer.max_epochs", "trainer.max_steps", "dataset", "dataset.path"]
    assert unknown_key_message("trainer.max_epoch", keys) == (
        "error: no config key 'trainer.max_epoch' — did you mean 'trainer.max_epochs'?"
    )
    assert unknown_key_message("datset", keys) == (
        "error: no config key 'datset' — did you mean 'dataset'?"
    )
    assert unknown_key_message("zzz.qqq", keys) == (
        "error: no config key 'zzz.qqq' (to add a new one, write +zzz.qqq=VALUE)"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["trainer.max_epoch=1"], "did you mean 'trainer.max_epochs'?"),
        (["--config-name=vqe", "trainr.max_epochs=1"], "did you mean 'trainer.max_epochs'?"),
        # A key of a group another override selects is found in that group's config.
        (["experiment=stage1_lut", "trainer.max_epoch=3"], "did you mean 'trainer.max_epochs'?"),
        (["hydra.run.dri=/tmp/x"], "did you mean 'hydra.run.dir'?"),
    ],
)
def test_mistyped_keys_are_found(argv: list[str], expected: str) -> None:
    message = check_overrides("vqe", argv)
    assert message is not None and message.startswith("error: no config key ")
    assert message.endswith(expected) and "\n" not in message


@pytest.mark.parametrize(
    "argv",
    [
        ["trainer.max_epochs=1", "+trainer.new_key=1", "hydra.run.dir=/tmp/x"],  # all valid
        ["dataset=oficial"],  # a missing group option: Hydra lists the options itself
        ["trainer.max_epoch=1", "--help"],  # Hydra's help: nothing is composed
        ["trainer.max_epoch=1", "--config-dir=/elsewhere"],  # another config than ours
    ],
)
def test_what_is_not_a_mistyped_key_is_left_to_hydra(argv: list[str]) -> None:
    assert check_overrides("vqe", argv) is None


def test_train_vqe_answers_a_mistyped_key_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "train_vqe.py"), "--config-name=vqe", "trainer.max_epoch=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: no config key 'trainer.max_epoch' — did you mean 'trainer.max_epochs'?\n"
    )
    assert not list(tmp_path.iterdir())  # nothing ran: no outputs/ folder


def test_vqe_hydra_tools_answer_a_mistyped_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["evaluate", "ckpt=x", "evaluation.subst=true"]) == 1
    assert capsys.readouterr().err == (
        "error: no config key 'evaluation.subst' — did you mean 'evaluation.subset'?\n"
    )
    assert cli.HYDRA_TOOLS <= set(cli.TOOLS)


@pytest.mark.parametrize(
    ("module", "override", "nearest"),
    [("vqe.cli.macs", "max_dept=2", "max_depth"), ("vqe.cli.evaluate", "ckp=x", "ckpt")],
)
def test_python_m_hydra_tools_answer_a_mistyped_key(
    module: str, override: str, nearest: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, override],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    key = override.split("=")[0]
    assert result.stderr == f"error: no config key '{key}' — did you mean '{nearest}'?\n"
