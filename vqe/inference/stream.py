"""Enhance one video as a stream: decode → batches → (smoothed) model → encode.

Memory is bounded by one batch: frames are decoded lazily (:func:`vqe.video.read_frames`),
enhanced ``batch_size`` at a time and handed to the encoder one by one, so a video of any
length never sits in RAM.

**LUT-weight smoothing.** The LUT stage predicts per-frame blending weights; on video, noise
and flicker in the input make them jitter and the colour of the output pulse. With smoothing on,
the weights go through an exponential moving average over frames before the LUT is applied
(``enhance_with_weights``):

    s₀ = w₀,    s_t = α · w_t + (1 − α) · s_{t−1}

``alpha`` is the weight of the newest frame (1 = no smoothing; 0.1 ≈ a time constant of
10 frames, a third of a second at 30 fps). The state carries across batch boundaries, so the
output does not depend on the batch size. Only the LUT stage is smoothed: the U-Net works on
each frame as before. There is no scene-cut detection: after a cut the colour follows the new
scene within about 1/α frames.

**Overlap.** With ``EnhanceSettings.overlap`` (by default: when the model runs on an
accelerator, the CPU has cores to spare or the threads can yield to the model,
:func:`should_overlap`) :func:`enhance_video` decodes the next batch in one thread and encodes
the previous frames in another while the model runs, through bounded queues
(:data:`QUEUE_BATCHES` batches ahead, as many frames behind), so memory stays bounded by a few
batches. The frames reach the encoder in the same order with the same values, so the output file
is byte-identical to the serial path (``overlap=False``); PyAV and libx264 release the GIL, so
the threads run in parallel with the model. They run at a lower priority
(:data:`CODEC_NICENESS`, inherited by the codec's own threads): on a CPU they share with the
model, they take the cores when the model leaves them idle instead of slowing it (720p, model on
one of two cores, 300 frames: 98–102 % of the model-only frames/s, against 86–94 % at equal
priority).

The model comes from :mod:`vqe.inference.backends`; output frames are encoded with the official
settings (:class:`vqe.video.VideoWriter`: H.264, yuv420p, CRF 18, 30 fps). Inputs at another
rate are first resampled to 30 fps as the official frame extraction does (``fps``), so the
output keeps the input's duration; ``fps=None`` keeps the decoded frames one for one.

What the official encoding cannot hold is kept another way and said (a
:class:`~vqe.video.VideoWarning` naming the file, listed in the folder report): an odd frame
size (yuv420p needs even sides) is encoded as yuv444p at the input's exact size; the input's
audio track is copied unchanged into the output — unless ``fps=None`` retimes a video that is
not at 30 fps, which would put the sound out of step: then it is dropped.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from vqe.conventions import rgb_uint8_to_tensor, tensor_to_rgb_uint8
from vqe.inference.backends import FrameEnhancer
from vqe.video import (
    OFFICIAL_FPS,
    VideoError,
    VideoWriter,
    audio_to_keep,
    frames_at,
    output_pix_fmt,
    probe,
    read_frames,
)

DEFAULT_ALPHA = 0.1
DEFAULT_BATCH_SIZE = 4
#: Batches decoded ahead of the model (and, times the batch size, frames queued for the
#: encoder) when decoding and encoding overlap the model.
QUEUE_BATCHES = 2

T = TypeVar("T")


@dataclass(frozen=True)
class EnhanceSettings:
    batch_size: int = DEFAULT_BATCH_SIZE  # frames per model call
    smoothing: bool = True  # EMA over the LUT weights (see module doc)
    alpha: float = DEFAULT_ALPHA  # weight of the newest frame in the EMA
    progress: bool = True  # a progress bar per video
    # Inputs are resampled to this rate before enhancement, like the official 30-fps frame
    # extraction, so that the 30-fps output lasts as long as the input; None: one for one.
    fps: float | None = OFFICIAL_FPS
    # Decode and encode in threads beside the model (same output bytes; see module doc);
    # None: when they have somewhere to run (should_overlap).
    overlap: bool | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"the smoothing alpha must be in (0, 1], got {self.alpha}")


@dataclass
class StageTimes:
    """Seconds spent in each part of the pipeline, accumulated over videos."""

    decode_s: float = 0.0  # PyAV decode + conversion to tensors
    model_s: float = 0.0  # weights, smoothing, enhancement, conversion back to uint8
    encode_s: float = 0.0  # libx264 encode and muxing
    frames: int = 0
    # With overlap the three run at once, in their own threads: they add up to more than the
    # wall time, and only the model's share is on the critical path.


class LutWeightSmoother:
    """Exponential moving average of per-frame LUT weights; keeps its state between calls."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"the smoothing alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.state: torch.Tensor | None = None  # the last smoothed weights (K,)

    def __call__(self, weights: torch.Tensor) -> torch.Tensor:
        """B×K weights of consecutive frames → their smoothed B×K weights."""
        smoothed = torch.empty_like(weights)
        state = self.state
        for index, current in enumerate(weights):
            state = current if state is None else self.alpha * current + (1 - self.alpha) * state
            smoothed[index] = state
        self.state = state
        return smoothed


