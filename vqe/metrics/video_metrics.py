"""Per-video test metrics accumulated frame by frame, across batches and ranks.

Values are stored per (subset, video id, frame index), so a frame seen twice — the distributed
batch sampler pads the last batches by repeating early ones — counts once. After the test loop
the ranks' accumulators are merged (:meth:`VideoMetrics.merged`) and averaged per video:

* rows with a target → ``rmse`` per frame → ``metrics_supervised.csv``: per-video mean;
* rows without → ``[p, a1 … a11]`` per frame → ``metrics_unsupervised.csv``: per-video means
  (raw: m_5 = a4 is not inverted here, the score formula does that).

:class:`FlickerTracker` measures :mod:`vqe.metrics.temporal` flicker per video from frames that
arrive in order (one process, unshuffled test loader); a video whose frames arrive out of order
gets NaN rather than a wrong value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from vqe.metrics.temporal import FlickerMeter
from vqe.schema import NUM_VQA_SCORES

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

    @classmethod
    def merged(cls, parts: Iterable[VideoMetrics]) -> VideoMetrics:
        """One accumulator holding every part's frames (a frame in two parts counts once)."""
        result = cls()
        for part in parts:
            for video, frames in part.rmse.items():
                result.rmse.setdefault(video, {}).update(frames)
            for video, frames in part.scores.items():
                result.scores.setdefault(video, {}).update(frames)
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
        means = {}
        for (_, video), frames in self.scores.items():
            columns = zip(*frames.values())
            means[video] = [math.fsum(column) / len(frames) for column in columns]
        return means


class FlickerTracker:
    """Flicker per video from (output, input) frames fed in frame order."""

    def __init__(self) -> None:
        self._meters: dict[VideoKey, FlickerMeter] = {}
        self._last_frame: dict[VideoKey, int] = {}
        self._out_of_order: set[VideoKey] = set()

    def update(
        self,
        subsets: Sequence[str],
        videos: Sequence[str],
        frames: Sequence[int],
        outputs: Tensor,
        inputs: Tensor,
    ) -> None:
        for index, (subset, video, frame) in enumerate(zip(subsets, videos, frames, strict=True)):
            key = (subset, video)
            frame = int(frame)
            if key in self._last_frame and frame != self._last_frame[key] + 1:
                self._out_of_order.add(key)
            self._last_frame[key] = frame
            if key in self._out_of_order:
                continue
            meter = self._meters.setdefault(key, FlickerMeter())
            meter.update(outputs[index], inputs[index])

    def values(self) -> dict[VideoKey, float]:
        """(subset, video id) → flicker; NaN for videos out of order or with one frame."""
        results = {}
        for key in self._last_frame:
            meter = self._meters.get(key)
            usable = key not in self._out_of_order and meter is not None and meter.frames >= 2
            results[key] = meter.value() if usable else math.nan  # type: ignore[union-attr]
        return results


__all__ = ["FlickerTracker", "VideoKey", "VideoMetrics"]
