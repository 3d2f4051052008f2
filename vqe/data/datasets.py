"""The frame dataset: rows of a frame-index CSV (see :mod:`vqe.schema`) → dicts of tensors.

An item is ``{"x", "y" (rows with a target only), "subset", "video_id", "frame_index",
"has_target", "source"}`` with ``x``/``y`` 3×H×W RGB float in [0, 1]. A batch never mixes rows
with and without ``y``: :class:`vqe.data.sampler.GroupedBatchSampler` keeps them apart.

Per-item randomness (crop, flips, jitter, synthesised degradations) is seeded from
(seed, epoch, index), so an item is the same whichever worker loads it and whenever.

Bad frames: messages name the file and its line in the CSV (:data:`CSV_LINE`, the header being
line 1), not its position in a filtered table. :meth:`FrameDataset.check_files` finds missing
files before training (a directory listing per folder, no decoding); a frame that is missing or
does not decode when read is handled by ``on_bad_frame``: ``"stop"`` raises, ``"skip"`` logs
the file and its line and serves another frame of the same group (subset, target, size) instead.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from vqe import schema
from vqe.conventions import bgr_uint8_to_tensor
from vqe.data.input_cache import MappedFeatures
from vqe.data.sampler import FrameKey
from vqe.data.transforms import PairTransform

#: ``pair_synthesis(y, rng) -> x``: a degraded input made from a clean 3×H×W target, e.g.
#: :class:`vqe.data.degradations.DegradationPipeline`.
PairSynthesis = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]

log = logging.getLogger(__name__)

#: Columns every index must have; ``frame_index`` is derived when absent (official CSVs lack it).
REQUIRED_COLUMNS = schema.FRAME_INDEX_COLUMNS
#: Column :func:`read_index` adds: the row's line in its CSV (the header is line 1), so that
#: messages point into the file whatever query filtered the table.
CSV_LINE = "csv_line"
#: What a frame that cannot be read does: stop the run (raise) or be skipped (logged).
BadFramePolicy = Literal["stop", "skip"]
BAD_FRAME_POLICIES = ("stop", "skip")
#: Missing files listed in one message; the total is always given.
_LISTED_FILES = 10
#: CSVs whose official subset names were already reported (one log line per file).
_NORMALISED_CSVS: set[str] = set()
_TEXT_COLUMNS = {
    schema.IMG_SOURCE: str,
    schema.IMG_TARGET: str,
    schema.SUBSET: str,
    schema.VIDEO_ID: str,
}


class UnreadableFrame(ValueError):
    """A listed frame exists but does not decode as an image."""


def _integer_column(table: pd.DataFrame, column: str, csv_path: Path, minimum: int) -> pd.Series:
    """The column as int64, or an error naming the CSV, the column and the first bad line."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values < minimum) | (values % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{csv_path}: column {column!r} must hold integers >= {minimum}; "
            f"line {table[CSV_LINE].iloc[row]} has {str(table[column].iloc[row])!r}"
        )
    return values.astype(np.int64)