def _batches(frames: Iterable[np.ndarray], size: int, times: StageTimes) -> Iterator[torch.Tensor]:
    """N×3×H×W tensors of up to ``size`` consecutive frames; decode time goes to ``times``."""
    iterator = iter(frames)
    while True:
        start = time.perf_counter()
        batch = []
        for image in iterator:
            batch.append(rgb_uint8_to_tensor(image))
            if len(batch) == size:
                break
        times.decode_s += time.perf_counter() - start
        if not batch:
            return
        yield torch.stack(batch)
        if len(batch) < size:
            return


def _enhance_batches(
    batches: Iterable[torch.Tensor],
    model: FrameEnhancer,
    settings: EnhanceSettings,
    times: StageTimes,
) -> Iterator[np.ndarray]:
    """The model part of the pipeline: batches in order → enhanced uint8 frames in order."""
    smoother = LutWeightSmoother(settings.alpha) if settings.smoothing and model.has_lut else None
    for batch in batches:
        start = time.perf_counter()
        with torch.inference_mode():
            batch = batch.to(model.device)
            if smoother is not None:
                weights = smoother(model.predict_lut_weights(batch))
                enhanced = model.enhance_with_weights(batch, weights)
            else:
                enhanced = model.enhance(batch)
            images = [tensor_to_rgb_uint8(frame) for frame in enhanced]
        times.model_s += time.perf_counter() - start
        times.frames += len(images)
        yield from images


def enhance_frames(
    frames: Iterable[np.ndarray],
    model: FrameEnhancer,
    settings: EnhanceSettings,
    times: StageTimes | None = None,
) -> Iterator[np.ndarray]:
    """Enhance a stream of H×W×3 RGB uint8 frames, yielding enhanced frames in order.

    Serial and lazy: a frame is decoded only when its batch is needed."""
    times = times if times is not None else StageTimes()
    yield from _enhance_batches(_batches(frames, settings.batch_size, times), model, settings, times)


# --------------------------------------------------------------------------- overlap


class _Failed:
    """An exception raised in a worker thread, carried to the consumer to be raised there."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def _put(items: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first (the consumer gave up); True when put."""
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


#: Niceness of the decode and encode threads (and of the codec threads they start, which inherit
#: it): on a CPU the model shares, they take the cores when the model leaves them idle.
CODEC_NICENESS = 10


def codec_threads_yield() -> bool:
    """True where the decode and encode threads lower their priority (:func:`_yield_to_the_model`):
    on Linux, where niceness is per thread; elsewhere it would be the whole process's."""
    return sys.platform == "linux" and CODEC_NICENESS > 0


