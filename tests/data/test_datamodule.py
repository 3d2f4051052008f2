"""VQEDataModule: stage splits, loader shapes, Hydra configs and a short Lightning run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from config_helpers import compose_config
from hydra.utils import instantiate
from index_helpers import TEST_VIDEOS, TRAIN_VIDEOS, write_train_and_test

import vqe.config_root  # noqa: F401  (registers ${vqe.mac_budget:}, which the configs use)
from vqe import schema
from vqe.data.datamodule import VQEDataModule
from vqe.data.transforms import Augmentation


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    write_train_and_test(folder)
    return folder


def make_datamodule(root: Path, **overrides) -> VQEDataModule:
    options = {
        "path": root,
        "val_query": "subset == 'synthetic'",
        "val_videos": 1,
        "crop_size": 16,
        "batch_size": 2,
        "augmentation": Augmentation(hflip_p=0.5, jitter_p=0.5, brightness=0.2),
        "drop_last": False,
    }
    return VQEDataModule(**{**options, **overrides})


def videos_of(dataset) -> set[tuple[str, str]]:
    return set(zip(dataset.index[schema.SUBSET], dataset.index[schema.VIDEO_ID]))


def test_val_holds_out_whole_videos_from_training(root: Path) -> None:
    datamodule = make_datamodule(root)
    datamodule.setup("fit")
    assert videos_of(datamodule.val_set) == {(schema.SUBSET_SYNTHETIC, "video_0003")}
    assert not videos_of(datamodule.val_set) & videos_of(datamodule.train_set)
    total = sum(video.frames for video in TRAIN_VIDEOS)
    assert len(datamodule.train_set) + len(datamodule.val_set) == total
    everything = make_datamodule(root, val_videos=None, train_query="subset != 'real'")
    everything.setup("fit")
    assert {video for _, video in videos_of(everything.val_set)} == {
        "video_0001",
        "video_0002",
        "video_0003",
    }
    assert set(everything.train_set.index[schema.SUBSET]) == {schema.SUBSET_UNSUPERVISED}


def test_train_batches_are_cropped_and_never_mix_supervision(root: Path) -> None:
    datamodule = make_datamodule(root)
    datamodule.setup("fit")
    seen_rows = 0
    for batch in datamodule.train_dataloader():
        size = len(batch["subset"])
        assert batch["x"].shape == (size, 3, 16, 16) and batch["x"].dtype == torch.float32
        assert len(set(batch["subset"])) == 1
        assert bool(batch["has_target"].all()) == ("y" in batch) == bool(batch["has_target"].any())
        if "y" in batch:
            assert batch["y"].shape == batch["x"].shape
        seen_rows += size
    assert seen_rows == len(datamodule.train_set)


def test_val_and_test_batches_are_whole_frames_grouped_by_size(root: Path) -> None:
    datamodule = make_datamodule(root, eval_batch_size=2)
    datamodule.setup("fit")
    datamodule.setup("test")
    val_shapes = {tuple(batch["x"].shape) for batch in datamodule.val_dataloader()}
    assert val_shapes == {(2, 3, 32, 48)}  # 4 frames of the held-out 32×48 video
    test_rows = 0
    for batch in datamodule.test_dataloader():
        assert batch["x"].shape[-2:] in {(32, 48), (36, 40)}
        assert ("y" in batch) == (batch["subset"][0] == schema.SUBSET_SYNTHETIC)
        test_rows += len(batch["subset"])
    assert test_rows == sum(video.frames for video in TEST_VIDEOS)
    cropped = make_datamodule(root, eval_size=[16, 24])
    cropped.setup("test")
    assert {tuple(b["x"].shape[-2:]) for b in cropped.test_dataloader()} == {(16, 24)}


def test_uncropped_training_batches_group_by_size(root: Path) -> None:
    datamodule = make_datamodule(root, crop_size=None, batch_size=4)
    datamodule.setup("fit")
    shapes = {tuple(batch["x"].shape[-2:]) for batch in datamodule.train_dataloader()}
    assert shapes == {(32, 48), (36, 40)}


def test_setup_errors_are_explained(root: Path) -> None:
    with pytest.raises(ValueError, match="no training rows"):
        make_datamodule(root, train_query="subset == 'synthetic'", val_videos=None).setup("fit")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        make_datamodule(root / "missing").setup("fit")
    datamodule = make_datamodule(root, batch_size=64, drop_last=True)
    datamodule.setup("fit")
    with pytest.raises(ValueError, match="lower batch_size"):
        datamodule.train_dataloader()
    with pytest.raises(RuntimeError, match="setup"):
        make_datamodule(root).test_dataloader()


def test_without_a_path_the_default_root_is_made_once(root: Path) -> None:
    calls: list[Path] = []

    def default_root() -> Path:
        calls.append(root)
        return root

    datamodule = make_datamodule(None, default_root=default_root)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert calls == [root] and datamodule.data_root() == root and len(datamodule.train_set) > 0
    with pytest.raises(ValueError, match="no default_root"):
        make_datamodule(None).data_root()


def test_distributed_trainer_must_leave_the_sampler_alone(root: Path) -> None:
    options = {"accelerator": "cpu", "strategy": "ddp", "devices": 1, "logger": False}
    datamodule = make_datamodule(root)
    datamodule.trainer = pl.Trainer(**options)
    with pytest.raises(RuntimeError, match="use_distributed_sampler"):
        datamodule.setup("fit")
    datamodule.trainer = pl.Trainer(**options, use_distributed_sampler=False)
    datamodule.setup("fit")
    assert datamodule.train_set is not None


@pytest.mark.parametrize(("dataset", "augmentation"), [("demo", "default"), ("official", "none")])
def test_configs_instantiate_a_working_datamodule(
    root: Path, dataset: str, augmentation: str
) -> None:
    cfg = compose_config(
        None,
        [
            f"+dataset={dataset}",
            "+dataloader=default",
            f"+augmentation={augmentation}",
            f"dataset.path={root}",
            "dataset.crop_size=[16,16]",
            "dataset.val_videos=1",
            "dataloader.num_workers=0",
            "dataloader.batch_size=2",
            "dataloader.pin_memory=false",
            "dataset.demo_set=false",  # the tiny index is no demo set (see the test below)
        ],
    )
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, VQEDataModule) and isinstance(
        datamodule.train_transform.augmentation, Augmentation
    )
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["x"].shape == (2, 3, 16, 16)
    assert next(iter(datamodule.val_dataloader()))["x"].shape == (1, 3, 32, 48)


class _Recorder(pl.LightningModule):
    """Records which frames each training epoch saw and what their inputs looked like."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: dict[int, list[tuple[str, int, float]]] = {}
        self.val_batches = 0

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        items = zip(
            batch["source"], batch["frame_index"].tolist(), batch["x"].flatten(1).sum(1).tolist()
        )
        self.seen.setdefault(self.current_epoch, []).extend(items)
        return self.weight * batch["x"].mean()

    def validation_step(self, batch: dict, batch_index: int) -> None:
        self.val_batches += 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_reshuffles_each_epoch_through_persistent_workers(root: Path) -> None:
    datamodule = make_datamodule(
        root,
        augmentation=Augmentation(jitter_p=1.0, brightness=0.3),
        num_workers=1,
        persistent_workers=True,
    )
    model = _Recorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=datamodule)
    first, second = model.seen[0], model.seen[1]
    assert sorted(item[:2] for item in first) == sorted(item[:2] for item in second)
    assert [item[:2] for item in first] != [item[:2] for item in second]
    # The worker process learned the new epoch from the batches: the same frame is jittered anew.
    first_sums, second_sums = {i[:2]: i[2] for i in first}, {i[:2]: i[2] for i in second}
    assert all(abs(first_sums[key] - second_sums[key]) > 1e-6 for key in first_sums)
    assert model.val_batches > 0


