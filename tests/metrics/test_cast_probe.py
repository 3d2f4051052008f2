"""The cast probe measures what share of a known colour cast a method removes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vqe.cli.bench import cast as bench_cast
from vqe.metrics.cast_probe import PROBE_CASTS, cast_removed


def neutral_scene(seed: int = 0) -> np.ndarray:
    """A textured scene whose channel means are equal (grey on average), as grey world assumes."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.1, 0.9, size=(48, 64, 3)).astype(np.float32)
    return image * (image.mean() / image.reshape(-1, 3).mean(axis=0))


def grey_world(strength: float):
    """Channel gains towards the common mean, ``strength`` of the way in log gain."""

    def enhance(image: np.ndarray) -> np.ndarray:
        pixels = image.astype(np.float64) / 255.0
        means = pixels.reshape(-1, 3).mean(axis=0)
        gains = (means.mean() / means) ** strength
        return (np.clip(pixels * gains * 2.0, 0, 1) * 255 + 0.5).astype(np.uint8)

    return enhance


def test_the_identity_removes_nothing_and_grey_world_removes_its_strength() -> None:
    scene = neutral_scene()
    identity = cast_removed(lambda image: image, scene)
    assert len(identity) == len(PROBE_CASTS)
    assert max(abs(share) for share in identity) < 0.05, identity
    full = cast_removed(grey_world(1.0), scene)
    assert min(full) > 0.95, full
    half = cast_removed(grey_world(0.5), scene)
    assert all(0.4 < share < 0.6 for share in half), half


def test_a_method_that_strengthens_the_cast_scores_below_zero() -> None:
    doubled = cast_removed(grey_world(-1.0), neutral_scene(1))
    assert max(doubled) < -0.8, doubled


def test_a_colourless_output_gives_nan_not_a_division_error() -> None:
    black = cast_removed(lambda image: np.zeros_like(image), neutral_scene())
    assert all(np.isnan(share) for share in black)
    with pytest.raises(ValueError, match="H×W×3"):
        cast_removed(lambda image: image, np.zeros((8, 8)))


def test_bench_cast_measures_the_baseline_and_the_shipped_model(tmp_path: Path) -> None:
    code = bench_cast.main(["--photos", "astronaut", "--height", "48", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "cast.json").read_text())
    assert set(result["shares"]) == {"baseline", bench_cast.DEFAULT_MODEL}
    assert result["splits"] == {"astronaut": "test"}
    baseline = result["shares"]["baseline"]["astronaut"]
    assert 0.3 < np.mean(baseline) < 0.8  # its grey world runs at strength 0.6
    assert "| astronaut | test |" in (tmp_path / "cast.md").read_text()


def test_bench_cast_names_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="no-such-model"):
        bench_cast.main(["no-such-model", "--photos", "astronaut", "--height", "32"])