def _yield_to_the_model() -> None:
    """Lower this thread's priority by :data:`CODEC_NICENESS` where :func:`codec_threads_yield`."""
    if not codec_threads_yield():
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CODEC_NICENESS)
    except OSError:  # e.g. a sandbox that forbids it: the threads keep the model's priority
        pass


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items`` in order, produced in a background thread at most ``depth`` ahead.

    An exception in the producer is raised here; closing this iterator early stops it."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        _yield_to_the_model()
        try:
            for item in items:
                if not _put(handoff, item, stop):
                    return
            _put(handoff, _END, stop)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            _put(handoff, _Failed(error), stop)

    worker = threading.Thread(target=produce, name="vqe-decode", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


class BackgroundConsumer:
    """Calls ``consume(item)`` for each submitted item, in order, in a background thread;
    :meth:`close` waits for the queue to drain and raises the worker's first exception."""

    def __init__(self, consume: Callable[[T], object], depth: int, name: str) -> None:
        self._handoff: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._consume = consume
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def _run(self) -> None:
        _yield_to_the_model()
        while (item := self._handoff.get()) is not _END:
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as error:  # noqa: BLE001 - raised by submit/close
                    self._error = error
                    self._stop.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: object) -> None:
        self._raise_if_failed()
        if not _put(self._handoff, item, self._stop):
            self._raise_if_failed()

    def close(self) -> None:
        """Finish the queued items (all of them, even after an error) and stop the thread."""
        self._handoff.put(_END)
        self._worker.join()
        self._raise_if_failed()


# --------------------------------------------------------------------------- videos


def should_overlap(model: FrameEnhancer, requested: bool | None) -> bool:
    """Overlap when asked to, or by default when the threads do not steal the model's cores:
    the model runs on an accelerator, the CPU has cores beyond torch's intra-op threads, or the
    threads run at a lower priority than the model (Linux, :func:`codec_threads_yield`), so that
    on a saturated CPU they fill the model's idle moments instead of slowing it (2 cores, model on
    2 threads, four paired runs: overlapped 1.00–1.22× the serial frames/s; at equal priority,
    three runs, 0.87–1.02×, so serial had been the default there)."""
    if requested is not None:
        return requested
    if torch.device(model.device).type != "cpu":
        return True
    return (os.cpu_count() or 1) > torch.get_num_threads() or codec_threads_yield()


def _timed_writer(writer: VideoWriter, times: StageTimes) -> Callable[[np.ndarray], None]:
    def write(image: np.ndarray) -> None:
        start = time.perf_counter()
        writer.write(image)
        times.encode_s += time.perf_counter() - start

    return write


def enhance_video(
    source: Path,
    destination: Path,
    model: FrameEnhancer,
    settings: EnhanceSettings,
    times: StageTimes | None = None,
) -> int:
    """Enhance ``source`` into ``destination`` (official encoding); returns frames written."""
    times = times if times is not None else StageTimes()
    info = probe(source)  # fails early, naming the file
    bar = tqdm(
        total=frames_at(info, settings.fps),
        desc=source.name,
        unit="frame",
        leave=False,
        disable=not settings.progress,
    )
    writer = VideoWriter(
        destination, pix_fmt=output_pix_fmt(info), audio_from=audio_to_keep(info, settings.fps)
    )
    batches: Iterable[torch.Tensor] = _batches(
        read_frames(source, settings.fps), settings.batch_size, times
    )
    write = _timed_writer(writer, times)
    try:
        with writer:
            if should_overlap(model, settings.overlap):
                batches = prefetched(batches, QUEUE_BATCHES)
                encoder = BackgroundConsumer(
                    write, QUEUE_BATCHES * settings.batch_size, "vqe-encode"
                )
                try:
                    for image in _enhance_batches(batches, model, settings, times):
                        encoder.submit(image)
                        bar.update()
                finally:
                    encoder.close()
            else:
                for image in _enhance_batches(batches, model, settings, times):
                    write(image)
                    bar.update()
            start = time.perf_counter()
        times.encode_s += time.perf_counter() - start  # flushing the encoder on close
    finally:
        bar.close()
    if writer.frames_written == 0:
        raise VideoError(f"{source}: the video holds no frames")
    return writer.frames_written
