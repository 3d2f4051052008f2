"""In-process video decoding and encoding with PyAV (libav / libx264).

Frames cross this boundary as H×W×3 RGB uint8 arrays; :mod:`vqe.conventions` turns them into
tensors. The encoder defaults are the official submission encoding: H.264, yuv420p, CRF 18,
30 fps. yuv420p needs even frame sizes; :func:`pix_fmt_for` names the format that keeps an odd
size exactly (yuv444p). :class:`VideoWriter` can copy another file's audio track unchanged.

Problems that do not stop a read or a write (a file that decodes to fewer frames than its
container declares, audio that could not be kept) raise a :class:`VideoWarning` naming the file;
:mod:`vqe.batch_jobs` lists them in its report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import av
import numpy as np

#: The official submission encoding.
OFFICIAL_FPS = 30
OFFICIAL_CODEC = "libx264"
OFFICIAL_PIX_FMT = "yuv420p"
OFFICIAL_CRF = 18
#: For odd frame sizes, which 4:2:0 chroma cannot hold: full-resolution chroma keeps the exact
#: size (H.264 High 4:4:4; some hardware players cannot play it).
ODD_SIZE_PIX_FMT = "yuv444p"

#: libx264's macroblock-tree rate control makes repeated encodes of the same frames differ
#: (measured here: 18 of 25 byte-identical; 25 of 25 with it off). Pass as ``x264_params`` where
#: encodes must be reproducible (seeded data generation); submissions keep the encoder default.
REPRODUCIBLE_X264_PARAMS = "mbtree=0"


class VideoError(RuntimeError):
    """A video could not be opened, decoded or written; the message names the file."""


class VideoWarning(UserWarning):
    """A video was read or written, but not entirely as asked; the message names the file."""


def pix_fmt_for(width: int, height: int) -> str:
    """The official ``yuv420p`` for even sizes, :data:`ODD_SIZE_PIX_FMT` when a side is odd."""
    return OFFICIAL_PIX_FMT if width % 2 == 0 and height % 2 == 0 else ODD_SIZE_PIX_FMT


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float  # average frame rate of the stream
    num_frames: int  # as stored in the container (0 when the container does not say)
    duration: float  # seconds (0.0 when unknown)
    codec: str
    pix_fmt: str
    has_audio: bool = False  # the file holds an audio track too


def probe(path: str | Path) -> VideoInfo:
    """Read the first video stream's header without decoding frames."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.base_rate or 0
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            return VideoInfo(
                path=path,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                fps=float(rate),
                num_frames=int(stream.frames or 0),
                duration=duration,
                codec=stream.codec_context.name,
                pix_fmt=stream.codec_context.pix_fmt or "",
                has_audio=bool(container.streams.audio),
            )
    except (av.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: cannot read video header ({error})") from error


def parse_fps(text: str) -> float | None:
    """Command-line frame rate: a positive number, or ``none`` to keep every decoded frame."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        fps = float(text)
    except ValueError:
        fps = 0.0
    if not fps > 0:
        raise ValueError(f"a frame rate must be a positive number or 'none', got {text!r}")
    return fps


def frames_at(info: VideoInfo, fps: float | None) -> int | None:
    """How many frames :func:`read_frames` will yield at ``fps``, from the header (None when the
    header does not say); for progress bars."""
    if fps is None:
        return info.num_frames or None
    return round(info.duration * fps) or None


def _decoded(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Every decoded frame as (presentation time in seconds, RGB uint8 array); warns when the
    file ends before the frames its container declares (a truncated copy decodes cleanly)."""
    count = declared = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared = int(stream.frames or 0)
            fallback_step = 1.0 / float(stream.average_rate or OFFICIAL_FPS)
            for index, frame in enumerate(container.decode(stream)):
                time = frame.time if frame.time is not None else index * fallback_step
                count += 1
                yield time, frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: cannot decode video ({error})") from error
    if 0 < count < declared:
        warnings.warn(
            f"{path}: decoded {count} of the {declared} frames its container declares; the file "
            "looks truncated, so everything made from it is short",
            VideoWarning,
            stacklevel=2,
        )


def read_frames(path: str | Path, fps: float | None = None) -> Iterator[np.ndarray]:
    """Yield a video's frames as H×W×3 RGB uint8 arrays.

    With ``fps=None`` every decoded frame is yielded once. With a frame rate, the stream is
    resampled to a constant rate the way ffmpeg's ``fps`` filter does it: output frame k shows the
    input frame whose timestamp rounds to slot k; frames are repeated to fill gaps and dropped when
    several land in one slot; the last frame is held until the end of its display time.
    """
    path = Path(path)
    if fps is None:
        count = 0
        for _, image in _decoded(path):
            count += 1
            yield image
        if count == 0:
            raise VideoError(f"{path}: the video holds no frames")
        return
    if fps <= 0:
        raise ValueError(f"fps must be positive or None, got {fps}")

    start: float | None = None
    next_slot = 0
    previous: tuple[float, np.ndarray] | None = None
    last_step = 1.0 / fps
    for time, image in _decoded(path):
        if start is None:
            start = time
        slot = math.floor((time - start) * fps + 0.5)
        if previous is not None:
            last_step = max(time - previous[0], 1e-6)
            # The previous frame fills every slot before this frame's slot.
            while next_slot < slot:
                yield previous[1]
                next_slot += 1
        previous = (time, image)
    if previous is None or start is None:
        raise VideoError(f"{path}: the video holds no frames")
    end_slot = math.floor((previous[0] + last_step - start) * fps + 0.5)
    while next_slot < end_slot:
        yield previous[1]
        next_slot += 1


class _AudioCopy(NamedTuple):
    container: av.container.InputContainer  # the source file, open for its packets
    track: av.audio.stream.AudioStream  # its audio stream
    copy: av.stream.Stream  # the output's stream the packets go to


def output_pix_fmt(info: VideoInfo) -> str:
    """The official pixel format, or the one that keeps an odd size (announced)."""
    pix_fmt = pix_fmt_for(info.width, info.height)
    if pix_fmt != OFFICIAL_PIX_FMT:
        warnings.warn(
            f"{info.path}: {info.width}×{info.height} has an odd side, which {OFFICIAL_PIX_FMT} "
            f"cannot hold; encoded as {pix_fmt} at the same size",
            VideoWarning,
            stacklevel=2,
        )
    return pix_fmt


def audio_to_keep(info: VideoInfo, fps: float | None) -> Path | None:
    """The file whose audio the output gets: the input, unless it has none or its video is
    retimed (announced)."""
    if not info.has_audio:
        return None
    if fps is None and abs(info.fps - OFFICIAL_FPS) > 1e-3:
        warnings.warn(
            f"{info.path}: its {info.fps:g}-fps frames are played at {OFFICIAL_FPS} fps (--fps "
            "none), so its audio would be out of step; the output has no sound",
            VideoWarning,
            stacklevel=2,
        )
        return None
    return info.path


class VideoWriter:
    """Encode RGB uint8 frames to a video file; the defaults are the official encoding.

    Use as a context manager; the frame size is taken from the first frame written and must be
    even in both dimensions for ``yuv420p`` (see :func:`pix_fmt_for`). ``audio_from``: a file
    whose first audio track is copied unchanged (no re-encode, same timing) into the output
    when it is closed; a track the output container cannot hold is dropped with a
    :class:`VideoWarning`.
    """

    def __init__(
        self,
        path: str | Path,
        fps: int | Fraction = OFFICIAL_FPS,
        crf: int = OFFICIAL_CRF,
        codec: str = OFFICIAL_CODEC,
        pix_fmt: str = OFFICIAL_PIX_FMT,
        preset: str = "medium",
        x264_params: str | None = None,
        audio_from: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self._fps = Fraction(fps)
        self._options = {"crf": str(crf), "preset": preset}
        if x264_params:  # e.g. "mbtree=0" (see REPRODUCIBLE_X264_PARAMS)
            self._options["x264-params"] = x264_params
        self._codec = codec
        self._pix_fmt = pix_fmt
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._audio_from = Path(audio_from) if audio_from is not None else None
        self._audio: _AudioCopy | None = None
        self.frames_written = 0

    def _open(self, height: int, width: int) -> None:
        if self._pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise VideoError(
                f"{self.path}: yuv420p needs even frame sizes, got {width}×{height}; encode "
                f"with pix_fmt={ODD_SIZE_PIX_FMT!r} (vqe.video.pix_fmt_for) to keep the size"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), mode="w")
            stream = self._container.add_stream(self._codec, rate=self._fps, options=self._options)
        except (av.FFmpegError, OSError) as error:
            raise VideoError(f"{self.path}: cannot open for writing ({error})") from error
        stream.width, stream.height, stream.pix_fmt = width, height, self._pix_fmt
        self._stream = stream
        if self._audio_from is not None:
            self._audio = self._add_audio(self._audio_from)

    def _add_audio(self, source: Path) -> _AudioCopy | None:
        """The source's first audio track and its copy in the output (None when it has none)."""
        assert self._container is not None
        try:
            container = av.open(str(source))
        except (av.FFmpegError, OSError) as error:
            raise VideoError(f"{source}: cannot read its audio ({error})") from error
        if not container.streams.audio:
            container.close()
            return None
        track = container.streams.audio[0]
        try:
            copy = self._container.add_stream_from_template(track)
        except (av.FFmpegError, ValueError) as error:  # e.g. a codec mp4 cannot hold
            container.close()
            warnings.warn(
                f"{source}: its {track.codec_context.name} audio cannot be copied into "
                f"{self.path.suffix} ({error}); the output has no sound",
                VideoWarning,
                stacklevel=4,
            )
            return None
        return _AudioCopy(container, track, copy)

    def _copy_audio(self) -> None:
        """Mux every packet of the source's audio track, unchanged, into the output."""
        assert self._audio is not None and self._container is not None
        container, track, copy = self._audio
        try:
            for packet in container.demux(track):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = copy
                self._container.mux(packet)
        except av.FFmpegError as error:
            raise VideoError(
                f"{self.path}: cannot copy the audio of {self._audio_from} ({error})"
            ) from error

    def write(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{self.path}: frames must be H×W×3 RGB uint8, got {image.dtype} {image.shape}"
            )
        if self._stream is None:
            self._open(*image.shape[:2])
        assert self._stream is not None and self._container is not None
        if (image.shape[0], image.shape[1]) != (self._stream.height, self._stream.width):
            raise VideoError(
                f"{self.path}: frame {self.frames_written} is {image.shape[1]}×{image.shape[0]}, "
                f"the video is {self._stream.width}×{self._stream.height}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            assert self._stream is not None
            for packet in self._stream.encode():
                self._container.mux(packet)
            if self._audio is not None:
                self._copy_audio()
        finally:
            if self._audio is not None:
                self._audio[0].close()
                self._audio = None
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], **options: Any) -> int:
    """Encode ``frames`` to ``path``; returns the number of frames written."""
    with VideoWriter(path, **options) as writer:
        for image in frames:
            writer.write(image)
        if writer.frames_written == 0:
            raise VideoError(f"{path}: no frames to write")
        return writer.frames_written
