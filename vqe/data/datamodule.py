"""The Lightning datamodule: frame-index CSVs → train / val / test loaders of grouped batches.

Built from ``configs/dataset/*.yaml`` with ``hydra.utils.instantiate(cfg.dataset)`` (the dataset
config pulls the ``dataloader`` and ``augmentation`` groups in by interpolation), or directly
with plain arguments.

Stages:
* **train** — ``train_csv`` rows that ``train_query`` selects, minus every held-out val video;
  random (resized) crops to ``crop_size`` plus the configured augmentation, shuffled per epoch;
  plus the items of ``train_pairs`` when given (generated pairs, e.g. the clean-photo pool of
  :class:`vqe.data.photos.CleanPhotoPairs`, which the demo trains on).
* **val** — ``train_csv`` rows that ``val_query`` selects (no query: no validation); with
  ``val_videos = N`` only the last N videos (sorted by subset, video id) of those rows are held
  out. Whole videos are held out, so no frame of a val video is trained on.
* **test** — ``test_csv`` rows that ``test_query`` selects.
Val and test frames are whole, or centre-cropped / resized to ``eval_size`` — never random.

Every file a stage's rows list is checked to exist when the stage is set up (a directory listing,
no decoding), so a missing frame stops the run before training, naming the file and its CSV
line. ``on_bad_frame`` says what a missing or undecodable frame does: ``"stop"`` raises,
``"skip"`` logs it and trains without it (see :class:`vqe.data.datasets.FrameDataset`).

Distributed training: the batch sampler splits batches over ranks itself, so the trainer must
run with ``use_distributed_sampler=False``; :meth:`VQEDataModule.setup` raises otherwise.

``path: null`` stands for a root made on first use by ``default_root``
(``configs/dataset/demo.yaml`` passes :func:`vqe.dataprep.demo.ensure_demo`). It is handed in
rather than imported because making a data set is data preparation, a layer above this one
(:mod:`vqe.layers`); and it is called here, in :meth:`~VQEDataModule.prepare_data` (one process
per node, before the others set up), rather than by the trainer's caller, so that ranks started
together never build the same demo set at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vqe import schema
from vqe.data.concat import ConcatFrameSets, FrameSource
from vqe.data.datasets import (
    BAD_FRAME_POLICIES,
    BadFramePolicy,
    FrameDataset,
    PairSynthesis,
    read_index,
)
from vqe.data.input_cache import (
    DoverScoreCache,
    FeatureCache,
    FrameScorer,
    InputCache,
    read_mapped_features,
)
from vqe.data.sampler import EpochPermutation, GroupedBatchSampler
from vqe.data.transforms import Augmentation, EvalTransform, TrainTransform, as_size

Stage = Literal["fit", "validate", "test", "predict"]
_VIDEO_KEY = [schema.SUBSET, schema.VIDEO_ID]


def held_out_videos(candidates: pd.DataFrame, count: int | None) -> pd.DataFrame:
    """The (subset, video_id) pairs to hold out: all candidates' videos, or the last ``count``."""
    videos = candidates[_VIDEO_KEY].drop_duplicates().sort_values(_VIDEO_KEY)
    if count is None:
        return videos.reset_index(drop=True)
    if count < 0:
        raise ValueError(f"val_videos must be >= 0 or null, got {count}")
    return videos.iloc[len(videos) - min(count, len(videos)) :].reset_index(drop=True)


