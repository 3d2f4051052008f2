"""On-disk caches of what the frozen critics compute of input frames, beside the frame index
(data-side: the datamodule fills them and serves the values in the batches, so no critic reads
a frame file).

The critics' view of a stored input frame never changes, so two things are computed once per
frame and stored under ``<data_root>/.dover_cache/``:

* DOVER(x) (:class:`DoverScoreCache`): ``<cache key>.csv`` with the columns ``img_source`` (the
  frame path relative to the data root, as in the frame index) and ``dover``. The key is the
  critic's :attr:`~vqe.critics.dover.model.DoverCritic.cache_key` — the weights digest plus the
  clip settings — so other weights or settings never read these scores.
* the VQA's 512 encoder features of x (:class:`FeatureCache`): ``<cache key>.npz`` holding the
  sources and a float32 N×512 matrix (plain arrays, loaded without pickle). The key is
  :attr:`~vqe.critics.vqa.VqaInputEncoder.cache_key` (``vqa-`` + the weights digest).
  Training reads the matrix memory-mapped (:func:`read_mapped_features`): at the dataset's
  3.9 M frames it is 8 GB, which then lives once in the OS page cache for every loader worker
  and DDP rank on the machine instead of once per process.

Writes are atomic (:mod:`vqe.atomic`: a temporary file in the same folder, synced, then
``os.replace``; an interrupted or disk-full write leaves the previous file whole) and merge with
what is on disk at that moment, so concurrent processes lose nothing but repeated work.

Sharded precompute (:mod:`vqe.dataprep.precompute`, ``vqe score-inputs``): shard k of n fills
its own file ``<cache key>.shard-k-of-n.<csv|npz>`` beside the cache (``shard=``), and
``merge_shards`` folds every shard file into the one file training reads.
"""

from __future__ import annotations

import logging
import os
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from vqe.atomic import atomic_path
from vqe.schema import DOVER_CACHE_COLUMNS, DOVER_CACHE_DIR, DOVER_SCORE, IMG_SOURCE

log = logging.getLogger(__name__)

CACHE_DIR = DOVER_CACHE_DIR
SCORE_COLUMN = DOVER_SCORE
CACHE_COLUMNS = DOVER_CACHE_COLUMNS
#: Scores are written to disk at least this often while filling (frames), to survive crashes.
FLUSH_EVERY = 512

#: The arrays of a VQA feature cache file.
SOURCES_ARRAY = "img_source"
FEATURES_ARRAY = "features"

FrameLoader = Callable[[str], Tensor]
Value = TypeVar("Value")


class FrameScorer(Protocol):
    """What a cache needs of a critic: a key and frames → one score (a DoverCritic) or one
    feature row (the VQA's input encoder) per frame."""

    @property
    def cache_key(self) -> str: ...

    def __call__(self, frames: Tensor) -> Tensor: ...


class DoverCacheError(ValueError):
    """The cache file exists but cannot be used."""


def read_scores(path: Path) -> dict[str, float]:
    """The scores in one DOVER cache (or shard) file; empty when there is none."""
    if not path.is_file():
        return {}
    try:
        table = pd.read_csv(path, dtype={IMG_SOURCE: str, SCORE_COLUMN: float})
    except (ValueError, pd.errors.ParserError) as error:
        raise DoverCacheError(
            f"{path}: unreadable DOVER cache ({error}); delete the file and it will be "
            "recomputed"
        ) from error
    if tuple(table.columns) != CACHE_COLUMNS:
        raise DoverCacheError(
            f"{path}: columns {list(table.columns)}, expected {list(CACHE_COLUMNS)}; "
            "delete the file and it will be recomputed"
        )
    return dict(zip(table[IMG_SOURCE], table[SCORE_COLUMN].astype(float)))


