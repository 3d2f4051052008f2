"""PSNR, SSIM and LPIPS per frame and per video (vqe.metrics.full_reference), against independent
implementations: scikit-image for PSNR / SSIM, torchmetrics' own LPIPS port for LPIPS."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from vqe.losses import LPIPS_BACKBONE_FILES
from vqe.metrics.full_reference import LPIPS, PSNR, SSIM, build_frame_quality
from vqe.metrics.video_metrics import VideoMetrics


def frame_pairs(seed: int, count: int = 3, height: int = 24, width: int = 32):
    """Targets in [0, 1] and outputs = targets + noise, a little outside [0, 1] at places."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.rand(count, 3, height, width, generator=generator)
    noise = 0.05 * (1 + torch.arange(count)).view(-1, 1, 1, 1)
    outputs = targets + noise * torch.randn(targets.shape, generator=generator)
    return outputs, targets


def reference(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per frame [psnr, ssim] from scikit-image on the clamped frames, in float64."""
    rows = []
    for output, target in zip(outputs, targets):
        a = output.clamp(0, 1).permute(1, 2, 0).double().numpy()
        b = target.permute(1, 2, 0).double().numpy()
        psnr = peak_signal_noise_ratio(b, a, data_range=1.0)
        ssim = structural_similarity(
            a, b, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )  # fmt: skip
        rows.append([psnr, ssim])
    return np.array(rows)


@pytest.fixture()
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch.hub's cache pointed at an empty folder: no LPIPS backbone there."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_psnr_and_ssim_equal_scikit_image(empty_hub: Path) -> None:
    quality = build_frame_quality(lpips=False)
    outputs, targets = frame_pairs(seed=0)
    values = quality(outputs, targets)
    assert quality.columns == (PSNR, SSIM) and values.shape == (3, 2)
    np.testing.assert_allclose(values.numpy(), reference(outputs, targets), rtol=1e-5)
    assert values[0, 0] > values[1, 0] > values[2, 0]  # more noise, lower PSNR
    identical = quality(targets, targets)
    assert torch.isinf(identical[:, 0]).all() and torch.allclose(identical[:, 1], torch.ones(3))


def test_per_video_means_count_each_frame_once(empty_hub: Path) -> None:
    quality = build_frame_quality(lpips=False)
    outputs, targets = frame_pairs(seed=1, count=5)
    metrics = VideoMetrics()
    subsets = ["synthetic"] * 5
    videos = ["video_0001", "video_0001", "video_0001", "video_0002", "video_0002"]
    frames = [0, 1, 2, 0, 1]
    metrics.add_quality(subsets[:3], videos[:3], frames[:3], quality(outputs[:3], targets[:3]))
    metrics.add_quality(subsets[3:], videos[3:], frames[3:], quality(outputs[3:], targets[3:]))
    # A repeated frame (what a distributed sampler pads with) replaces, not adds.
    metrics.add_quality(subsets[:1], videos[:1], frames[:1], quality(outputs[:1], targets[:1]))
    expected = reference(outputs, targets)
    means = metrics.quality_means()
    assert set(means) == {("synthetic", "video_0001"), ("synthetic", "video_0002")}
    count, values = means[("synthetic", "video_0001")]
    assert count == 3 and values == pytest.approx(expected[:3].mean(axis=0).tolist(), rel=1e-5)
    count, values = means[("synthetic", "video_0002")]
    assert count == 2 and values == pytest.approx(expected[3:].mean(axis=0).tolist(), rel=1e-5)


def test_lpips_is_left_out_with_one_log_line_without_its_backbone(
    empty_hub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="vqe.metrics.full_reference"):
        quality = build_frame_quality()
    assert quality.columns == (PSNR, SSIM)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert "without the LPIPS column" in lines[0]
    assert str(empty_hub / "checkpoints" / LPIPS_BACKBONE_FILES["alex"]) in lines[0]
    assert "lpips_backbone_weights" in lines[0]
    outputs, targets = frame_pairs(seed=2)
    assert quality(outputs, targets).shape == (3, 2)


def test_lpips_with_a_local_backbone_equals_torchmetrics(empty_hub: Path) -> None:
    """A seeded stand-in for torchvision's alexnet checkpoint, put where torchvision's cache
    looks: our LPIPS (the lpips package) and torchmetrics' port must agree on it. (Test only —
    a random backbone never reaches a reported table.)"""
    torch.manual_seed(0)
    path = empty_hub / "checkpoints" / LPIPS_BACKBONE_FILES["alex"]
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)

    quality = build_frame_quality()
    assert quality.columns == (PSNR, SSIM, LPIPS)
    outputs, targets = frame_pairs(seed=3, height=64, width=64)
    values = quality(outputs, targets)
    independent = LearnedPerceptualImagePatchSimilarity("alex", reduction="none", normalize=True)
    expected = independent(outputs.clamp(0, 1), targets)
    np.testing.assert_allclose(values[:, 2].numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(values[:, :2].numpy(), reference(outputs, targets), rtol=1e-5)

    # The same file named explicitly (evaluation.quality.lpips_backbone_weights).
    moved = path.rename(empty_hub / "alexnet.pth")
    assert build_frame_quality(lpips_backbone_weights=moved).columns[-1] == LPIPS


def test_bad_frames_are_named(empty_hub: Path) -> None:
    quality = build_frame_quality(lpips=False)
    outputs, targets = frame_pairs(seed=4)
    with pytest.raises(ValueError, match="one shape"):
        quality(outputs, targets[:, :, :-1])
    with pytest.raises(ValueError, match="larger than 10×10"):
        quality(outputs[..., :8, :8], targets[..., :8, :8])