# --------------------------------------------------------------------------- generated pairs


def _cheap_degradation(y: torch.Tensor, rng) -> torch.Tensor:
    return (y * float(rng.uniform(0.3, 0.6))).clamp(0.0, 1.0)


def test_train_pairs_join_the_csv_rows_every_epoch(root: Path) -> None:
    from vqe.data.photos import POOL_PHOTOS, TRAIN_PHOTOS, CleanPhotoPairs, photo_source

    pool_sources = {photo_source(name) for name in POOL_PHOTOS}
    train_sources = {photo_source(name) for name in TRAIN_PHOTOS}

    pairs = CleanPhotoPairs(crop_size=16, samples_per_epoch=6, pair_synthesis=_cheap_degradation)
    datamodule = make_datamodule(root, train_pairs=pairs)
    datamodule.setup("fit")
    csv_only = make_datamodule(root)
    csv_only.setup("fit")
    assert len(datamodule.train_set) == len(csv_only.train_set) + 6
    photo_items = []
    for batch in datamodule.train_dataloader():
        assert batch["x"].shape[-2:] == (16, 16) and len(set(batch["has_target"].tolist())) == 1
        photo_items += [s for s in batch["source"] if s in pool_sources]
    assert len(photo_items) == 6  # each generated pair once per epoch
    assert set(photo_items) <= train_sources
    # Validation is untouched: still the held-out CSV video only.
    assert videos_of(datamodule.val_set) == videos_of(csv_only.val_set)


def test_train_pairs_alone_are_enough_to_train(root: Path) -> None:
    from vqe.data.photos import CleanPhotoPairs

    pairs = CleanPhotoPairs(crop_size=16, samples_per_epoch=4, pair_synthesis=_cheap_degradation)
    datamodule = make_datamodule(root, train_query="subset == 'synthetic'", val_videos=None)
    with pytest.raises(ValueError, match="no training rows"):
        datamodule.setup("fit")
    datamodule = make_datamodule(
        root, train_query="subset == 'synthetic'", val_videos=None, train_pairs=pairs
    )
    datamodule.setup("fit")
    assert sum(len(b["source"]) for b in datamodule.train_dataloader()) == 4


# --------------------------------------------------------------------------- official CSVs


