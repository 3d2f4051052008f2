"""Per-video test metrics accumulated frame by frame, across batches and ranks.

Values are stored per (subset, video id, frame index), so a frame seen twice — the distributed
batch sampler pads the last batches by repeating early ones — counts once. After the test loop
the ranks' accumulators are merged (:meth:`VideoMetrics.merged`) and averaged per video:

* rows with a target → ``rmse`` per frame → ``metrics_supervised.csv``: per-video mean;
* rows without → ``[p, a1 … a11]`` per frame → ``metrics_unsupervised.csv``: per-video means
  (raw: m_5 = a4 is not inverted here, the score formula does that);
* rows with a target, optionally → ``[psnr, ssim(, lpips)]`` per frame
  (:mod:`vqe.metrics.full_reference`) → ``tables/quality.csv``: per-video means.

:class:`TemporalTracker` measures :mod:`vqe.metrics.temporal` flicker and warping error per video
from frames that arrive in order (one process, unshuffled test loader); a video whose frames
arrive out of order gets NaN rather than a wrong value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from vqe.metrics.temporal import DEFAULT_FLOW_HEIGHT, FlickerMeter, WarpingErrorMeter
from vqe.schema import NUM_VQA_SCORES

FLICKER, WARPING_ERROR = "flicker", "warping_error"
#: The input's own warping error (same flow and mask): what returning the input would score.
INPUT_WARPING_ERROR = "input_warping_error"

VideoKey = tuple[str, str]  # (subset, video_id)


def _rows(values: Tensor, count: int, width: int | None, what: str) -> list:
    """``values`` as ``count`` Python rows (floats, or lists of ``width`` floats)."""
    values = values.detach().float().cpu()
    expected = (count,) if width is None else (count, width)
    if tuple(values.shape) != expected:
        raise ValueError(f"{what}: expected shape {expected}, got {tuple(values.shape)}")
    return values.tolist()


@dataclass
class VideoMetrics:
    """Per-frame values by video; see the module docstring."""

    rmse: dict[VideoKey, dict[int, float]] = field(default_factory=dict)
    scores: dict[VideoKey, dict[int, list[float]]] = field(default_factory=dict)
    quality: dict[VideoKey, dict[int, list[float]]] = field(default_factory=dict)

    def add_rmse(
        self, subsets: Sequence[str], videos: Sequence[str], frames: Sequence[int], rmse: Tensor
    ) -> None:
        for subset, video, frame, value in zip(
            subsets, videos, frames, _rows(rmse, len(videos), None, "rmse"), strict=True
        ):
            self.rmse.setdefault((subset, video), {})[int(frame)] = value

    def add_scores(
        self, subsets: Sequence[str], videos: Sequence[str], frames: Sequence[int], scores: Tensor
    ) -> None:
        rows = _rows(scores, len(videos), NUM_VQA_SCORES, "scores")
        for subset, video, frame, row in zip(subsets, videos, frames, rows, strict=True):
            self.scores.setdefault((subset, video), {})[int(frame)] = row

    def add_quality(
        self, subsets: Sequence[str], videos: Sequence[str], frames: Sequence[int], values: Tensor
    ) -> None:
        """Per-frame rows of :class:`~vqe.metrics.full_reference.FrameQuality` (one width for
        all)."""
        rows = _rows(values, len(videos), int(values.shape[-1]), "quality")
        for subset, video, frame, row in zip(subsets, videos, frames, rows, strict=True):
            self.quality.setdefault((subset, video), {})[int(frame)] = row

    @classmethod
    def merged(cls, parts: Iterable[VideoMetrics]) -> VideoMetrics:
        """One accumulator holding every part's frames (a frame in two parts counts once)."""
        result = cls()
        for part in parts:
            for video, frames in part.rmse.items():
                result.rmse.setdefault(video, {}).update(frames)
            for video, frames in part.scores.items():
                result.scores.setdefault(video, {}).update(frames)
            for video, frames in part.quality.items():
                result.quality.setdefault(video, {}).update(frames)
        return result

    @property
    def frame_count(self) -> int:
        return sum(map(len, self.rmse.values())) + sum(map(len, self.scores.values()))

    @staticmethod
    def _by_video_id(keys: Iterable[VideoKey], csv_name: str) -> None:
        seen: dict[str, str] = {}
        for subset, video in keys:
            if video in seen:
                raise ValueError(
                    f"{csv_name}: video id {video!r} occurs in subsets {seen[video]!r} and "
                    f"{subset!r}; restrict dataset.test_query so that each id is one video"
                )
            seen[video] = subset

    def supervised_means(self) -> dict[str, float]:
        """video id → mean per-frame RMSE."""
        self._by_video_id(self.rmse, "metrics_supervised.csv")
        return {
            video: math.fsum(frames.values()) / len(frames)
            for (_, video), frames in self.rmse.items()
        }

    def unsupervised_means(self) -> dict[str, list[float]]:
        """video id → per-column means of ``[p, a1 … a11]``."""
        self._by_video_id(self.scores, "metrics_unsupervised.csv")
        return {video: _column_means(frames) for (_, video), frames in self.scores.items()}

    def quality_means(self) -> dict[VideoKey, tuple[int, list[float]]]:
        """(subset, video id) → (frames, per-column means of the quality rows)."""
        return {key: (len(frames), _column_means(frames)) for key, frames in self.quality.items()}


