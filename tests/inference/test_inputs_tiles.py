"""``vqe enhance`` on the inputs users have (files, folders, other containers, images), in
tiles (``--tile``), in fp16 (``--half``), and ``vqe models``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import trained_like, write_checkpoint
from PIL import Image

from vqe.cli import models as models_command
from vqe.cli.enhance import main
from vqe.inference.backends import TorchBackend, tiled_backend
from vqe.inference.presets import preset_cost
from vqe.models import pretrained
from vqe.models.loading import enhancer_from_preset
from vqe.video import OFFICIAL_FPS, OFFICIAL_PIX_FMT, probe, read_frames, write_video

#: The tiny preset's U-Net sees 16 pixels each way (measured: with 16 pixels of overlap tiles
#: equal the whole frame, with 14 they do not).
RECEPTIVE_RADIUS = 16


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    return write_checkpoint(trained_like(enhancer_from_preset("tiny")), "tiny", folder / "t.ckpt")


def frames(count: int = 3, height: int = 32, width: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def clip(path: Path, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames(), **options)
    return path


def image(path: Path, size: tuple[int, int] = (20, 14), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], len(mode)), np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return path


def enhance(checkpoint: Path, *arguments: object) -> int:
    return main(["--ckpt", str(checkpoint), "--device", "cpu", "--no-progress",
                 *map(str, arguments)])  # fmt: skip


def official(path: Path, count: int = 3) -> bool:
    info = probe(path)
    return (info.codec, info.pix_fmt, info.fps) == ("h264", OFFICIAL_PIX_FMT, OFFICIAL_FPS) and (
        len(list(read_frames(path))) == count
    )


# --------------------------------------------------------------------------- inputs


def test_a_single_file_and_other_containers_become_official_mp4s(
    checkpoint: Path, tmp_path: Path
) -> None:
    mp4 = clip(tmp_path / "in" / "a.mp4")
    mov = clip(tmp_path / "elsewhere" / "talk.MOV")
    mkv = clip(tmp_path / "elsewhere" / "c.mkv")
    avi = clip(tmp_path / "elsewhere" / "d.avi")
    assert enhance(checkpoint, mp4, "--dir_out", tmp_path / "one") == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["a.mp4"]
    assert official(tmp_path / "one" / "a.mp4")
    # Several files after --dir_in, and positional ones, in one run.
    assert enhance(checkpoint, mkv, "--dir_in", mov, avi, "--dir_out", tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c.mp4", "d.mp4", "talk.mp4"]
    assert all(official(path) for path in (tmp_path / "out").iterdir())


def test_images_become_images_of_the_same_name(checkpoint: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    png = image(photos / "b.png")
    jpg = image(photos / "a.jpg", size=(33, 17))
    alpha = image(tmp_path / "logo.png", mode="RGBA")
    assert enhance(checkpoint, photos, alpha, "--dir_out", tmp_path / "out") == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png", "logo.png"]
    with Image.open(out / "b.png") as written:
        assert written.format == "PNG" and written.size == (20, 14)
        enhanced = np.asarray(written)
    assert np.abs(enhanced.astype(int) - np.asarray(Image.open(png))).mean() > 1.0  # changed
    with Image.open(out / "a.jpg") as written:
        assert written.format == "JPEG" and written.size == (33, 17)
    with Image.open(out / "logo.png") as written:
        assert written.mode == "RGBA"
        kept = np.asarray(written)[..., 3]
    np.testing.assert_array_equal(kept, np.asarray(Image.open(alpha))[..., 3])
    assert jpg.exists() and png.exists()  # the inputs are untouched


def test_bad_inputs_are_named_and_the_good_ones_finish(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = clip(tmp_path / "in" / "good.mp4")
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a")
    twin_mov = clip(tmp_path / "in" / "twin.mov")
    twin_mp4 = clip(tmp_path / "other" / "twin.mp4")
    missing = tmp_path / "nowhere.mp4"
    (tmp_path / "in" / "notes.txt").write_text("not a video")
    code = enhance(checkpoint, tmp_path / "in", gif, twin_mp4, missing, "--dir_out",
                   tmp_path / "out")  # fmt: skip
    assert code == 1
    report = capsys.readouterr().out
    assert "wrote 1 videos" in report and "FAILED 4" in report
    assert f"{gif}: not a video or image vqe reads (mp4, mov, mkv, webm, avi, png, jpg); " \
        "convert it first" in report
    assert f"{missing}: no such file or folder" in report
    assert f"{twin_mov} and {twin_mp4} would all be written to {tmp_path / 'out' / 'twin.mp4'}" \
        in report or f"{twin_mp4} and {twin_mov}" in report
    assert "ignored 1 files that are not mp4, mov" in report and "notes.txt" in report
    assert [p.name for p in (tmp_path / "out").iterdir()] == [good.name]


def test_a_lone_bad_input_is_a_one_line_error(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a")
    assert enhance(checkpoint, gif, "--dir_out", tmp_path / "out") == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {gif}: not a video or image vqe reads (mp4, mov, mkv, webm, avi, png, jpg); "
        "convert it first"
    )
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_an_input_file_is_refused(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clip(tmp_path / "a.mp4")
    before = source.read_bytes()
    assert enhance(checkpoint, source, "--dir_out", tmp_path, "--overwrite") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is, or lies inside, the input" in error[0]
    assert source.read_bytes() == before


def test_no_input_is_a_usage_error(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        enhance(checkpoint, "--dir_out", tmp_path / "out")
    assert exit_.value.code == 2


# --------------------------------------------------------------------------- tiles


def _far_from_seams(height: int, width: int, tile: int, margin: int) -> torch.Tensor:
    """H×W mask of the pixels at least ``margin`` from every tile seam."""

    def far(length: int) -> torch.Tensor:
        seams = torch.arange(tile, length, tile)
        return (torch.arange(length)[:, None] - seams[None]).abs().min(1).values >= margin

    return far(height)[:, None] & far(width)[None]


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(trained_like(enhancer_from_preset("tiny")), torch.device("cpu"))


def test_tiles_equal_the_whole_frame_when_the_overlap_covers_the_receptive_field(
    backend: TorchBackend,
) -> None:
    torch.manual_seed(0)
    batch = torch.rand(2, 3, 70, 98)  # not a multiple of the tile: partial tiles at the edges
    with torch.inference_mode():
        whole = backend.enhance(batch)
        tiled = tiled_backend(backend, 24, RECEPTIVE_RADIUS).enhance(batch)
    assert (tiled - whole).abs().max() <= 1e-4


def test_tiles_keep_the_frame_wide_gain_map(backend: TorchBackend) -> None:
    """The gain map spans the whole frame: a tile must not stretch it over itself."""
    lut = backend.model.lut
    assert lut is not None and lut.gain_grid is not None  # the tiny preset has one
    torch.manual_seed(1)
    batch = torch.rand(1, 3, 64, 96)
    gains = torch.linspace(-0.5, 0.5, lut.num_coefficients - lut.num_luts).view(1, -1)
    weights = torch.cat([torch.tensor([[1.0, 0.0, 0.0]]), gains], dim=1)
    with torch.inference_mode():
        whole = backend.enhance_with_weights(batch, weights)
        tiled = tiled_backend(backend, 32, RECEPTIVE_RADIUS).enhance_with_weights(batch, weights)
    assert (tiled - whole).abs().max() <= 1e-4


def test_with_less_overlap_only_the_seams_differ_and_boundedly(backend: TorchBackend) -> None:
    torch.manual_seed(0)
    batch = torch.rand(2, 3, 96, 120)
    with torch.inference_mode():
        whole = backend.enhance(batch)
        difference = (tiled_backend(backend, 48, 8).enhance(batch) - whole).abs()
    interior = _far_from_seams(96, 120, 48, RECEPTIVE_RADIUS - 8)
    assert difference[..., interior].max() <= 1e-4
    seams = difference[..., ~interior]
    assert 1e-4 < seams.max() <= 0.1  # measured 0.083 (seed 0 of trained_like, ICNR init)


def test_tile_weights_come_from_the_whole_frame(backend: TorchBackend) -> None:
    """The LUT weights are predicted once from the whole frame, not per tile."""
    calls: list[tuple[int, ...]] = []
    tiles = tiled_backend(backend, 16, 0)
    original = backend.predict_lut_weights

    def spy(frames: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(frames.shape))
        return original(frames)

    backend.predict_lut_weights = spy  # type: ignore[method-assign]
    try:
        with torch.inference_mode():
            tiles.enhance(torch.rand(1, 3, 40, 40))
    finally:
        del backend.predict_lut_weights
    assert calls == [(1, 3, 40, 40)]


def test_tile_option_gives_the_untiled_video(checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "in" / "big.mp4"
    source.parent.mkdir()
    write_video(source, frames(3, 48, 64))
    assert enhance(checkpoint, source, "--dir_out", tmp_path / "whole") == 0
    assert enhance(checkpoint, source, "--tile", "16", "--tile-overlap", "16",
                   "--dir_out", tmp_path / "tiled") == 0  # fmt: skip
    whole = list(read_frames(tmp_path / "whole" / "big.mp4"))
    tiled = list(read_frames(tmp_path / "tiled" / "big.mp4"))
    assert len(whole) == len(tiled) == 3
    for a, b in zip(whole, tiled, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tile_with_onnx_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--onnx", str(tmp_path / "m.onnx"), "--tile", "64", str(tmp_path),
              "--dir_out", str(tmp_path / "out")])  # fmt: skip
    assert exit_.value.code == 2


# --------------------------------------------------------------------------- half


def test_half_on_the_cpu_is_refused_in_one_line(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clip(tmp_path / "in" / "a.mp4")
    assert enhance(checkpoint, source, "--half", "--dir_out", tmp_path / "out") == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--half needs a CUDA device" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_half_on_cuda_is_close_to_fp32(checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "in" / "a.mp4"
    source.parent.mkdir()
    write_video(source, frames(3, 64, 96))
    for name, extra in (("fp32", []), ("fp16", ["--half"])):
        code = main(["--ckpt", str(checkpoint), "--device", "cuda", "--no-progress", str(source),
                     "--dir_out", str(tmp_path / name), *extra])  # fmt: skip
        assert code == 0
    full = np.stack(list(read_frames(tmp_path / "fp32" / "a.mp4"))).astype(int)
    half = np.stack(list(read_frames(tmp_path / "fp16" / "a.mp4"))).astype(int)
    assert full.shape == half.shape and np.abs(full - half).mean() < 1.0


# --------------------------------------------------------------------------- vqe models


def test_models_lists_the_presets_with_their_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "pretrained")
    assert models_command.main(["tiny"]) == 0
    out = capsys.readouterr().out
    cost = preset_cost("tiny")
    assert 0.5 < cost.gmacs < 2 and cost.parameters > 1000
    assert f"  {'tiny':<12}{cost.gmacs:>10.2f}{cost.parameters:>12,}{cost.fp16_mb:>10.2f}\n" in out
    assert "no shipped models yet" in out

    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "vqe_small.ckpt").write_bytes(b"0" * 1000)
    assert models_command.main(["tiny"]) == 0
    out = capsys.readouterr().out
    assert "vqe_small " in out and "no shipped models yet" not in out


def test_models_refuses_an_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert models_command.main(["huge"]) == 2
    err = capsys.readouterr().err
    assert "huge: no such preset" in err and "tiny" in err
