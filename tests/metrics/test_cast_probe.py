"""The cast probe measures what share of a known colour cast a method removes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vqe.cli.bench import cast as bench_cast
from vqe.metrics.cast_probe import PROBE_CASTS, probe_cast


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
    identity = probe_cast(lambda image: image, scene)
    assert len(identity.removed) == len(PROBE_CASTS)
    assert max(abs(share) for share in identity.removed) < 0.05, identity
    assert max(abs(ab) for ab in identity.added) < 1.0  # a neutral scene stays neutral
    full = probe_cast(grey_world(1.0), scene).removed
    assert min(full) > 0.95, full
    half = probe_cast(grey_world(0.5), scene).removed
    assert all(0.4 < share < 0.6 for share in half), half


def test_a_method_that_strengthens_the_cast_scores_below_zero() -> None:
    doubled = probe_cast(grey_world(-1.0), neutral_scene(1)).removed
    assert max(doubled) < -0.8, doubled


def test_a_colourless_output_gives_nan_not_a_division_error() -> None:
    black = probe_cast(lambda image: np.zeros_like(image), neutral_scene())
    assert all(np.isnan(share) for share in black.removed)
    with pytest.raises(ValueError, match="H×W×3"):
        probe_cast(lambda image: image, np.zeros((8, 8)))


def test_the_probe_reports_the_cast_a_method_adds_of_its_own() -> None:
    def warm(image: np.ndarray) -> np.ndarray:
        out = image.astype(np.float64) * np.array([1.2, 1.0, 0.8]) * 2.0
        return np.clip(out, 0, 255).astype(np.uint8)

    probe = probe_cast(warm, neutral_scene(2))
    a, b = probe.added
    assert a > 1.0 and b > 5.0  # redder and yellower than the clean scene
    assert max(abs(share) for share in probe.removed) < 0.2  # a fixed tint removes no cast


def test_bench_cast_measures_the_baseline_and_the_shipped_model(tmp_path: Path) -> None:
    code = bench_cast.main(["--photos", "astronaut", "--height", "48", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "cast.json").read_text())
    assert set(result["probes"]) == {"baseline", bench_cast.DEFAULT_MODEL}
    assert result["splits"] == {"astronaut": "test"}
    baseline = result["probes"]["baseline"]["astronaut"]
    assert 0.3 < np.mean(baseline["removed"]) < 0.8  # its grey world runs at strength 0.6
    assert len(baseline["added"]) == 2
    assert "| astronaut | test |" in (tmp_path / "cast.md").read_text()


def test_bench_cast_names_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="no-such-model"):
        bench_cast.main(["no-such-model", "--photos", "astronaut", "--height", "32"])