def normalise_subsets(table: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """Read the official builder's subset names (``train_supervised_synthetic`` …) as vqe's
    (``synthetic`` …), so queries and the sampler see one vocabulary; logged once per CSV."""
    found = sorted(set(table[schema.SUBSET]) & set(schema.OFFICIAL_SUBSETS))
    if not found:
        return table
    mapping = {name: schema.OFFICIAL_SUBSETS[name] for name in found}
    if str(csv_path) not in _NORMALISED_CSVS:
        _NORMALISED_CSVS.add(str(csv_path))
        log.info(
            "%s: official subset names read as vqe's: %s",
            csv_path,
            ", ".join(f"{official} -> {ours}" for official, ours in mapping.items()),
        )
    return table.assign(**{schema.SUBSET: table[schema.SUBSET].replace(mapping)})


def normalise_query(query: str) -> str:
    """``query`` with quoted official subset names replaced by vqe's, so that a query written
    in either vocabulary selects the same rows of a normalised index."""
    for official, ours in schema.OFFICIAL_SUBSETS.items():
        query = re.sub(rf"(['\"]){official}\1", rf"\g<1>{ours}\1", query)
    return query


def _natural_key(path: str) -> str:
    # frame_9 before frame_10 whether or not the numbers are zero-padded.
    return re.sub(r"\d+", lambda match: match.group().zfill(12), path)


def derive_frame_index(table: pd.DataFrame) -> pd.Series:
    """0-based frame positions within each (subset, video_id), in file-name order.

    The official builder lists frames in ``glob`` order (arbitrary), so the row order cannot be
    trusted; frame file names (``frame_0001.jpg`` …) can.
    """
    names = table[schema.IMG_SOURCE].map(_natural_key)
    ordered = table.assign(_name=names).sort_values(
        [schema.SUBSET, schema.VIDEO_ID, "_name"], kind="stable"
    )
    positions = ordered.groupby([schema.SUBSET, schema.VIDEO_ID], sort=False).cumcount()
    return positions.reindex(table.index)


def read_index(csv_path: str | Path, query: str | None = None) -> pd.DataFrame:
    """Read a frame-index CSV, check its columns and values, and keep the rows ``query`` selects.

    ``query`` is a :meth:`pandas.DataFrame.query` expression, e.g.
    ``"subset == 'synthetic' and video_id in ['video_0001']"``. The index is reset to 0…n-1;
    column :data:`CSV_LINE` keeps each row's line in the file.

    CSVs made by the organisers' ``dataset_builder.py`` are accepted as they are: their subset
    names are read as vqe's (:data:`vqe.schema.OFFICIAL_SUBSETS`; a query may use either) and
    the ``frame_index`` / ``fps`` columns they lack are derived (frame-name order) / left out.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"{csv_path}: frame index not found; build it with `vqe build` or check dataset.path"
        )
    try:
        table = pd.read_csv(csv_path, dtype=_TEXT_COLUMNS, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{csv_path}: cannot be read as a CSV frame index ({error})") from error
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"{csv_path}: missing columns {missing}; a frame index has {list(schema.INDEX_COLUMNS)}"
        )
    table[CSV_LINE] = np.arange(len(table), dtype=np.int64) + 2  # before any row is dropped
    table = normalise_subsets(table, csv_path)
    bad_subsets = sorted(set(table[schema.SUBSET]) - set(schema.SUBSETS))
    if bad_subsets:
        raise ValueError(
            f"{csv_path}: unknown {schema.SUBSET} values {bad_subsets}; "
            f"expected one of {schema.SUBSETS} (or the official builder's "
            f"{sorted(schema.OFFICIAL_SUBSETS)})"
        )
    for column in (schema.HEIGHT, schema.WIDTH):
        table[column] = _integer_column(table, column, csv_path, minimum=1)
    if schema.FRAME_INDEX not in table.columns:
        table[schema.FRAME_INDEX] = derive_frame_index(table)
    table[schema.FRAME_INDEX] = _integer_column(table, schema.FRAME_INDEX, csv_path, minimum=0)
    if query:
        try:
            table = table.query(normalise_query(query))
        except Exception as error:  # pandas raises many types for a bad expression
            raise ValueError(
                f"{csv_path}: cannot apply query {query!r} ({type(error).__name__}: {error})"
            ) from error
    return table.reset_index(drop=True)


def item_seed(seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of one item in one epoch; independent streams for each triple."""
    return np.random.SeedSequence([seed, epoch, index])


def missing_input_features(size: int) -> torch.Tensor:
    """The ``vqa_input`` of an item without cached features: ``size`` NaNs (its critics
    encode x on the batch)."""
    return torch.full((size,), math.nan)


class InputFeatures:
    """Feature rows of stored input frames, looked up by path; unknown paths get a NaN row.

    ``features`` is one N×D matrix, not one tensor per frame: a tensor (shared by forked loader
    workers) or the memory-mapped matrix of the cache file
    (:class:`~vqe.data.input_cache.MappedFeatures`, shared by every process on the machine
    through the page cache); rows are copied out on demand."""

    def __init__(self, sources: Sequence[str], features: torch.Tensor | MappedFeatures) -> None:
        shape = tuple(features.shape)
        if len(shape) != 2 or shape[0] != len(sources):
            raise ValueError(
                f"{len(sources)} input paths for a feature matrix of shape {shape}; expected "
                "one row per path"
            )
        if isinstance(features, torch.Tensor):
            features = features.float().contiguous()
        self.matrix = features
        self.size = int(shape[1])
        self.rows = {str(source): row for row, source in enumerate(sources)}

    def row(self, source: str | None) -> torch.Tensor:
        """The features of ``source`` (a copy), or NaN when it has none (or is None)."""
        number = self.rows.get(source) if source is not None else None
        if number is None:
            return missing_input_features(self.size)
        return torch.tensor(np.asarray(self.matrix[number]), dtype=torch.float32)


class FrameDataset(Dataset[dict[str, Any]]):
    """Frames (and targets) listed by a frame index, read with OpenCV and converted to RGB [0, 1].

    Args:
        root: data root; the index's paths are relative to it.
        index: the index rows (see :func:`read_index`).
        csv_path: the CSV the rows come from, named in error messages.
        transform: per-item transform; None returns whole frames unchanged.
        pair_synthesis: when given, rows with a target whose subset is in ``synthesis_subsets``
            get ``x = pair_synthesis(y, rng)`` (after the geometric transform, before the
            photometric one) instead of reading their input file.
        seed: base of the per-item seeds.
        on_bad_frame: ``"stop"`` raises on a frame that is missing or does not decode;
            ``"skip"`` logs it (path and CSV line) and serves another frame of its group.
    """

    def __init__(
        self,
        root: str | Path,
        index: pd.DataFrame,
        csv_path: str | Path,
        transform: PairTransform | None = None,
        pair_synthesis: PairSynthesis | None = None,
        synthesis_subsets: Sequence[str] = schema.SUPERVISED_SUBSETS,
        seed: int = 0,
        on_bad_frame: BadFramePolicy = "stop",
    ) -> None:
        if on_bad_frame not in BAD_FRAME_POLICIES:
            raise ValueError(
                f"on_bad_frame must be one of {BAD_FRAME_POLICIES}, got {on_bad_frame!r}"
            )
        unknown = sorted(set(synthesis_subsets) - set(schema.SUPERVISED_SUBSETS))
        if unknown:
            raise ValueError(
                f"synthesis_subsets {unknown} are not supervised subsets "
                f"{schema.SUPERVISED_SUBSETS}"
            )
        self.root = Path(root)
        self.csv_path = Path(csv_path)
        self.transform = transform
        self.pair_synthesis = pair_synthesis
        self.synthesis_subsets = tuple(synthesis_subsets)
        self.seed = seed
        self.on_bad_frame = on_bad_frame
        self._set_rows(index)
        self._bad_rows: set[int] = set()  # rows found unreadable in this process (skip policy)
        self._group_rows: dict[Hashable, list[int]] | None = None  # built on the first skip
        self._input_scores: dict[str, float] = {}  # stored frame path → DOVER(x)
        self._input_features: InputFeatures | None = None  # stored path → VQA features of x

    def _set_rows(self, index: pd.DataFrame) -> None:
        self.index = index.reset_index(drop=True)
        targets = self.index[schema.IMG_TARGET].fillna("").astype(str).str.strip()
        self._has_target = (targets != "").to_numpy()

    @classmethod
    def from_csv(
        cls, root: str | Path, csv_name: str, query: str | None = None, **kwargs: Any
    ) -> FrameDataset:
        csv_path = Path(root) / csv_name
        return cls(root, read_index(csv_path, query), csv_path, **kwargs)

    def __len__(self) -> int:
        return len(self.index)

    def has_target(self, row: int) -> bool:
        return bool(self._has_target[row])

    def group_keys(self, by_size: bool) -> list[Hashable]:
        """One key per row: (subset, has_target), plus the CSV's (h, w) when ``by_size``."""
        subsets = self.index[schema.SUBSET].tolist()
        if not by_size:
            return list(zip(subsets, self._has_target.tolist()))
        heights, widths = self.index[schema.HEIGHT].tolist(), self.index[schema.WIDTH].tolist()
        return list(zip(subsets, self._has_target.tolist(), heights, widths))

    def is_stored_view(self, row: int) -> bool:
        """Whether row ``row``'s x is its stored input frame unchanged (no synthesis, and a
        transform that keeps whole frames): the view a per-frame cache of DOVER(x) holds for."""
        keeps = self.transform is None or self.transform.keeps_frames
        return keeps and not self._synthesises(row)

    def stored_view_sources(self) -> list[str]:
        """The distinct input paths (relative to the root) of the rows that are stored views."""
        sources = self.index[schema.IMG_SOURCE].astype(str).tolist()
        return list(dict.fromkeys(s for row, s in enumerate(sources) if self.is_stored_view(row)))

    def read_input(self, relative: str) -> torch.Tensor:
        """The stored input frame ``relative`` (a :meth:`stored_view_sources` path), 3×H×W."""
        rows = self.index.index[self.index[schema.IMG_SOURCE].astype(str) == relative]
        if len(rows) == 0:
            raise KeyError(f"{self.csv_path}: no row has the input {relative}")
        return self._read(relative, int(rows[0]))

    def attach_input_scores(self, scores: Mapping[str, float]) -> None:
        """DOVER(x) per stored input path, served as each stored-view item's ``dover_input``
        (computed data-side, e.g. by :meth:`vqe.data.datamodule.VQEDataModule.score_inputs_with`)."""
        self._input_scores = {str(path): float(score) for path, score in scores.items()}

    def attach_input_features(
        self, sources: Sequence[str], features: torch.Tensor | MappedFeatures
    ) -> None:
        """The VQA's features of x per stored input path (``features[i]`` of ``sources[i]``),
        served as each item's ``vqa_input`` — NaN for items that are not stored views — from
        now on (computed data-side by :meth:`vqe.data.datamodule.VQEDataModule.score_inputs_with`)."""
        self._input_features = InputFeatures(sources, features)

    def _where(self, row: int) -> str:
        """Where row ``row`` comes from: its CSV line, or its table row without one."""
        if CSV_LINE in self.index.columns:
            return f"{self.csv_path} line {self.index.at[row, CSV_LINE]}"
        return f"{self.csv_path} (table row {row})"

    def _read(self, relative: str, row: int) -> torch.Tensor:
        path = self.root / relative
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: frame listed in {self._where(row)} does not exist; rebuild the index "
                "or restore the file"
            )
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            hint = " or set dataset.on_bad_frame=skip" if self.on_bad_frame == "stop" else ""
            raise UnreadableFrame(
                f"{path}: frame listed in {self._where(row)} cannot be decoded as an image; "
                f"rebuild it (vqe build overwrite=true){hint}"
            )
        frame = bgr_uint8_to_tensor(image)
        expected = (int(self.index.at[row, schema.HEIGHT]), int(self.index.at[row, schema.WIDTH]))
        if tuple(frame.shape[1:]) != expected:
            raise ValueError(
                f"{path}: frame is {frame.shape[1]}×{frame.shape[2]} (h×w) but "
                f"{self._where(row)} says {expected[0]}×{expected[1]}; rebuild the index"
            )
        return frame

    # ------------------------------------------------------------------ bad frames

    def _needed_files(self) -> pd.DataFrame:
        """(row, relative path) of every file reading the rows opens."""
        rows = np.arange(len(self.index))
        synthesised = self._has_target & self.index[schema.SUBSET].isin(self.synthesis_subsets)
        reads_source = ~synthesised.to_numpy() if self.pair_synthesis is not None else rows >= 0
        sources = pd.DataFrame({"row": rows[reads_source]})
        sources["path"] = self.index[schema.IMG_SOURCE].to_numpy()[reads_source]
        targets = pd.DataFrame({"row": rows[self._has_target]})
        targets["path"] = self.index[schema.IMG_TARGET].to_numpy()[self._has_target]
        return pd.concat([sources, targets], ignore_index=True)

    def _missing(self, files: pd.DataFrame) -> np.ndarray:
        """Mask of ``files`` that do not exist: one listing per folder, not a stat per frame."""
        listings: dict[str, set[str]] = {}
        missing = np.zeros(len(files), dtype=bool)
        for position, relative in enumerate(files["path"]):
            folder, name = os.path.split(os.path.join(self.root, relative))
            if folder not in listings:
                try:
                    listings[folder] = set(os.listdir(folder))
                except OSError:  # no such folder (or not one): every file in it is missing
                    listings[folder] = set()
            missing[position] = name not in listings[folder]
        return missing

    def check_files(self) -> int:
        """Find the listed files that do not exist, before any is read; returns their count.

        ``on_bad_frame="stop"`` raises ``FileNotFoundError`` naming them with their CSV lines;
        ``"skip"`` logs them the same way and drops their rows.
        """
        files = self._needed_files()
        missing = files[self._missing(files)]
        if missing.empty:
            return 0
        listed = [f"{self._where(row)}: {path}" for row, path in missing.head(_LISTED_FILES).values]
        more = len(missing) - len(listed)
        text = (
            f"{len(missing)} file(s) listed in {self.csv_path} do not exist under {self.root}:\n  "
            + "\n  ".join(listed)
            + (f"\n  … and {more} more" if more else "")
        )
        if self.on_bad_frame == "stop":
            raise FileNotFoundError(
                f"{text}\nrebuild the index (vqe build), restore the files, or "
                "set dataset.on_bad_frame=skip to train without those rows"
            )
        rows = sorted(set(missing["row"]))
        log.warning("%s\nskipping their %d row(s) (on_bad_frame=skip)", text, len(rows))
        self._set_rows(self.index.drop(index=rows))
        return len(missing)

    def _stand_in(self, row: int, error: Exception) -> int:
        """Log ``row`` as unreadable and pick the next readable-looking row of its group, so
        that the batch still stacks (same subset, target and size)."""
        if row not in self._bad_rows:
            self._bad_rows.add(row)
            log.warning("skipped (on_bad_frame=skip): %s", error)
        if self._group_rows is None:
            self._group_rows = {}
            for position, key in enumerate(self.group_keys(by_size=True)):
                self._group_rows.setdefault(key, []).append(position)
        group = self._group_rows[self.group_keys_of(row)]
        start = group.index(row)
        for other in group[start + 1 :] + group[:start]:
            if other not in self._bad_rows:
                return other
        raise RuntimeError(
            f"{self.csv_path}: every frame of group {self.group_keys_of(row)} is unreadable "
            f"(last: {error}); rebuild the index"
        ) from error

    def group_keys_of(self, row: int) -> Hashable:
        """The finest group key of one row (what :meth:`group_keys` gives with ``by_size``)."""
        return (
            self.index.at[row, schema.SUBSET],
            bool(self._has_target[row]),
            int(self.index.at[row, schema.HEIGHT]),
            int(self.index.at[row, schema.WIDTH]),
        )

    def _synthesises(self, row: int) -> bool:
        return (
            self.pair_synthesis is not None
            and self.has_target(row)
            and self.index.at[row, schema.SUBSET] in self.synthesis_subsets
        )

    def __getitem__(self, key: int | FrameKey) -> dict[str, Any]:
        row, epoch = (key.index, key.epoch) if isinstance(key, FrameKey) else (int(key), 0)
        while True:
            try:
                return self._item(row, epoch)
            except (FileNotFoundError, UnreadableFrame) as error:
                if self.on_bad_frame == "stop":
                    raise
                row = self._stand_in(row, error)

    def _item(self, row: int, epoch: int) -> dict[str, Any]:
        record = self.index.iloc[row]
        streams = item_seed(self.seed, epoch, row).spawn(2)
        generator = torch.Generator().manual_seed(int(streams[0].generate_state(1, np.uint64)[0]))
        y = self._read(record[schema.IMG_TARGET], row) if self.has_target(row) else None

        is_stored_view = self.is_stored_view(row)
        if self._synthesises(row):
            assert y is not None and self.pair_synthesis is not None
            if self.transform is not None:
                (y,) = self.transform.geometric([y], generator)
            x = self.pair_synthesis(y, np.random.default_rng(streams[1]))
            if tuple(x.shape) != tuple(y.shape):
                raise ValueError(
                    f"pair_synthesis returned shape {tuple(x.shape)} for a target of "
                    f"{tuple(y.shape)} "
                    f"({self._where(row)}); it must keep the frame size"
                )
            if self.transform is not None:
                x = self.transform.photometric(x, generator)
        else:
            # Both frames were checked against the row's (h, w), so they match each other too.
            stored = self._read(record[schema.IMG_SOURCE], row)
            x = stored
            if self.transform is not None:
                x, y = self.transform(x, y, generator)

        item: dict[str, Any] = {
            "x": x,
            "subset": record[schema.SUBSET],
            "video_id": record[schema.VIDEO_ID],
            "frame_index": int(record[schema.FRAME_INDEX]),
            "has_target": y is not None,
            "source": str(record[schema.IMG_SOURCE]),
            # The source path when x is that stored frame unchanged (no crop, flip, jitter or
            # synthesis), else "".
            "stored_input": str(record[schema.IMG_SOURCE]) if is_stored_view else "",
            # DOVER(x) of that stored frame when attach_input_scores() gave one, else NaN (the
            # critics then score the batch's x): scores hold only for exactly that view.
            "dover_input": self._input_scores.get(str(record[schema.IMG_SOURCE]), math.nan)
            if is_stored_view
            else math.nan,
        }
        if self._input_features is not None:
            item["vqa_input"] = self._input_features.row(
                str(record[schema.IMG_SOURCE]) if is_stored_view else None
            )
        if y is not None:
            item["y"] = y
        return item
