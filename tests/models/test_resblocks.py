"""The plain residual-block restoration stage (Summer's): identity at init, any frame size, and a
MAC count that matches the hand count."""

from __future__ import annotations

import torch

from vqe.macs import count_macs
from vqe.models.resblocks import ResidualBlocksStage


def test_untrained_stage_is_the_identity_at_any_size() -> None:
    torch.manual_seed(0)
    stage = ResidualBlocksStage(channels=8, num_blocks=3, unshuffle=2).eval()
    for height, width in ((32, 48), (31, 45)):  # odd sizes are padded and cropped back
        frames = torch.rand(2, 3, height, width)
        with torch.no_grad():
            out = stage(frames)
        assert out.shape == frames.shape
        assert (out - frames).abs().max() < 1e-3


def test_trained_stage_changes_its_input() -> None:
    """The residual path is live: with non-trivial weights the output differs from the input
    (not an identity that holds for any weights)."""
    torch.manual_seed(1)
    stage = ResidualBlocksStage(channels=8, num_blocks=2, unshuffle=2).eval()
    with torch.no_grad():
        stage.tail.weight.normal_(0.0, 0.1)
        frames = torch.rand(1, 3, 16, 16)
        assert (stage(frames) - frames).abs().max() > 1e-2


def test_macs_match_the_hand_count() -> None:
    channels, blocks, factor, height, width = 6, 2, 2, 16, 24
    stage = ResidualBlocksStage(channels, blocks, factor)
    positions = (height // factor) * (width // factor)
    packed = 3 * factor**2
    convs = 9 * positions * (packed * channels + 2 * blocks * channels**2 + channels * packed)
    assert count_macs(stage, height, width).total == convs  # adds and shuffles are free
