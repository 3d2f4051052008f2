"""The static comparison page: real videos, metrics against targets and inputs, profiles."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqe.cli.study import main
from vqe.study.compare_page import (
    PROFILE_HEIGHT,
    PROFILE_MAX_WIDTH,
    PROFILE_MIN_WIDTH,
    profile_image,
    write_compare_page,
)
from vqe.study.config import StudyError


def test_page_with_targets_and_inputs(method_folders, tmp_path: Path) -> None:
    targets = method_folders["ours"].parent / "targets"
    out = tmp_path / "page" / "index.html"
    assert main(["compare", "--methods", *map(str, method_folders.values()), "--targets",
                 str(targets), "--inputs", str(method_folders["input"]), "--out", str(out),
                 "--copy"]) == 0
    html = out.read_text()
    sources = re.findall(r'<video src="([^"]+)"', html)
    assert len(sources) == 6 and all((out.parent / s).is_file() for s in sources)
    assert all(s.startswith("videos/") for s in sources)  # copied beside the page
    assert "http://" not in html and "https://" not in html and "function SyncGroup" in html
    assert html.count("data:image/png;base64,") == 6  # one temporal profile per method and video
    for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as strip:
            # Readable beside the videos: not a strip a few pixels wide per frame.
            assert strip.height == PROFILE_HEIGHT and strip.width >= PROFILE_MIN_WIDTH
    for column in ("PSNR dB", "SSIM", "flicker"):
        assert f"<th>{column}</th>" in html
    assert "DOVER" not in html  # no critic weights given
    rows = dict(re.findall(r"<tr><td>(\w+)</td><td>([\d.]+)</td>", html))
    assert float(rows["ours"]) > float(rows["baseline"]) > float(rows["input"])  # PSNR order


def test_relative_links_and_errors(method_folders, tmp_path: Path) -> None:
    out = write_compare_page(dict(method_folders), tmp_path / "a" / "b.html")
    sources = re.findall(r'<video src="([^"]+)"', out.read_text())
    assert all(s.startswith("../") and (out.parent / s).resolve().is_file() for s in sources)
    assert "<table" not in out.read_text()  # no reference: no metrics table
    with pytest.raises(StudyError, match="--targets .* lacks"):
        write_compare_page(dict(method_folders), tmp_path / "c.html", targets=tmp_path)


def test_critic_columns_are_the_test_loops_numbers(method_folders, tmp_path: Path) -> None:
    """DOVER and VQA p on the page equal CriticScorer's on the same sampled frames (p: the
    method's frame preferred over the input's, as in the submission CSVs)."""
    import torch

    from vqe.critics.dover import build_dover
    from vqe.critics.scorer import CriticScorer
    from vqe.critics.vqa import load_vqa
    from vqe.study import compare_page

    vqa = load_vqa(None, allow_random=True)
    dover = build_dover(None, allow_random_critics=True, num_frames=2, num_technical_clips=1)
    out = write_compare_page(
        dict(method_folders), tmp_path / "page.html", inputs=method_folders["input"],
        critics=(vqa, dover),
    )  # fmt: skip
    html = out.read_text()
    assert "<th>DOVER</th>" in html and "<th>VQA p</th>" in html
    name = sorted(p.name for p in method_folders["ours"].glob("*.mp4"))[0]
    ours = compare_page._tensor(compare_page._sampled(
        compare_page._frames(method_folders["ours"] / name)))
    inputs = compare_page._tensor(compare_page._sampled(
        compare_page._frames(method_folders["input"] / name)))
    count = min(len(ours), len(inputs))
    with torch.no_grad():
        expected = CriticScorer(vqa, dover, input_dover="online")(
            ours[:count], inputs[:count], exact=True
        )
    page = compare_page._critic_scores(
        compare_page._frames(method_folders["ours"] / name),
        compare_page._frames(method_folders["input"] / name), vqa, dover,
    )  # fmt: skip
    assert page["VQA p"] == pytest.approx(float(expected.p.mean()), abs=1e-6)
    assert f"{page['VQA p']:.3f}" in html


def test_profiles_are_drawn_at_a_readable_size() -> None:
    """30 frames of a 768-row column: 7-pixel bands, one per frame, rows averaged (6 to 1) to
    the page height; a long clip is averaged down to the widest strip."""
    rng = np.random.default_rng(0)
    profile = rng.integers(0, 256, size=(768, 30, 3), dtype=np.uint8)
    image = np.asarray(profile_image(profile))
    band = -(-PROFILE_MIN_WIDTH // 30)
    assert image.shape == (PROFILE_HEIGHT, 30 * band, 3) and 30 * band >= PROFILE_MIN_WIDTH
    frames = image.reshape(PROFILE_HEIGHT, 30, band, 3)
    assert (frames == frames[:, :, :1]).all()  # each frame one band of equal columns
    rows = profile.reshape(PROFILE_HEIGHT, 768 // PROFILE_HEIGHT, 30, 3).mean(axis=1)
    assert np.abs(frames[:, :, 0].astype(float) - rows).max() <= 1  # rows averaged, not dropped
    long = profile_image(rng.integers(0, 256, size=(720, 3000, 3), dtype=np.uint8))
    assert long.size == (PROFILE_MAX_WIDTH, PROFILE_HEIGHT)
