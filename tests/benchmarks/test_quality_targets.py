"""The quality targets are judged per clip: a mean cannot hide a clip that got worse."""

from __future__ import annotations

import pytest

from vqe.cli.bench.quality_targets import as_records, judge, markdown_lines


def _clip(psnr: float, ssim: float = 0.7, ciede: float = 8.0, cast: float = 5.0,
          flicker: float = 0.5) -> dict[str, float | None]:  # fmt: skip
    return {"psnr": psnr, "ssim": ssim, "ciede2000": ciede, "cast": cast, "flicker": flicker}


def test_a_large_mean_gain_does_not_hide_a_clip_below_the_baseline() -> None:
    baseline = {"a": _clip(16.0), "b": _clip(16.0), "c": _clip(16.0)}
    final = {"a": _clip(25.0, cast=4.0, ciede=7.0), "b": _clip(25.0, cast=4.0, ciede=7.0),
             "c": _clip(15.5, cast=6.0, ciede=7.0)}  # fmt: skip
    verdicts = judge(final, baseline, ["a", "b", "c"])
    mean_psnr, per_clip_psnr, ciede, cast, ssim, flicker = verdicts
    assert mean_psnr.met and "+5.83" in mean_psnr.detail  # (25 + 25 + 15.5) / 3 − 16
    assert not per_clip_psnr.met and per_clip_psnr.failing_clips == ("c",)
    assert ciede.met and not cast.met and cast.failing_clips == ("c",)
    assert ssim.met and flicker.met  # equal to the baseline's: "at least" / "no higher"


def test_every_target_met_and_missed() -> None:
    baseline = {"a": _clip(16.0), "b": _clip(17.0)}
    better = {"a": _clip(19.5, 0.8, 6.0, 3.0, 0.4), "b": _clip(20.5, 0.8, 6.0, 3.0, 0.4)}
    assert all(verdict.met for verdict in judge(better, baseline, ["a", "b"]))
    worse = {"a": _clip(18.0, 0.6, 9.0, 6.0, 0.6), "b": _clip(16.5, 0.6, 9.0, 6.0, 0.6)}
    verdicts = judge(worse, baseline, ["a", "b"])
    assert not any(verdict.met for verdict in verdicts)
    # Only the clips judged count: a clip of another split is not looked at.
    assert judge(better, {**baseline, "v": _clip(30.0)}, ["a", "b"])[1].met


def test_a_missing_metric_is_an_error_not_a_pass() -> None:
    final = {"a": {**_clip(20.0), "ssim": None}}
    with pytest.raises(ValueError, match="ssim"):
        judge(final, {"a": _clip(16.0)}, ["a"])
    with pytest.raises(ValueError, match="no clips"):
        judge(final, {"a": _clip(16.0)}, [])


def test_the_markdown_table_names_the_clips_that_miss() -> None:
    baseline = {"a": _clip(16.0), "b": _clip(16.0)}
    final = {"a": _clip(20.0), "b": _clip(15.0)}
    lines = markdown_lines(as_records(judge(final, baseline, ["a", "b"])), "test")
    row = next(line for line in lines if "every clip" in line and "PSNR" in line)
    assert "**NOT met**" in row and row.rstrip(" |").endswith("b")