def _rows_of_videos(table: pd.DataFrame, videos: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows of ``table`` that belong to one of ``videos``."""
    keys = pd.MultiIndex.from_frame(table[_VIDEO_KEY])
    return pd.Series(keys.isin(pd.MultiIndex.from_frame(videos[_VIDEO_KEY])), index=table.index)


def check_demo_root(root: Path) -> None:
    """Refuse a root that is not a demo set, saying how to train on the challenge data."""
    if not (root / schema.DEMO_MANIFEST).is_file():
        raise FileNotFoundError(
            f"dataset.path {root} holds no {schema.DEMO_MANIFEST}, so it is not a demo set "
            "(dataset=demo, the default, expects one: `vqe demo DIR` builds it). For the "
            "challenge data add dataset=official, which brings the real-data settings "
            "(official DOVER, 100 epochs, critic weights required)."
        )


class VQEDataModule(pl.LightningDataModule):
    """Train / val / test loaders over a data root's frame-index CSVs.

    Args:
        path: data root holding the CSVs and frames; None uses the root ``default_root()``
            returns (resolved once, in :meth:`prepare_data` / :meth:`setup`).
        default_root: makes or finds the data root when ``path`` is None, e.g. the embedded
            demo set's :func:`vqe.dataprep.demo.ensure_demo` (see the module docstring).
        train_csv, test_csv: index file names under the root.
        train_query, val_query, test_query: pandas query expressions selecting each stage's rows.
        val_videos: hold out only the last N videos of the ``val_query`` rows (None: all of them).
        crop_size: training crop (int or [h, w]); None trains on whole frames.
        eval_size, eval_fit: optional val/test ``center_crop`` or ``resize`` to [h, w].
        augmentation: training augmentation; None crops only.
        pair_synthesis, synthesis_subsets: on-the-fly inputs made from training targets
            (see :class:`vqe.data.datasets.FrameDataset`); never used for val / test.
        train_pairs: an extra training dataset of generated (x, y) pairs whose items look like
            :class:`~vqe.data.datasets.FrameDataset` items (e.g.
            :class:`vqe.data.photos.CleanPhotoPairs`); trained on together with the CSV rows.
        batch_size, eval_batch_size, drop_last, num_workers, pin_memory, persistent_workers:
            DataLoader settings (``drop_last`` applies to training only).
        seed: base of the per-epoch order and per-item augmentation seeds (None means 0).
        on_bad_frame: ``"stop"`` (default) or ``"skip"`` for a listed frame that is missing or
            does not decode; skipped frames are logged with their path and CSV line.
        demo_set: the root must be a demo set (hold the ``demo.json`` that
            :mod:`vqe.dataprep.demo` writes), as ``configs/dataset/demo.yaml`` expects: a challenge
            root given there would silently train with the demo's sizes and random critics.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        default_root: Callable[[], Path] | None = None,
        train_csv: str = schema.TRAIN_CSV,
        test_csv: str = schema.TEST_CSV,
        train_query: str | None = None,
        val_query: str | None = None,
        val_videos: int | None = None,
        test_query: str | None = None,
        crop_size: int | Sequence[int] | None = 256,
        eval_size: int | Sequence[int] | None = None,
        eval_fit: Literal["center_crop", "resize"] = "center_crop",
        augmentation: Augmentation | None = None,
        pair_synthesis: PairSynthesis | None = None,
        synthesis_subsets: Sequence[str] = schema.SUPERVISED_SUBSETS,
        train_pairs: FrameSource | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        drop_last: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int | None = 0,
        on_bad_frame: BadFramePolicy = "stop",
        demo_set: bool = False,
    ) -> None:
        super().__init__()
        if on_bad_frame not in BAD_FRAME_POLICIES:
            raise ValueError(
                f"dataset.on_bad_frame must be one of {BAD_FRAME_POLICIES}, got {on_bad_frame!r}"
            )
        self.on_bad_frame = on_bad_frame
        self.demo_set = bool(demo_set)
        self.save_hyperparameters(
            logger=False, ignore=["default_root", "pair_synthesis", "train_pairs"]
        )
        self.path = path
        self.default_root = default_root
        self.train_csv, self.test_csv = train_csv, test_csv
        self.train_query, self.val_query, self.test_query = train_query, val_query, test_query
        self.val_videos = val_videos
        self.train_transform = TrainTransform(as_size(crop_size, "crop_size"), augmentation)
        self.eval_transform = EvalTransform(as_size(eval_size, "eval_size"), eval_fit)
        self.pair_synthesis = pair_synthesis
        self.synthesis_subsets = tuple(synthesis_subsets)
        self.train_pairs = train_pairs
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.drop_last = drop_last
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers
        self.seed = 0 if seed is None else int(seed)
        self.train_set: FrameSource | None = None
        self.val_set: FrameDataset | None = None
        self.test_set: FrameDataset | None = None
        self._root: Path | None = None
        # (stage, "scores" | "features") → the DOVER / VQA encoder of that stage's critics
        self._input_scorers: dict[tuple[str, str], FrameScorer] = {}
        self._train_rows: FrameDataset | None = None

    # ------------------------------------------------------------------ data root

    def data_root(self) -> Path:
        """The data root: ``path``, or what ``default_root()`` makes or finds (on first use)."""
        if self._root is None:
            if self.path is None:
                if self.default_root is None:
                    raise ValueError(
                        "dataset.path is null and no default_root is given; point dataset.path "
                        "at a data root (dataset=demo builds the demo set when it is null)"
                    )
                root = Path(self.default_root())
            else:
                root = Path(self.path).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(
                    f"dataset.path {root} is not a directory; point it at the data root"
                )
            if self.demo_set:
                check_demo_root(root)
            self._root = root
        return self._root

    def prepare_data(self) -> None:
        # Runs on one process per node before setup: makes the default root (the demo set) once.
        self.data_root()

    # ------------------------------------------------------------------ datasets

    def _check_trainer(self) -> None:
        """Refuse Lightning's DistributedSampler injection, which would break the batch sampler."""
        trainer = self.trainer
        connector = getattr(trainer, "_accelerator_connector", None)
        if getattr(connector, "is_distributed", False) and getattr(
            connector, "use_distributed_sampler", False
        ):
            raise RuntimeError(
                "VQEDataModule splits batches over ranks itself; run the trainer with "
                "use_distributed_sampler=False (trainer.use_distributed_sampler: false)"
            )

    def _dataset(self, csv_name: str, table: pd.DataFrame, train: bool) -> FrameDataset:
        dataset = FrameDataset(
            self.data_root(),
            table,
            self.data_root() / csv_name,
            transform=self.train_transform if train else self.eval_transform,
            pair_synthesis=self.pair_synthesis if train else None,
            synthesis_subsets=self.synthesis_subsets,
            seed=self.seed,
            on_bad_frame=self.on_bad_frame,
        )
        # Here rather than mid-epoch: a missing frame found late costs the epoch's work.
        dataset.check_files()
        return dataset

    def _build_fit_sets(self) -> None:
        csv_path = self.data_root() / self.train_csv
        train_rows = read_index(csv_path, self.train_query)
        val_rows = train_rows.iloc[:0]
        if self.val_query:
            candidates = read_index(csv_path, self.val_query)
            videos = held_out_videos(candidates, self.val_videos)
            val_rows = candidates[_rows_of_videos(candidates, videos)].reset_index(drop=True)
            train_rows = train_rows[~_rows_of_videos(train_rows, videos)].reset_index(drop=True)
        if train_rows.empty and self.train_pairs is None:
            raise ValueError(
                f"{csv_path}: no training rows left (train_query={self.train_query!r}, "
                f"val_query={self.val_query!r}, val_videos={self.val_videos!r}); loosen the queries"
            )
        rows = self._dataset(self.train_csv, train_rows, train=True)
        self._train_rows = rows
        if self.train_pairs is None:
            self.train_set = rows
        else:
            self.train_set = ConcatFrameSets(
                [rows, self.train_pairs], csv_path=f"{csv_path} + {self.train_pairs.csv_path}"
            )
        self.val_set = self._dataset(self.train_csv, val_rows, train=False)

    def setup(self, stage: Stage | None = None) -> None:
        self._check_trainer()
        if stage in (None, "fit", "validate") and self.train_set is None:
            self._build_fit_sets()
            assert self._train_rows is not None
            self._attach_input_caches(self._train_rows, "fit")
        if stage in (None, "test") and self.test_set is None:
            table = read_index(self.data_root() / self.test_csv, self.test_query)
            self.test_set = self._dataset(self.test_csv, table, train=False)
            self._attach_input_caches(self.test_set, "test")

    # ------------------------------------------------------------------ critic caches

    def score_inputs_with(
        self,
        fit: FrameScorer | None = None,
        test: FrameScorer | None = None,
        fit_features: FrameScorer | None = None,
        test_features: FrameScorer | None = None,
    ) -> None:
        """Deliver what the frozen critics compute of stored input frames in the batches:
        DOVER(x) as ``dover_input`` and the VQA's input features as ``vqa_input``.

        ``fit`` / ``test`` score the training / test rows (each the DOVER of the critics that
        will read the scores: its :attr:`cache_key` names the settings); ``fit_features`` /
        ``test_features`` are the VQA encoders of those critics. At setup the values come from
        the caches under the data root (:mod:`vqe.data.input_cache`), computed once for the
        frames they lack — on global rank 0 while the others wait, then read by every rank —
        so that no critic reads a frame file. Items that are not stored views (crops,
        augmentation, synthesis) carry NaN: their critics compute on the batch itself.
        """
        scorers = {
            ("fit", "scores"): fit,
            ("test", "scores"): test,
            ("fit", "features"): fit_features,
            ("test", "features"): test_features,
        }
        self._input_scorers = {key: scorer for key, scorer in scorers.items() if scorer}

    def _attach_input_caches(self, dataset: FrameDataset, stage: str) -> None:
        scorer = self._input_scorers.get((stage, "scores"))
        sources = self._fill_cache(dataset, scorer, DoverScoreCache) if scorer else []
        if sources:
            # Every rank reads the file rank 0 completed (a no-op recomputation otherwise).
            cache = DoverScoreCache(self.data_root(), scorer, progress=False)
            scores = cache.get_or_compute(sources, dataset.read_input)
            dataset.attach_input_scores(dict(zip(sources, scores.tolist())))
        encoder = self._input_scorers.get((stage, "features"))
        if encoder is not None and self._fill_cache(dataset, encoder, FeatureCache):
            # The matrix stays in the file, memory-mapped: one copy in the page cache for all
            # processes (8 GB at the dataset's 3.9 M frames), not one per rank and worker.
            path = FeatureCache.path_for(self.data_root(), encoder.cache_key)
            sources, features = read_mapped_features(path)
            dataset.attach_input_features(sources, features)
            if stage == "fit" and hasattr(self.train_pairs, "deliver_input_features"):
                # Generated pairs join the same batches: they carry NaN feature rows.
                self.train_pairs.deliver_input_features(features.shape[1])

    def _fill_cache(
        self, dataset: FrameDataset, scorer: FrameScorer, cache_type: type[InputCache]
    ) -> list[str]:
        """Fill the cache with the values of ``dataset``'s stored-view inputs on rank 0 while
        the other ranks wait; those sources (none: nothing to fill or serve)."""
        sources = dataset.stored_view_sources()
        if not sources:
            return []
        trainer = self.trainer
        if trainer is not None and hasattr(scorer, "to"):
            scorer.to(trainer.strategy.root_device)  # fill the cache on the run's device
        if trainer is None or trainer.global_rank == 0:
            path = cache_type.path_for(self.data_root(), scorer.cache_key)
            stored = cache_type.stored_sources(path)
            if not stored.issuperset(sources):  # else: nothing to compute, nothing to load
                cache_type(self.data_root(), scorer).get_or_compute(sources, dataset.read_input)
        if trainer is not None:
            trainer.strategy.barrier(f"input_cache_{cache_type.__name__}")
        return sources

    # ------------------------------------------------------------------ loaders

    def _loader(self, dataset: FrameSource | None, stage: str, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"VQEDataModule: call setup() before the {stage} loader")
        transform = dataset.transform
        batch_sampler = GroupedBatchSampler(
            EpochPermutation(len(dataset), shuffle=train, seed=self.seed),
            # Uncropped frames of different sizes cannot be stacked into one batch.
            dataset.group_keys(by_size=transform is None or transform.output_size is None),
            batch_size=self.batch_size if train else self.eval_batch_size,
            drop_last=self.drop_last and train,
            num_replicas=self.trainer.world_size if self.trainer is not None else None,
            rank=self.trainer.global_rank if self.trainer is not None else None,
        )
        if train and len(batch_sampler) == 0:
            raise ValueError(
                f"{dataset.csv_path}: {len(dataset)} training rows make no full batch of "
                f"{self.batch_size} in any (subset, has_target) group; "
                "lower batch_size or set drop_last: false"
            )
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=self.num_workers,
            # Page-locked batches only help a copy to a GPU (PyTorch warns on CPU-only runs).
            pin_memory=self.pin_memory and self._on_gpu(),
            # DataLoader refuses persistent workers without workers.
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def _on_gpu(self) -> bool:
        if self.trainer is not None:
            return self.trainer.strategy.root_device.type == "cuda"
        return torch.cuda.is_available()

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, "train", train=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is not None and len(self.val_set) == 0:
            return []  # nothing held out: Lightning skips validation
        return self._loader(self.val_set, "val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, "test", train=False)
