"""Video enhancement: submission layout and encoding, corrupt inputs, streaming, LUT smoothing."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import write_checkpoint

from vqe.cli.enhance import main
from vqe.conventions import rgb_uint8_to_tensor
from vqe.dataprep.demo import build_demo
from vqe.inference import stream
from vqe.inference.backends import ModelSpec, OnnxBackend, TorchBackend, load_backend
from vqe.inference.stream import (
    EnhanceSettings,
    LutWeightSmoother,
    enhance_frames,
    enhance_video,
    prefetched,
)
from vqe.metrics.temporal import flicker
from vqe.models.enhancer import Enhancer
from vqe.models.loading import enhancer_from_preset
from vqe.models.lut import NUM_STATISTICS, identity_lut
from vqe.video import (
    OFFICIAL_FPS,
    OFFICIAL_PIX_FMT,
    REPRODUCIBLE_X264_PARAMS,
    VideoWriter,
    probe,
    read_frames,
)


def responsive_tiny(seed: int = 0) -> Enhancer:
    """The tiny preset with a LUT stage that reacts to its input, unlike the untrained one
    (whose weights are always (1, 0, 0)): basis 1 brightens shadows, basis 2 swaps red and blue,
    and a random head makes the blend follow each frame's content."""
    torch.manual_seed(seed)
    enhancer = enhancer_from_preset("tiny")
    assert enhancer.lut is not None
    with torch.no_grad():
        identity = identity_lut(enhancer.lut.lut_size)
        enhancer.lut.basis[1] = identity.sqrt() - identity
        enhancer.lut.basis[2] = identity.flip(0) - identity
        head = enhancer.lut.predictor.head.weight
        head.normal_(0.0, 0.5)
        # The degradation statistics' columns and the gain map's rows (after the N blending
        # weights) only mildly responsive: at std 0.5 the ~90 unit-scale cues would swing the
        # blend, and the gains, far past the clip range on every frame.
        head[:, -NUM_STATISTICS:].normal_(0.0, 0.02)
        head[enhancer.lut.num_luts :].normal_(0.0, 0.02)
    return enhancer.eval()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    return write_checkpoint(responsive_tiny(), "tiny", folder / "tiny.ckpt")


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> TorchBackend:
    backend = load_backend(ModelSpec("ckpt", checkpoint, "cpu"))
    assert isinstance(backend, TorchBackend)
    return backend


def flicker_clip(demo: Path) -> Path:
    return demo / "train" / "unsupervised" / "video_0009_x.mp4"


def settings(**changes) -> EnhanceSettings:
    return EnhanceSettings(**{"progress": False, **changes})


def test_folder_is_enhanced_into_the_submission_layout(
    demo: Path, checkpoint: Path, tmp_path: Path
) -> None:
    dir_in = demo / "test" / "unsupervised"
    dir_out = tmp_path / "submission"
    code = main(["--ckpt", str(checkpoint), "--dir_in", str(dir_in), "--dir_out", str(dir_out),
                 "--batch-size", "3", "--no-progress"])  # fmt: skip
    assert code == 0
    inputs = sorted(dir_in.glob("*.mp4"))
    assert [path.name for path in sorted(dir_out.iterdir())] == [path.name for path in inputs]
    for source in inputs:
        output = dir_out / source.name
        info = probe(output)
        assert (info.codec, info.pix_fmt, info.fps) == ("h264", OFFICIAL_PIX_FMT, OFFICIAL_FPS)
        source_frames = list(read_frames(source, fps=OFFICIAL_FPS))  # the official extraction
        output_frames = list(read_frames(output))
        assert len(output_frames) == len(source_frames)
        assert output_frames[0].shape == source_frames[0].shape == (180, 320, 3)
        # Enhanced, not copied: the responsive LUT changes the colours.
        assert np.abs(output_frames[0].astype(int) - source_frames[0]).mean() > 2.0