def _official_csv(ours: Path, official: Path, split: str, seed: int) -> None:
    """The organisers' builder's CSV of the same frames: official columns and subset names only,
    rows in arbitrary (glob) order."""
    import pandas as pd

    table = pd.read_csv(ours, dtype=str, keep_default_na=False)
    names = {"synthetic": "supervised_synthetic", "real": "supervised_real"}
    table[schema.SUBSET] = [f"{split}_{names.get(s, s)}" for s in table[schema.SUBSET]]
    table = table[list(schema.FRAME_INDEX_COLUMNS)].sample(frac=1.0, random_state=seed)
    table.to_csv(official, index=False)


def test_official_builder_csvs_load_and_select_the_same_rows(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _official_csv(root / schema.TRAIN_CSV, root / "official_train.csv", "train", seed=0)
    _official_csv(root / schema.TEST_CSV, root / "official_test.csv", "test", seed=1)
    ours = make_datamodule(root, train_query="subset in ['synthetic', 'real', 'unsupervised']")
    with caplog.at_level("INFO", logger="vqe.data.datasets"):
        theirs = make_datamodule(
            root,
            train_csv="official_train.csv",
            test_csv="official_test.csv",
            train_query="subset in ['synthetic', 'real', 'unsupervised']",
        )
        theirs.setup("fit")
        theirs.setup("test")
    ours.setup("fit")
    ours.setup("test")

    def rows(dataset) -> set[tuple[str, str, str, int]]:
        table = dataset.index
        return set(
            zip(
                table[schema.IMG_SOURCE],
                table[schema.SUBSET],
                table[schema.VIDEO_ID],
                table[schema.FRAME_INDEX].tolist(),
            )
        )

    for stage in ("train_set", "val_set", "test_set"):
        assert rows(getattr(theirs, stage)) == rows(getattr(ours, stage)), stage
    assert len(theirs.val_set) > 0 and set(theirs.test_set.index[schema.SUBSET]) == {
        schema.SUBSET_SYNTHETIC,
        schema.SUBSET_UNSUPERVISED,
    }
    # Said once per CSV (train.csv is read for train and val), naming the file and the mapping.
    notes = [r.getMessage() for r in caplog.records if "official subset names" in r.getMessage()]
    assert len([n for n in notes if "official_train.csv" in n]) == 1
    assert any("train_supervised_synthetic -> synthetic" in n for n in notes)
    assert any("official_test.csv" in n and "test_unsupervised -> unsupervised" in n for n in notes)
    # The frames load and batch like ours.
    batch = next(iter(theirs.train_dataloader()))
    assert batch["x"].shape[-2:] == (16, 16)


# --------------------------------------------------------------------------- vqe.yaml


def _compose_vqe(*overrides: str):
    return compose_config("vqe", ["paths.output_dir=/tmp/unused", *overrides])


def test_the_documented_pair_synthesis_line_builds_the_realesrgan_pipeline(root: Path) -> None:
    from vqe.data.degradations import DegradationPipeline, DegradationRanges
    from vqe.training.train import build

    cfg = _compose_vqe(
        "dataset=official",
        f"dataset.path={root}",
        "dataset.pair_synthesis=${degradation}",
        "dataset.crop_size=16",
    )
    datamodule = build(cfg.dataset)
    assert isinstance(datamodule.pair_synthesis, DegradationPipeline)
    assert datamodule.pair_synthesis.ranges == DegradationRanges()  # the yaml mirrors the defaults
    datamodule.setup("fit")
    item = datamodule.train_set[0]
    assert item["x"].shape == item["y"].shape == (3, 16, 16)


def test_only_the_demo_run_trains_on_the_photo_pool(root: Path) -> None:
    from vqe.data.photos import CleanPhotoPairs
    from vqe.training.train import build

    demo = _compose_vqe()
    assert demo.demo and demo.dataset.train_pairs is not None
    official = build(_compose_vqe("dataset=official", f"dataset.path={root}").dataset)
    assert official.train_pairs is None
    photos = build(demo.dataset.train_pairs)
    assert isinstance(photos, CleanPhotoPairs) and photos.crop_size == (128, 128)


def test_dataset_demo_hands_in_the_demo_set_for_a_null_path() -> None:
    """The demo config passes the demo set's builder: vqe.data may not import vqe.dataprep."""
    from vqe.dataprep.demo import ensure_demo
    from vqe.training.train import build

    datamodule = build(_compose_vqe().dataset)
    assert datamodule.path is None and datamodule.default_root.func is ensure_demo


def test_dataset_demo_refuses_a_root_that_is_not_a_demo_set(root: Path, tmp_path: Path) -> None:
    """dataset=demo with a challenge root would train with demo sizes and random critics."""
    from vqe.training.train import build

    not_demo = build(_compose_vqe(f"dataset.path={root}", "dataset.crop_size=16").dataset)
    with pytest.raises(FileNotFoundError, match=r"holds no demo\.json.*dataset=official"):
        not_demo.data_root()
    marked = tmp_path / "demo_elsewhere"
    shutil.copytree(root, marked)
    (marked / schema.DEMO_MANIFEST).write_text("{}")
    demo = build(_compose_vqe(f"dataset.path={marked}", "dataset.crop_size=16").dataset)
    assert demo.data_root() == marked
