"""Pair scheduling, gold questions, path safety and ``create`` (pure functions and files)."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vqe.study.config import StudyConfig, StudyError, gold_video, method_video, read_config
from vqe.study.create import create_study, parse_methods
from vqe.study.design import (
    DEGRADED,
    GOLD_DEGRADED,
    GOLD_SAME,
    PAIR,
    Trial,
    all_comparisons,
    gold_correct,
    plan_rater,
)
from vqe.study.files import safe_file
from vqe.video import probe, read_frames


def config(**changes) -> StudyConfig:
    values = dict(methods=("a", "b", "c", "d"), videos=("v1.mp4", "v2.mp4", "v3.mp4"),
                  repeats=4, per_rater=18, gold_rate=0.1, gold_source="a", seed=0,
                  token="t", admin_token="u")
    return StudyConfig(**{**values, **changes})


def test_plans_are_balanced_and_never_repeat_a_comparison() -> None:
    study = config(per_rater=7)
    assigned: list[Trial] = []
    plans = []
    for index in range(20):
        plan = plan_rater(study, assigned, random.Random(index))
        pairs = [t for t in plan if t.kind == PAIR]
        assert len({t.comparison for t in pairs}) == len(pairs)  # never twice for one rater
        assert not plan or plan[0].kind == PAIR  # gold is never first
        assigned += plan
        plans.append(plan)
    counts = Counter(t.comparison for t in assigned if t.kind == PAIR)
    assert len(counts) == study.comparisons == 18 and set(counts.values()) == {4}  # full, even
    assert plans[-1] == []  # the study is full
    sides = Counter((t.comparison, t.left) for t in assigned if t.kind == PAIR)
    assert all(sides[(c, c[1])] == sides[(c, c[2])] == 2 for c in counts)  # left/right balanced


def test_gold_questions() -> None:
    plan = plan_rater(config(gold_rate=0.25), [], random.Random(0))
    gold = [t for t in plan if t.kind != PAIR]
    assert len(gold) == 5 and {t.kind for t in gold} == {GOLD_SAME, GOLD_DEGRADED}
    for trial in gold:
        if trial.kind == GOLD_SAME:
            assert trial.left == trial.right == "a"
        else:
            assert {trial.left, trial.right} == {"a", DEGRADED}
    assert [gold_correct(GOLD_SAME, "a", v) for v in range(1, 6)] == [0, 0, 1, 0, 0]
    assert [gold_correct(GOLD_DEGRADED, "a", v) for v in range(1, 6)] == [1, 1, 0, 0, 0]
    assert [gold_correct(GOLD_DEGRADED, DEGRADED, v) for v in range(1, 6)] == [0, 0, 0, 1, 1]
    assert gold_correct(PAIR, "a", 1) is None
    assert not [t for t in plan_rater(config(gold_rate=0), [], random.Random(0)) if t.kind != PAIR]
    assert len(all_comparisons(config())) == 18


@pytest.mark.parametrize("relative", [
    "../secret.txt", "sub/../../secret.txt", "/etc/passwd", str(Path("/etc/passwd")), "..",
    ".", "./a.txt", "sub/./a.txt", "..\\secret.txt", "a.txt\x00.png", "", "C:/x", "sub",
    "missing.txt", "link_out", "sub/link_up", "loop",
])
def test_safe_file_refuses(tmp_path: Path, relative: str) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "link_out")
    os.symlink("../../secret.txt", root / "sub" / "link_up")
    os.symlink("loop", root / "loop")
    assert safe_file(root, "a.txt") == (root / "a.txt").resolve()
    assert safe_file(root, relative) is None


def test_safe_file_follows_links_that_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    os.symlink("sub/a.txt", tmp_path / "inside")
    assert safe_file(tmp_path, "inside") == (tmp_path / "sub" / "a.txt").resolve()


def test_create_copies_videos_and_makes_degraded_gold(study, method_folders) -> None:
    root, made = study
    assert read_config(root) == made
    assert made.methods == ("input", "baseline", "ours") and made.per_rater == 6
    for method, folder in method_folders.items():
        for name in made.videos:
            assert method_video(root, method, name).read_bytes() == (folder / name).read_bytes()
    source = method_video(root, made.gold_source, made.videos[0])
    degraded = gold_video(root, made.videos[0])
    a, b = probe(source), probe(degraded)
    assert (a.width, a.height) == (b.width, b.height) and b.codec == "h264"
    clean = np.stack(list(read_frames(source))).astype(float)
    worse = np.stack(list(read_frames(degraded))).astype(float)
    assert clean.shape == worse.shape
    psnr = 10 * np.log10(255**2 / np.mean((clean - worse) ** 2))
    assert psnr < 30  # clearly degraded (the copies of the originals differ by 0 dB)
    with pytest.raises(StudyError, match="is a study already"):
        create_study(root, method_folders)


def test_create_errors_name_the_problem(tmp_path: Path, method_folders) -> None:
    with pytest.raises(StudyError, match="at least 2 methods"):
        parse_methods([str(method_folders["ours"])])
    with pytest.raises(StudyError, match="not a folder"):
        parse_methods(["a=/nonexistent/x", "b=/nonexistent/y"])
    with pytest.raises(StudyError, match="method name"):
        parse_methods([f"bad/name={method_folders['ours']}", f"b={method_folders['input']}"])
    with pytest.raises(StudyError, match="given twice"):
        parse_methods([f"a={method_folders['ours']}", f"a={method_folders['input']}"])
    assert list(parse_methods([str(method_folders["ours"]), str(method_folders["input"])])) == [
        "ours", "input"]
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "clip_a.mp4").write_bytes((method_folders["ours"] / "clip_a.mp4").read_bytes())
    with pytest.raises(StudyError, match=r"partial \(partial\) lacks \['clip_b.mp4'\]"):
        create_study(tmp_path / "s", {"ours": method_folders["ours"], "partial": partial})
    with pytest.raises(StudyError, match="--per-rater must be 1…6"):
        create_study(tmp_path / "s2", dict(method_folders), per_rater=7)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("clip_a.mp4", "clip_b.mp4"):
        (broken / name).write_bytes(b"not a video")
    with pytest.raises(StudyError, match="method broken: .*clip_a.mp4"):
        create_study(tmp_path / "s3", {"ours": method_folders["ours"], "broken": broken})
    with pytest.raises(StudyError, match="not a study folder"):
        read_config(tmp_path)