def test_corrupt_inputs_are_listed_and_the_rest_finish(
    demo: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dir_in, dir_out = tmp_path / "in", tmp_path / "out"
    dir_in.mkdir()
    good = demo / "test" / "unsupervised" / "video_0012_x.mp4"
    shutil.copy(good, dir_in / good.name)
    (dir_in / "video_0100_x.mp4").write_bytes(b"not a video at all" * 100)
    (dir_in / "video_0101_x.mp4").write_bytes(good.read_bytes()[:2000])  # truncated
    arguments = ["--ckpt", str(checkpoint), "--dir_in", str(dir_in), "--dir_out", str(dir_out),
                 "--no-progress"]  # fmt: skip
    assert main(arguments) == 1
    report = capsys.readouterr().out
    assert "wrote 1 videos" in report and "FAILED 2" in report
    assert str(dir_in / "video_0100_x.mp4") in report
    assert str(dir_in / "video_0101_x.mp4") in report
    assert sorted(path.name for path in dir_out.iterdir()) == [good.name]  # no partial files

    # A rerun keeps the finished output unless asked to overwrite it.
    output = dir_out / good.name
    output.write_bytes(b"marker")
    assert main(arguments) == 1
    assert output.read_bytes() == b"marker"
    assert "skipped 1" in capsys.readouterr().out
    assert main([*arguments, "--overwrite"]) == 1
    assert len(list(read_frames(output))) == len(list(read_frames(good, fps=OFFICIAL_FPS)))


def test_a_bad_checkpoint_stops_before_any_video(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "VQA.ckpt"  # a Lightning checkpoint of something else
    torch.save({"state_dict": {"_model.conv.weight": torch.zeros(1)}}, foreign)
    for bad in (tmp_path / "missing.ckpt", foreign):
        code = main(["--ckpt", str(bad), "--dir_in", str(demo / "test" / "unsupervised"),
                     "--dir_out", str(tmp_path / "out")])  # fmt: skip
        assert code == 1
        assert str(bad) in capsys.readouterr().err
        assert not (tmp_path / "out").exists()


def test_enhancement_streams_one_batch_at_a_time(demo: Path, model: TorchBackend) -> None:
    pulled = 0

    def counting_frames() -> Iterator[np.ndarray]:
        nonlocal pulled
        for image in read_frames(flicker_clip(demo)):
            pulled += 1
            yield image

    outputs = enhance_frames(counting_frames(), model, settings(batch_size=3))
    next(outputs)
    assert pulled == 3  # the first output needed only the first batch
    assert 1 + sum(1 for _ in outputs) == pulled == 10


def test_batch_size_does_not_change_the_output(demo: Path, model: TorchBackend) -> None:
    frames = list(read_frames(flicker_clip(demo)))
    runs = [list(enhance_frames(frames, model, settings(batch_size=size))) for size in (1, 3, 10)]
    for run in runs[1:]:
        # Batched convolutions may round differently by one 8-bit level, nothing more.
        differences = [np.abs(a.astype(int) - b).max() for a, b in zip(runs[0], run, strict=True)]
        assert max(differences) <= 1


def test_smoother_carries_its_state_across_batches() -> None:
    weights = torch.randn(11, 3)
    whole = LutWeightSmoother(0.3)(weights)
    chunked = LutWeightSmoother(0.3)
    pieces = torch.cat([chunked(weights[:4]), chunked(weights[4:5]), chunked(weights[5:])])
    assert torch.equal(pieces, whole)
    expected = weights[0].clone()
    for row in weights[1:]:
        expected = 0.3 * row + 0.7 * expected
    assert torch.allclose(whole[-1], expected, atol=1e-6)
    assert torch.equal(LutWeightSmoother(1.0)(weights), weights)  # alpha 1: no smoothing


def test_smoothing_lowers_weight_and_output_flicker(demo: Path, model: TorchBackend) -> None:
    frames = list(read_frames(flicker_clip(demo)))  # the demo clips carry a light flicker
    batch = torch.stack([rgb_uint8_to_tensor(image) for image in frames])
    with torch.inference_mode():
        raw = model.predict_lut_weights(batch)
    smoothed = LutWeightSmoother(0.1)(raw)

    def variation(weights: torch.Tensor) -> float:
        return (weights[1:] - weights[:-1]).abs().mean().item()

    assert variation(raw) > 0  # the weights do follow the frames
    assert variation(smoothed) < 0.5 * variation(raw)
    outputs = {
        smooth: list(enhance_frames(frames, model, settings(smoothing=smooth)))
        for smooth in (False, True)
    }
    assert flicker(outputs[True], frames) < 0.5 * flicker(outputs[False], frames)


def test_checkpoint_backend_computes_the_training_graph(
    demo: Path, model: TorchBackend, checkpoint: Path
) -> None:
    """The stream's PyTorch model (channels-last deploy graph, red-level lookup of the 8-bit
    frames) gives the trained network's values on decoded frames."""
    from vqe.export.metadata import load_checkpoint

    enhancer, _ = load_checkpoint(checkpoint)
    frames = torch.stack([rgb_uint8_to_tensor(f) for f in read_frames(flicker_clip(demo))][:4])
    assert model.model.lut is not None and model.model.lut.eight_bit_frames
    with torch.no_grad():
        expected = enhancer.eval()(frames)
        assert (model.enhance(frames) - expected).abs().max().item() < 1e-4
        weights = model.predict_lut_weights(frames).flip(0)  # another frame's weights
        expected = enhancer.forward_with_weights(frames, lut_weights=weights).frames
        assert (model.enhance_with_weights(frames, weights) - expected).abs().max().item() < 1e-4


def test_onnx_model_enhances_like_the_checkpoint(
    demo: Path, model: TorchBackend, checkpoint: Path, tmp_path: Path
) -> None:
    from vqe.export.metadata import load_checkpoint
    from vqe.export.onnx import export_onnx

    enhancer, source = load_checkpoint(checkpoint)
    exported = export_onnx(enhancer, tmp_path / "tiny.onnx", source, height=180, width=320)
    onnx_model = OnnxBackend(exported.path)
    assert onnx_model.has_lut  # the stage graphs were found: smoothing works
    frames = list(read_frames(flicker_clip(demo)))
    for smooth in (True, False):
        expected = list(enhance_frames(frames, model, settings(smoothing=smooth)))
        got = list(enhance_frames(frames, onnx_model, settings(smoothing=smooth)))
        assert max(np.abs(a.astype(int) - b).max() for a, b in zip(expected, got)) <= 1

    dir_out = tmp_path / "out"
    code = main(["--onnx", str(exported.path), "--dir_in", str(demo / "test" / "unsupervised"),
                 "--dir_out", str(dir_out), "--no-progress"])  # fmt: skip
    assert code == 0 and len(list(dir_out.glob("*.mp4"))) == 2


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS CoreML packages do run")
def test_mlpackage_is_refused_off_macos(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--mlpackage", str(tmp_path / "model.mlpackage"),
                 "--dir_in", str(demo / "test" / "unsupervised"),
                 "--dir_out", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "only on macOS" in capsys.readouterr().err


def test_a_20_fps_input_keeps_its_duration_at_30_fps(
    demo: Path, checkpoint: Path, tmp_path: Path
) -> None:
    # The demo's unsupervised clips run at 20 fps, like the ~19 fps webcam clips.
    source = demo / "test" / "unsupervised" / "video_0012_x.mp4"
    assert probe(source).fps == pytest.approx(20.0)
    for fps, name in ((OFFICIAL_FPS, "resampled"), (None, "one_for_one")):
        dir_in = tmp_path / f"in_{name}"
        dir_in.mkdir()
        (dir_in / source.name).write_bytes(source.read_bytes())
        dir_out = tmp_path / name
        arguments = ["--ckpt", str(checkpoint), "--dir_in", str(dir_in), "--dir_out", str(dir_out)]
        assert main([*arguments, "--no-progress", "--fps", str(fps).lower()]) == 0
    resampled = probe(tmp_path / "resampled" / source.name)
    one_for_one = probe(tmp_path / "one_for_one" / source.name)
    assert resampled.num_frames == len(list(read_frames(source, fps=OFFICIAL_FPS))) == 15
    assert one_for_one.num_frames == len(list(read_frames(source))) == 10
    assert resampled.duration == pytest.approx(probe(source).duration, abs=0.05)


# --------------------------------------------------------------------------- overlap


def test_overlapped_decode_and_encode_write_the_serial_bytes(
    demo: Path, model: TorchBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same frames, same order, so the same file. libx264's mbtree alone makes two encodes of
    the same frames differ (serial or not, see vqe.video), so it is off here."""
    monkeypatch.setattr(
        stream, "VideoWriter", functools.partial(VideoWriter, x264_params=REPRODUCIBLE_X264_PARAMS)
    )
    source = flicker_clip(demo)
    serial, overlapped = tmp_path / "serial.mp4", tmp_path / "overlapped.mp4"
    written = enhance_video(source, serial, model, settings(overlap=False, batch_size=3))
    assert enhance_video(source, overlapped, model, settings(overlap=True, batch_size=3)) == written
    assert written > 3 and serial.read_bytes() == overlapped.read_bytes()


def test_overlapped_pipeline_hands_the_encoder_the_serial_frames(
    demo: Path, model: TorchBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default (submission) encoder settings: the encoder receives identical frames."""
    written: dict[bool, list[bytes]] = {False: [], True: []}
    original_write = VideoWriter.write
    for overlap in (False, True):

        def recording_write(self: VideoWriter, image: np.ndarray, key: bool = overlap) -> None:
            written[key].append(image.tobytes())
            original_write(self, image)

        monkeypatch.setattr(VideoWriter, "write", recording_write)
        enhance_video(flicker_clip(demo), tmp_path / f"{overlap}.mp4", model,
                      settings(overlap=overlap, batch_size=4))  # fmt: skip
    assert written[True] == written[False] and len(written[True]) > 4


class FailingModel:
    """A backend that fails on its second batch."""

    def __init__(self, model: TorchBackend) -> None:
        self.model, self.calls = model, 0
        self.device, self.has_lut = model.device, False

    def enhance(self, frames: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model failed")
        return self.model.enhance(frames)


def test_a_failing_model_stops_the_decode_and_encode_threads(
    demo: Path, model: TorchBackend, tmp_path: Path
) -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="model failed"):
        enhance_video(flicker_clip(demo), tmp_path / "out.mp4", FailingModel(model),  # type: ignore[arg-type]
                      settings(overlap=True, batch_size=2, smoothing=False))  # fmt: skip
    assert threading.active_count() == before


def test_prefetch_keeps_order_and_raises_the_producer_error() -> None:
    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("decode failed")

    items = prefetched(failing(), depth=2)
    assert next(items) == 1
    with pytest.raises(ValueError, match="decode failed"):
        next(items)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
def test_the_decode_and_encode_threads_yield_to_the_model() -> None:
    """Their niceness (which the codec's own threads inherit) is raised; the caller's is not."""
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def niceness() -> Iterator[int]:
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    (decode_thread,) = prefetched(niceness(), depth=1)
    seen: list[int] = []
    encoder = stream.BackgroundConsumer(
        lambda _: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
        depth=1, name="test-encode",
    )
    encoder.submit(None)
    encoder.close()
    expected = min(own + stream.CODEC_NICENESS, 19)
    assert decode_thread == expected and seen == [expected]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


def test_overlap_by_default_where_the_threads_have_cores_or_yield_to_the_model(
    model: TorchBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stream.should_overlap(model, True) and not stream.should_overlap(model, False)
    monkeypatch.setattr(stream.os, "cpu_count", lambda: torch.get_num_threads())
    monkeypatch.setattr(stream.sys, "platform", "darwin")  # niceness would be the process's
    assert not stream.codec_threads_yield()
    assert not stream.should_overlap(model, None)  # a saturated CPU, equal priority: serial
    monkeypatch.setattr(stream.sys, "platform", "linux")
    assert stream.should_overlap(model, None)  # the threads yield to the model
    monkeypatch.setattr(stream, "CODEC_NICENESS", 0)
    assert not stream.should_overlap(model, None)
    monkeypatch.setattr(stream.os, "cpu_count", lambda: torch.get_num_threads() + 2)
    assert stream.should_overlap(model, None)  # cores to spare