def _column_means(frames: dict[int, list[float]]) -> list[float]:
    return [math.fsum(column) / len(frames) for column in zip(*frames.values())]


class TemporalTracker:
    """Flicker and (optionally) warping error per video from (output, input) frames fed in
    frame order.

    Args:
        flicker / warping: which measures to take.
        flow_height: :class:`~vqe.metrics.temporal.WarpingErrorMeter`'s ``max_height``.
    """

    def __init__(
        self,
        flicker: bool = True,
        warping: bool = True,
        flow_height: int | None = DEFAULT_FLOW_HEIGHT,
    ) -> None:
        self.measures = (FLICKER,) * flicker + (WARPING_ERROR, INPUT_WARPING_ERROR) * warping
        self.flow_height = flow_height
        self._meters: dict[VideoKey, dict[str, FlickerMeter | WarpingErrorMeter]] = {}
        self._last_frame: dict[VideoKey, int] = {}
        self._out_of_order: set[VideoKey] = set()

    def _new_meters(self) -> dict[str, FlickerMeter | WarpingErrorMeter]:
        meters: dict[str, FlickerMeter | WarpingErrorMeter] = {}
        if FLICKER in self.measures:
            meters[FLICKER] = FlickerMeter()
        if WARPING_ERROR in self.measures:
            meters[WARPING_ERROR] = WarpingErrorMeter(max_height=self.flow_height)
        return meters

    def update(
        self,
        subsets: Sequence[str],
        videos: Sequence[str],
        frames: Sequence[int],
        outputs: Tensor,
        inputs: Tensor,
    ) -> None:
        if not self.measures:
            return
        for index, (subset, video, frame) in enumerate(zip(subsets, videos, frames, strict=True)):
            key = (subset, video)
            frame = int(frame)
            if key in self._last_frame and frame != self._last_frame[key] + 1:
                self._out_of_order.add(key)
            self._last_frame[key] = frame
            if key in self._out_of_order:
                continue
            meters = self._meters.get(key)
            if meters is None:
                meters = self._meters[key] = self._new_meters()
            for meter in meters.values():
                meter.update(outputs[index], inputs[index])

    def values(self) -> dict[VideoKey, dict[str, float]]:
        """(subset, video id) → {measure: value}; NaN for videos out of order or with one
        frame (and a warping error without any reliable pixel)."""
        results = {}
        for key in self._last_frame:
            row = dict.fromkeys(self.measures, math.nan)
            meters = {} if key in self._out_of_order else self._meters.get(key, {})
            flicker = meters.get(FLICKER)
            if isinstance(flicker, FlickerMeter) and flicker.frames >= 2:
                row[FLICKER] = flicker.value()
            warping = meters.get(WARPING_ERROR)
            if isinstance(warping, WarpingErrorMeter) and warping.frames >= 2:
                row[WARPING_ERROR] = warping.value()
                row[INPUT_WARPING_ERROR] = warping.input_value()
            results[key] = row
        return results


__all__ = [
    "FLICKER",
    "INPUT_WARPING_ERROR",
    "WARPING_ERROR",
    "TemporalTracker",
    "VideoKey",
    "VideoMetrics",
]