def read_features(path: Path) -> dict[str, np.ndarray]:
    """The feature rows in one VQA feature cache (or shard) file; empty when there is none.

    Read with ``allow_pickle=False``: the file holds two plain arrays, never objects."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            sources, features = stored[SOURCES_ARRAY], stored[FEATURES_ARRAY]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DoverCacheError(
            f"{path}: unreadable VQA feature cache ({error}); delete the file and it will be "
            "recomputed"
        ) from error
    if features.ndim != 2 or len(sources) != len(features) or features.dtype != np.float32:
        raise DoverCacheError(
            f"{path}: {len(sources)} sources for features of shape {features.shape} "
            f"({features.dtype}); expected one float32 row per source — delete the file and it "
            "will be recomputed"
        )
    return {str(source): row for source, row in zip(sources, features)}


#: A zip local file header: signature, versions and flags, sizes, then the name and extra lengths.
_ZIP_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
#: The .npy header versions np.save writes (2.0 only for headers over 64 KiB).
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class MappedFeatures:
    """The N×D float32 feature matrix of a cache file, memory-mapped read-only where it lies
    inside the ``.npz`` (``np.savez`` stores its members uncompressed, so the ``.npy`` bytes sit
    in the archive as they are). Rows are read on demand; a pickled copy (a spawned loader
    worker) carries the file's name and offset, not the matrix."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        member = f"{FEATURES_ARRAY}.npy"
        try:
            with zipfile.ZipFile(self.path) as archive:
                info = archive.getinfo(member)
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError("the feature matrix is compressed")
            with self.path.open("rb") as stream:
                stream.seek(info.header_offset)
                header = _ZIP_LOCAL_HEADER.unpack(stream.read(_ZIP_LOCAL_HEADER.size))
                stream.seek(header[-2] + header[-1], os.SEEK_CUR)  # past the name and extra
                read_header = _NPY_HEADER_READERS[np.lib.format.read_magic(stream)]
                shape, fortran, dtype = read_header(stream)
                self.offset = stream.tell()
        except (OSError, KeyError, ValueError, struct.error, zipfile.BadZipFile) as error:
            raise DoverCacheError(
                f"{path}: unreadable VQA feature cache ({error}; training memory-maps the matrix,"
                " which must be stored uncompressed as write_features writes it); delete the "
                "file and it will be recomputed"
            ) from error
        if fortran or dtype != np.float32:
            raise DoverCacheError(
                f"{path}: the feature matrix is {dtype}{' (Fortran order)' if fortran else ''}, "
                "not float32 as write_features writes it; delete the file and it will be "
                "recomputed"
            )
        self.shape: tuple[int, ...] = tuple(shape)
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        """The read-only memory map (opened on first use, in each process)."""
        if self._array is None:
            self._array = np.memmap(
                self.path, dtype=np.float32, mode="r", offset=self.offset, shape=self.shape
            )
        return self._array

    def __getitem__(self, row: int) -> np.ndarray:
        return self.array[row]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}


def read_mapped_features(path: Path) -> tuple[list[str], MappedFeatures]:
    """The sources of one VQA feature cache file and its matrix, memory-mapped (see
    :class:`MappedFeatures`); both checked as :func:`read_features` checks them."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            sources = [str(source) for source in stored[SOURCES_ARRAY]]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise DoverCacheError(
            f"{path}: unreadable VQA feature cache ({error}); delete the file and it will be "
            "recomputed"
        ) from error
    matrix = MappedFeatures(path)
    if len(matrix.shape) != 2 or matrix.shape[0] != len(sources):
        raise DoverCacheError(
            f"{path}: {len(sources)} sources for features of shape {matrix.shape}; expected one "
            "float32 row per source — delete the file and it will be recomputed"
        )
    return sources, matrix


def _replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write`` into a temporary file beside ``path``, then rename it over
    ``path`` (:func:`vqe.atomic.atomic_path`: synced first, removed on any failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, temporary.open("wb") as stream:
        write(stream)


def write_scores(path: Path, scores: dict[str, float]) -> dict[str, float]:
    """Merge ``scores`` with the file as it is now and replace it atomically; returns the
    merged scores (what the file now holds)."""
    merged = {**read_scores(path), **scores}
    table = pd.DataFrame({IMG_SOURCE: list(merged), SCORE_COLUMN: list(merged.values())})
    _replace_atomically(
        path, lambda stream: table.to_csv(stream, index=False, float_format="%.9g")
    )
    return merged


def write_features(path: Path, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`write_scores` for a VQA feature cache (``.npz``: sources and an N×D matrix)."""
    merged = {**read_features(path), **features}
    sources = np.array(list(merged), dtype=str)
    matrix = (
        np.stack(list(merged.values())).astype(np.float32)
        if merged
        else np.zeros((0, 0), np.float32)
    )
    _replace_atomically(
        path,
        lambda stream: np.savez(stream, **{SOURCES_ARRAY: sources, FEATURES_ARRAY: matrix}),
    )
    return merged


