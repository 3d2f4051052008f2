"""MAC counter: exact against hand-computed counts; budget check; CLI contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from config_helpers import compose_config
from torch import nn

from vqe.cli.macs import run
from vqe.macs import (
    MAC_BUDGET,
    MacBudgetError,
    MacReport,
    check_budget,
    count_macs,
)
from vqe.models.enhancer import Enhancer
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import identity_lut, trilinear_lookup
from vqe.models.spatial_lut import SpatialLutStage
from vqe.models.unet import UNetStage


class LutLookup(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("lut", identity_lut(size)[None])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return trilinear_lookup(frames, self.lut)


class Resampler(nn.Module):
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        grid = torch.zeros(1, 5, 7, 2)
        sampled = F.grid_sample(frames, grid, mode="bilinear", align_corners=True)
        return sampled.sum() + F.interpolate(frames, size=(6, 10), mode="bilinear").sum()


def test_small_conv_net_matches_hand_count() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1, stride=2), nn.ReLU()
    )
    height, width = 12, 20
    expected = 3 * 8 * 9 * height * width + 8 * 4 * (height // 2) * (width // 2)
    report = count_macs(net, height, width)
    assert report.total == expected
    assert report.by_module["0"] == 3 * 8 * 9 * height * width
    assert report.parameters[""] == (3 * 9 * 8 + 8) + (8 * 4 + 4)


def test_trilinear_lut_lookup_matches_hand_count() -> None:
    height, width = 10, 14
    pixels = height * width
    # grid = 2·rgb − 1: one multiply per value (3/pixel); 8 corners × 3 channels per pixel.
    assert count_macs(LutLookup(9), height, width).total == 3 * pixels + 8 * 3 * pixels


@pytest.mark.parametrize("num_luts", [1, 4])
def test_spatial_lut_stage_matches_hand_count(num_luts: int) -> None:
    """Per pixel, the deploy graph's atlas lookup of all N bases (two bilinear slices of 3N
    channels, 4 MACs per value each, and the blue lerp) plus the weight maps and the blend."""
    stage = SpatialLutStage(num_luts, 9, [2, 3], [8], 32, 2)
    height, width = 12, 20
    report = count_macs(Enhancer(lut=stage), height, width)
    positions = 3 + 2  # lattice scaling (3 channels), x and y inside a tile
    slices = 2 * (1 + 3 + 4 * 3 * num_luts)  # per slice: tile row (div), 3 muls, the samples
    per_basis = 3 + 4 + 3  # blue lerp (3 channels), weight-map upsample, weighted sum
    per_pixel = positions + slices + per_basis * num_luts  # = 13 + 34 N
    lookup = report.total - report.by_module["lut.predictor"]
    assert lookup == per_pixel * height * width


def test_bilinear_grid_sample_and_interpolation_are_counted() -> None:
    report = count_macs(Resampler(), 8, 8)
    assert report.by_operator["grid_sampler"] == 4 * 3 * 5 * 7
    assert report.by_operator["upsample_bilinear2d"] == 4 * 3 * 6 * 10
    assert report.total == 4 * 3 * 5 * 7 + 4 * 3 * 6 * 10


def test_unet_deploy_graph_matches_hand_count() -> None:
    unet = UNetStage(widths=[8, 16], encoder_depths=[1], middle_depth=1, decoder_depths=[1])
    height, width = 32, 48
    level0 = (height // 2) * (width // 2)  # after pixel-unshuffle by 2
    level1 = level0 // 4
    expected = level0 * 9 * (12 * 8 + 8 * 8 + 8 * 8 + 8 * 12)  # head, encoder, decoder, tail
    expected += level1 * (9 * 8 * 16 + 9 * 16 * 16 + 16 * 32)  # down, middle, 1×1 up
    # An Enhancer is counted as deployed: its RepConv branches fused into one 3×3 conv.
    assert count_macs(Enhancer(None, unet), height, width).total == expected


def test_check_budget_raises_with_macs_limit_and_override() -> None:
    report = MacReport(total=25_000_000_000, height=720, width=1280, by_module={}, by_operator={},
                       parameters={})
    with pytest.raises(MacBudgetError, match=r"25,000,000,000 MACs.*20\.0 GMAC.*allow_over_budget"):
        check_budget(report)
    assert check_budget(report, allow_over=True) is report
    assert check_budget(report, limit=30e9) is report
    small = MacReport(total=1, height=32, width=48, by_module={}, by_operator={}, parameters={})
    with pytest.raises(ValueError, match="1280×720"):
        check_budget(small)


def test_default_preset_is_within_budget() -> None:
    report = check_budget(enhancer_from_preset("lut_unet"))
    assert 12e9 <= report.total <= MAC_BUDGET
    assert report.by_module["unet"] > 0.9 * report.total  # the U-Net gets the budget
    assert report.uncounted_ops == {}


def test_cli_run_prints_table_and_total_last(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = compose_config("macs", ["model_vqe=tiny", "height=32", "width=48"])
    over = compose_config("macs", ["model_vqe=tiny", "height=32", "width=48", "limit=1000"])
    assert run(cfg) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    total = count_macs(enhancer_from_preset("tiny"), 32, 48).total
    assert lines[-1] == f"total_macs={total}"
    assert any(line.startswith("unet ") for line in lines)
    assert run(over) == 1


def test_cli_exits_non_zero_over_the_limit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vqe.cli.macs", "model_vqe=tiny", "height=16", "width=16", "limit=1000"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("total_macs=")
    assert "over budget" in result.stderr
