"""vqe tournament: fractional-win Bradley–Terry on the VQA's preferences.

The fitting tests use preferences drawn from known strengths; the end-to-end test runs RANDOM
critics (cheapest DOVER setting) on tiny clips and recomputes one pair's preference by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vqe.cli.tournament import main
from vqe.conventions import rgb_uint8_to_tensor
from vqe.critics.dover import build_dover
from vqe.critics.frozen import CriticHandle
from vqe.critics.vqa import load_vqa
from vqe.metrics.synthetic_inputs import encode_lossless
from vqe.preference.tournament import (
    FIRST,
    PREFERENCE,
    SECOND,
    VIDEO,
    preference_counts,
    preferences_both_orders,
    rank_comparisons,
    sample_positions,
    symmetric_preference,
)
from vqe.video import read_frames

CHEAP_ARGS = ["--allow-random-critics", "--dover-num-frames", "2", "--dover-technical-clips", "1"]
HEIGHT, WIDTH = 32, 48


def comparisons_from(preferences: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """One row per (pair, video): video k gets the k-th preference of the pair."""
    rows = [
        {VIDEO: f"v{k}", FIRST: first, SECOND: second, PREFERENCE: value}
        for (first, second), values in preferences.items()
        for k, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_sample_positions_are_evenly_spaced() -> None:
    assert sample_positions(10, 4) == [1, 3, 6, 8]
    assert sample_positions(3, 5) == [0, 0, 1, 2, 2]  # fewer frames than samples: repeats
    assert sample_positions(1, 2) == [0, 0]
    with pytest.raises(ValueError):
        sample_positions(0, 8)


def test_fractional_wins_recover_the_strengths_they_came_from() -> None:
    strengths = {"a": 4.0, "b": 1.0, "c": 0.5}
    names = list(strengths)
    preferences = {
        (first, second): [strengths[first] / (strengths[first] + strengths[second])] * 3
        for i, first in enumerate(names)
        for second in names[i + 1 :]
    }
    # Give one pair in the other orientation: it must be turned around, not misread.
    preferences[("c", "a")] = [1.0 - value for value in preferences.pop(("a", "c"))]
    ranking = rank_comparisons(comparisons_from(preferences), n_bootstrap=50)
    geometric_mean = np.exp(np.mean(np.log(list(strengths.values()))))
    scores = {item.method: item for item in ranking.scores}
    assert [item.method for item in ranking.scores] == ["a", "b", "c"]
    for name, strength in strengths.items():
        assert scores[name].score == pytest.approx(strength / geometric_mean, rel=1e-6)
        assert scores[name].votes == 6  # comparisons: 2 pairs × 3 videos
        # Every video says the same: resampling videos cannot move the fit.
        assert scores[name].ci_low == pytest.approx(scores[name].score, rel=1e-6)
    assert "bootstrap over videos" in ranking.interval and ranking.tie == 0.0


def test_videos_that_disagree_widen_the_interval() -> None:
    rng = np.random.default_rng(0)
    preference = np.clip(0.7 + rng.normal(0.0, 0.15, size=12), 0.05, 0.95)
    ranking = rank_comparisons(comparisons_from({("a", "b"): list(preference)}), 200)
    best = ranking.scores[0]
    assert best.method == "a"
    assert best.ci_low < best.score < best.ci_high
    # Two methods: σ(θ_a − θ_b) equals the mean preference (the weighted-likelihood maximum).
    worst = ranking.scores[1]
    assert best.score / (best.score + worst.score) == pytest.approx(preference.mean(), rel=1e-6)


def test_counts_hold_q_for_the_first_and_one_minus_q_for_the_second() -> None:
    table = comparisons_from({("b", "a"): [0.25, 0.5], ("a", "c"): [0.9]})
    pairs, per_video, videos = preference_counts(table)
    assert pairs.methods == ("a", "b", "c") and videos == ["v0", "v1"]
    counts = {(pairs.methods[i], pairs.methods[j]): row for i, j, row in
              zip(pairs.first, pairs.second, pairs.counts)}  # fmt: skip
    np.testing.assert_allclose(counts[("a", "b")], [1.25, 0, 0, 0, 0.75])  # (1 − .25) + (1 − .5)
    np.testing.assert_allclose(counts[("a", "c")], [0.9, 0, 0, 0, 0.1])
    np.testing.assert_allclose(per_video.sum(axis=0), pairs.counts)
    assert per_video.sum(axis=(1, 2)).tolist() == [2.0, 1.0]  # one unit per comparison


def test_both_orders_of_the_siamese_critic_are_averaged() -> None:
    vqa = CriticHandle(load_vqa(None, allow_random=True))
    generator = torch.Generator().manual_seed(0)
    frames_a = torch.rand(3, 3, HEIGHT, WIDTH, generator=generator)
    frames_b = torch.rand(3, 3, HEIGHT, WIDTH, generator=generator)
    dover_a, dover_b = torch.tensor([0.2, 0.5, 0.7]), torch.tensor([0.6, 0.4, 0.1])
    forward, backward = preferences_both_orders(vqa, frames_a, frames_b, dover_a, dover_b, 2)
    with torch.no_grad():
        expected_forward = vqa.module.compare(frames_a, frames_b, dover_a, dover_b)[0][:, 0]
        expected_backward = vqa.module.compare(frames_b, frames_a, dover_b, dover_a)[0][:, 0]
    torch.testing.assert_close(forward, expected_forward)
    torch.testing.assert_close(backward, expected_backward)
    q_ab = symmetric_preference(forward.numpy(), backward.numpy())
    q_ba = symmetric_preference(backward.numpy(), forward.numpy())
    np.testing.assert_allclose(q_ab + q_ba, 1.0, atol=1e-7)


def write_clip(path: Path, seed: int, gain: float = 1.0) -> None:
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 200, size=(HEIGHT, WIDTH, 3)) for _ in range(2)]
    encode_lossless(path, [np.clip(f * gain, 0, 255).astype(np.uint8) for f in frames])


def test_tournament_ranks_what_is_there_and_lists_the_rest(tmp_path: Path) -> None:
    inputs, bright, dark = tmp_path / "inputs", tmp_path / "bright", tmp_path / "dark"
    for index in range(3):
        write_clip(inputs / f"v{index}.mp4", index)
        write_clip(bright / f"v{index}.mp4", index, gain=1.3)
    write_clip(dark / "v0.mp4", 0, gain=0.6)  # v1 missing from dark
    (dark / "v2.mp4").write_bytes(b"corrupt")
    write_clip(dark / "extra.mp4", 9)  # not an input: ignored
    report, plot = tmp_path / "t.json", tmp_path / "t.png"
    code = main(["--methods", f"bright={bright}", f"dark={dark}", "--inputs", str(inputs),
                 "--frames-per-video", "2", "--bootstrap", "50", "--json", str(report),
                 "--plot", str(plot), "--no-progress", *CHEAP_ARGS])  # fmt: skip
    assert code == 1  # a missing and a broken video
    result = json.loads(report.read_text())
    assert result["missing"] == {"dark": ["v1.mp4"]}
    assert [(item["method"], Path(item["file"]).name) for item in result["failed"]] == [
        ("dark", "v2.mp4")
    ]
    assert result["ignored"] == {"dark": ["extra.mp4"]}
    assert result["settings"]["random_critics"] is True
    comparisons = {name: entry["comparisons"] for name, entry in result["methods"].items()}
    assert comparisons == {"input": 6 + 2, "bright": 6 + 2, "dark": 2 + 2}
    assert plot.read_bytes()[:4] == b"\x89PNG"

    # Recompute P(input preferred over dark) on v0 by hand, both orders.
    vqa = load_vqa(None, allow_random=True)
    dover = build_dover(None, True, num_frames=2, num_technical_clips=1)
    x = torch.stack([rgb_uint8_to_tensor(f) for f in read_frames(inputs / "v0.mp4", 30)])
    y = torch.stack([rgb_uint8_to_tensor(f) for f in read_frames(dark / "v0.mp4", 30)])
    with torch.no_grad():
        dx, dy = dover(x), dover(y)
        q = (vqa.compare(x, y, dx, dy)[0] + 1 - vqa.compare(y, x, dy, dx)[0]).mean() / 2
    pair = next(p for p in result["pairs"] if {p["first"], p["second"]} == {"input", "dark"})
    measured = pair["preference"] if pair["first"] == "input" else 1 - pair["preference"]
    assert measured == pytest.approx(q.item(), abs=1e-6)
    assert pair["videos"] == 1 and pair["comparisons"] == 2


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        (["input={dir}"], "reserved"),
        (["a={dir}", "a={dir}"], "given twice"),
        (["nameless"], "expected NAME=DIR"),
        (["a={dir}/nowhere"], "is not a folder"),
    ],
)
def test_bad_method_arguments_are_refused(
    tmp_path: Path, methods: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [spec.format(dir=tmp_path) for spec in methods]
    with pytest.raises(SystemExit) as exit_info:
        main(["--methods", *specs, "--inputs", str(tmp_path), *CHEAP_ARGS])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_each_method_is_encoded_once_per_video(tmp_path: Path, monkeypatch) -> None:
    """The VQA encoder sees every method's frames once, not once per pair and order."""
    from vqe.critics.vqa import VQA
    from vqe.preference.tournament import collect_comparisons

    inputs = tmp_path / "inputs"
    methods = {name: tmp_path / name for name in ("a", "b", "c")}
    for index in range(2):
        write_clip(inputs / f"v{index}.mp4", index)
        for name, gain in zip(methods, (1.2, 0.8, 0.6)):
            write_clip(methods[name] / f"v{index}.mp4", index, gain)
    encoded: list[int] = []
    original = VQA.encode
    monkeypatch.setattr(VQA, "encode", lambda self, x: encoded.append(len(x)) or original(self, x))
    vqa = load_vqa(None, allow_random=True)
    dover = build_dover(None, True, num_frames=2, num_technical_clips=1)
    tournament = collect_comparisons(methods, inputs, vqa, dover, 2, None, progress=False)
    assert sum(encoded) == 2 * 4 * 2  # videos × (input + 3 methods) × frames
    assert len(tournament.comparisons) == 2 * 6 * 2  # videos × pairs × frames
    # The head on cached embeddings equals the full forward pass, both orders.
    row = tournament.comparisons.iloc[0]
    frames = {n: torch.stack([rgb_uint8_to_tensor(f) for f in read_frames(folder / "v0.mp4")])
              for n, folder in {"input": inputs, **methods}.items()}  # fmt: skip
    handle = CriticHandle(dover)
    first, second = frames[row["first"]], frames[row["second"]]
    with torch.no_grad():
        expected = vqa.compare(first, second, handle(first), handle(second))[0][0, 0]
    assert row["p_forward"] == pytest.approx(float(expected), abs=1e-6)