class InputCache(Generic[Value]):
    """Maps frame paths (relative to ``data_root``) to what ``scorer`` computes of each frame,
    filled once and stored under ``<data_root>/.dover_cache/``; subclasses fix the file format
    and the value (a DOVER score, a VQA feature row).

    ``scorer`` is called on batches of up to ``batch_size`` same-sized frames, under
    ``torch.no_grad``; frames are moved to the scorer's parameters' device and dtype first.
    """

    #: What the values are, for messages and progress bars.
    what: ClassVar[str]
    #: File name suffix of a cache (and of each shard) file.
    suffix: ClassVar[str]

    def __init__(
        self,
        data_root: str | Path,
        scorer: FrameScorer,
        batch_size: int = 4,
        progress: bool = True,
        shard: tuple[int, int] | None = None,
    ) -> None:
        name = type(self).__name__
        if batch_size < 1:
            raise ValueError(f"{name}: batch_size must be ≥ 1, got {batch_size}")
        key = scorer.cache_key
        if not key or "/" in key or os.sep in key:
            raise ValueError(f"{name}: unusable cache key {key!r} from {scorer!r}")
        self.data_root = Path(data_root)
        self.scorer = scorer
        self.batch_size = batch_size
        self.progress = progress
        # A shard fills its own file (merged later by merge_shards).
        self.path = self.path_for(self.data_root, key, shard)
        self._values: dict[str, Value] = self.read_file(self.path)

    # ----------------------------------------------------------------------- format

    @staticmethod
    def read_file(path: Path) -> dict[str, Value]:
        raise NotImplementedError

    @staticmethod
    def write_file(path: Path, values: dict[str, Value]) -> dict[str, Value]:
        raise NotImplementedError

    @classmethod
    def stored_sources(cls, path: Path) -> set[str]:
        """The frames a cache (or shard) file holds values of; empty when there is none."""
        return set(cls.read_file(path))

    def _split(self, output: Tensor, count: int) -> list[Value]:
        """The scorer's output for ``count`` frames → one value per frame (shape checked)."""
        raise NotImplementedError

    def _stack(self, values: list[Value]) -> Tensor:
        raise NotImplementedError

    # ----------------------------------------------------------------------- disk

    @classmethod
    def path_for(
        cls, data_root: str | Path, key: str, shard: tuple[int, int] | None = None
    ) -> Path:
        """``<data_root>/.dover_cache/<key><suffix>``, or shard k of n's
        ``<key>.shard-k-of-n<suffix>``."""
        part = "" if shard is None else f".shard-{shard[0]}-of-{shard[1]}"
        return Path(data_root) / CACHE_DIR / f"{key}{part}{cls.suffix}"

    @classmethod
    def shard_paths(cls, data_root: str | Path, key: str) -> list[Path]:
        """The shard files of ``key`` present under ``data_root``, sorted."""
        return sorted((Path(data_root) / CACHE_DIR).glob(f"{key}.shard-*-of-*{cls.suffix}"))

    @classmethod
    def merge_shards(cls, data_root: str | Path, key: str, remove: bool = False) -> Path:
        """Fold every shard file of ``key`` into the cache file training reads; its path.

        Safe to repeat and to run while shards still write (each write is atomic; a later
        merge picks up what was added). ``remove`` deletes the shard files once merged.
        """
        shards = cls.shard_paths(data_root, key)
        values: dict[str, Value] = {}
        for shard in shards:
            values.update(cls.read_file(shard))
        target = cls.path_for(data_root, key)
        cls.write_file(target, values)
        if remove:
            for shard in shards:
                shard.unlink()
        log.info(
            "%s cache %s: merged %d shard files (%d frames)",
            cls.what, target, len(shards), len(values),
        )  # fmt: skip
        return target

    def _write(self) -> None:
        """Merge with the file as it is now, then replace it atomically."""
        self._values = {**self._values, **self.write_file(self.path, self._values)}

    # ----------------------------------------------------------------------- keys

    def _key(self, path: str | Path) -> str:
        """The index's relative POSIX path; absolute paths under ``data_root`` are relativised."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                candidate = candidate.relative_to(self.data_root)
            except ValueError as error:
                raise ValueError(
                    f"{type(self).__name__}: {path} is not under the data root "
                    f"{self.data_root}; give frame paths relative to the data root, as in the "
                    "frame index"
                ) from error
        return candidate.as_posix()

    def __contains__(self, path: str | Path) -> bool:
        return self._key(path) in self._values

    def __len__(self) -> int:
        return len(self._values)

    # ----------------------------------------------------------------------- scoring

    def _device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        parameters = getattr(self.scorer, "parameters", None)
        reference = next(parameters(), None) if callable(parameters) else None
        if reference is None:
            return torch.device("cpu"), torch.float32
        return reference.device, reference.dtype

    def _score_batch(self, keys: list[str], frames: list[Tensor]) -> None:
        device, dtype = self._device_and_dtype()
        batch = torch.stack(frames).to(device=device, dtype=dtype)
        with torch.no_grad():
            output = self.scorer(batch).detach().float().cpu()
        self._values.update(zip(keys, self._split(output, len(keys))))

    def _fill(self, missing: list[str], frames_loader: FrameLoader) -> None:
        pending_keys: list[str] = []
        pending_frames: list[Tensor] = []
        unflushed = 0
        bar = tqdm(
            missing, desc=f"{self.what} → {self.path.name}", unit="frame",
            disable=not self.progress,
        )  # fmt: skip
        for key in bar:
            frame = frames_loader(key)
            if not isinstance(frame, Tensor) or frame.ndim != 3 or frame.shape[0] != 3:
                shape = tuple(frame.shape) if isinstance(frame, Tensor) else type(frame).__name__
                raise ValueError(
                    f"{type(self).__name__}: the frame loader returned {shape} for {key}; it "
                    "must return one 3×H×W RGB float frame in [0, 1]"
                )
            if pending_frames and frame.shape != pending_frames[0].shape:
                self._score_batch(pending_keys, pending_frames)  # sizes differ: close the batch
                unflushed += len(pending_keys)
                pending_keys, pending_frames = [], []
            pending_keys.append(key)
            pending_frames.append(frame)
            if len(pending_frames) == self.batch_size:
                self._score_batch(pending_keys, pending_frames)
                unflushed += len(pending_keys)
                pending_keys, pending_frames = [], []
            if unflushed >= FLUSH_EVERY:
                self._write()
                unflushed = 0
        if pending_frames:
            self._score_batch(pending_keys, pending_frames)
        self._write()

    def get_or_compute(self, paths: Sequence[str | Path], frames_loader: FrameLoader) -> Tensor:
        """The values of ``paths`` (float32, one per path in order: N scores or N×D features),
        computing only the missing ones.

        ``frames_loader(relative_path)`` returns that frame as a 3×H×W RGB float tensor in
        [0, 1]; it is called once per missing frame, never for cached ones.
        """
        keys = [self._key(path) for path in paths]
        missing = list(dict.fromkeys(key for key in keys if key not in self._values))
        if missing:
            log.info("%s cache %s: computing %d new frames", self.what, self.path, len(missing))
            self._fill(missing, frames_loader)
        return self._stack([self._values[key] for key in keys])


class DoverScoreCache(InputCache[float]):
    """DOVER(x) per input frame, in ``<key>.csv`` (``img_source``, ``dover``)."""

    what = "DOVER scores"
    suffix = ".csv"
    read_file = staticmethod(read_scores)
    write_file = staticmethod(write_scores)

    def _split(self, output: Tensor, count: int) -> list[float]:
        if output.shape != (count,):
            raise ValueError(
                f"DoverScoreCache: the scorer returned shape {tuple(output.shape)} for {count} "
                "frames; expected one score per frame"
            )
        return output.tolist()

    def _stack(self, values: list[float]) -> Tensor:
        return torch.tensor(values, dtype=torch.float32)


class FeatureCache(InputCache[np.ndarray]):
    """An encoder's feature row per input frame (the VQA's 512 input features), in
    ``<key>.npz``: the frozen encoder of a fixed view of an input never changes them."""

    what = "VQA features"
    suffix = ".npz"
    read_file = staticmethod(read_features)
    write_file = staticmethod(write_features)

    @classmethod
    def stored_sources(cls, path: Path) -> set[str]:
        # Only the sources array: the matrix (8 GB at the dataset's scale) stays on disk.
        return set(read_mapped_features(path)[0]) if path.is_file() else set()

    def _split(self, output: Tensor, count: int) -> list[np.ndarray]:
        if output.ndim != 2 or output.shape[0] != count:
            raise ValueError(
                f"FeatureCache: the encoder returned shape {tuple(output.shape)} for {count} "
                "frames; expected one feature row per frame"
            )
        return list(output.numpy().astype(np.float32))

    def _stack(self, values: list[np.ndarray]) -> Tensor:
        if not values:
            return torch.zeros(0, 0)
        return torch.from_numpy(np.stack(values).astype(np.float32))


def cache_path(data_root: str | Path, key: str, shard: tuple[int, int] | None = None) -> Path:
    """The DOVER cache file ``<data_root>/.dover_cache/<key>.csv`` (or a shard's)."""
    return DoverScoreCache.path_for(data_root, key, shard)


def shard_cache_paths(data_root: str | Path, key: str) -> list[Path]:
    """The DOVER cache's shard files of ``key`` present under ``data_root``, sorted."""
    return DoverScoreCache.shard_paths(data_root, key)


def merge_shard_caches(data_root: str | Path, key: str, remove: bool = False) -> Path:
    """:meth:`DoverScoreCache.merge_shards`."""
    return DoverScoreCache.merge_shards(data_root, key, remove)


__all__ = [
    "CACHE_DIR",
    "FeatureCache",
    "InputCache",
    "MappedFeatures",
    "read_mapped_features",
    "read_features",
    "write_features",
    "cache_path",
    "merge_shard_caches",
    "read_scores",
    "shard_cache_paths",
    "write_scores",
    "SCORE_COLUMN",
    "DoverCacheError",
    "DoverScoreCache",
    "FrameScorer",
]
