"""The on-disk cache of input-frame DOVER scores: fill once, reload without recomputing, keyed."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor

from vqe.critics.dover import DoverCritic, DoverSettings, load_dover
from vqe.critics.frozen import freeze
from vqe.data.input_cache import (
    CACHE_DIR,
    SCORE_COLUMN,
    DoverCacheError,
    DoverScoreCache,
    MappedFeatures,
    read_mapped_features,
)
from vqe.schema import IMG_SOURCE

# Most tests use the seeded random critic, which warns (by design) on every load.
pytestmark = pytest.mark.filterwarnings("ignore:DOVER.*RANDOM weights:RuntimeWarning")


class CountingScorer:
    """Stands in for a DoverCritic: a keyed, deterministic function of the frames."""

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key
        self.frames_scored = 0
        self.calls = 0

    def __call__(self, frames: Tensor) -> Tensor:
        self.calls += 1
        self.frames_scored += frames.shape[0]
        return frames.mean(dim=(1, 2, 3)) * 0.5 + 0.25


class CountingLoader:
    """Frames whose content depends on the path; counts how often each path is loaded."""

    def __init__(self, size: tuple[int, int] = (8, 8)) -> None:
        self.size = size
        self.loaded: list[str] = []

    def __call__(self, path: str) -> Tensor:
        self.loaded.append(path)
        seed = sum(path.encode())
        return torch.rand(3, *self.size, generator=torch.Generator().manual_seed(seed))


PATHS = [f"train/unsupervised/video_{v:04d}/x/frame_{f:04d}.png" for v in (1, 2) for f in (1, 2, 3)]


def test_fill_writes_the_scores_beside_the_index(tmp_path: Path) -> None:
    scorer, loader = CountingScorer("abc123-T32-K3-seed0"), CountingLoader()
    cache = DoverScoreCache(tmp_path, scorer, batch_size=4, progress=False)
    scores = cache.get_or_compute(PATHS, loader)

    assert loader.loaded == PATHS
    assert scorer.frames_scored == len(PATHS) and scorer.calls == 2  # batches of 4 and 2
    expected = torch.stack([loader(p) for p in PATHS]).mean(dim=(1, 2, 3)) * 0.5 + 0.25
    assert torch.equal(scores, expected)

    assert cache.path == tmp_path / CACHE_DIR / "abc123-T32-K3-seed0.csv"
    table = pd.read_csv(cache.path)
    assert list(table.columns) == [IMG_SOURCE, SCORE_COLUMN]
    assert sorted(table[IMG_SOURCE]) == sorted(PATHS)
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]  # no temporary


def test_reload_from_disk_does_not_recompute(tmp_path: Path) -> None:
    first = DoverScoreCache(tmp_path, CountingScorer("k"), progress=False)
    filled = first.get_or_compute(PATHS, CountingLoader())

    scorer, loader = CountingScorer("k"), CountingLoader()
    reloaded = DoverScoreCache(tmp_path, scorer, progress=False)
    assert len(reloaded) == len(PATHS) and PATHS[0] in reloaded
    again = reloaded.get_or_compute(list(reversed(PATHS)), loader)
    assert loader.loaded == [] and scorer.calls == 0
    assert torch.equal(again, filled.flip(0))  # exact after the round trip through the CSV

    # Only new frames are computed; absolute paths under the root are the same frames.
    new = "train/unsupervised/video_0003/x/frame_0001.png"
    reloaded.get_or_compute([str(tmp_path / PATHS[0]), new], loader)
    assert loader.loaded == [new] and scorer.frames_scored == 1


def test_key_changes_with_the_weights_digest(tmp_path: Path) -> None:
    old = DoverScoreCache(tmp_path, CountingScorer("digestA-T32-K3-seed0"), progress=False)
    old.get_or_compute(PATHS, CountingLoader())
    scorer, loader = CountingScorer("digestB-T32-K3-seed0"), CountingLoader()
    new = DoverScoreCache(tmp_path, scorer, progress=False)
    assert new.path != old.path and len(new) == 0
    new.get_or_compute(PATHS, loader)
    assert scorer.frames_scored == len(PATHS)
    assert len(list((tmp_path / CACHE_DIR).glob("*.csv"))) == 2


def test_critic_key_names_weights_and_settings(tmp_path: Path) -> None:
    network = load_dover(None, allow_random=True)
    official = freeze(DoverCritic(network))
    cheaper = freeze(DoverCritic(network, DoverSettings(num_frames=4)))
    assert official.cache_key.startswith(network.weights_digest + "-")
    assert official.cache_key != cheaper.cache_key
    assert DoverScoreCache(tmp_path, official).path != DoverScoreCache(tmp_path, cheaper).path


def test_real_critic_fills_the_cache(tmp_path: Path) -> None:
    network = load_dover(None, allow_random=True)
    critic = freeze(DoverCritic(network, DoverSettings(num_frames=2, num_technical_clips=1)))
    loader = CountingLoader(size=(72, 96))
    paths = PATHS[:2]
    scores = DoverScoreCache(tmp_path, critic, progress=False).get_or_compute(paths, loader)
    direct = critic(torch.stack([loader(p) for p in paths]))
    torch.testing.assert_close(scores, direct)
    assert scores.ge(0).all() and scores.le(1).all()
    reloaded = DoverScoreCache(tmp_path, critic, progress=False)
    assert torch.equal(reloaded.get_or_compute(paths, CountingLoader()), scores)


def test_concurrent_fillers_merge(tmp_path: Path) -> None:
    one = DoverScoreCache(tmp_path, CountingScorer("k"), progress=False)
    two = DoverScoreCache(tmp_path, CountingScorer("k"), progress=False)
    one.get_or_compute(PATHS[:3], CountingLoader())
    two.get_or_compute(PATHS[3:], CountingLoader())  # written after one's file existed
    assert len(DoverScoreCache(tmp_path, CountingScorer("k"), progress=False)) == len(PATHS)


def test_frames_of_different_sizes_are_batched_apart(tmp_path: Path) -> None:
    class MixedLoader(CountingLoader):
        def __call__(self, path: str) -> Tensor:
            self.size = (8, 8) if path.endswith("1.png") else (6, 10)
            return super().__call__(path)

    scorer = CountingScorer("k")
    scores = DoverScoreCache(tmp_path, scorer, batch_size=8, progress=False).get_or_compute(
        PATHS, MixedLoader()
    )
    assert scores.shape == (len(PATHS),) and scorer.frames_scored == len(PATHS)


def test_bad_input_gets_clear_errors(tmp_path: Path) -> None:
    cache = DoverScoreCache(tmp_path, CountingScorer("k"), progress=False)
    with pytest.raises(ValueError, match="must return one 3×H×W"):
        cache.get_or_compute(PATHS[:1], lambda path: torch.rand(8, 8))
    with pytest.raises(ValueError, match="not under the data root"):
        cache.get_or_compute([tmp_path.parent / "elsewhere.png"], CountingLoader())

    broken = tmp_path / CACHE_DIR / "broken.csv"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("path,score\nframe.png,0.5\n")
    with pytest.raises(DoverCacheError, match="broken.csv.*delete the file"):
        DoverScoreCache(tmp_path, CountingScorer("broken"))


def test_the_datamodule_delivers_input_scores_so_critics_read_no_files(tmp_path: Path) -> None:
    """DOVER(x) of stored frames arrives in the batch; crops carry NaN (scored on the batch)."""
    from index_helpers import write_train_and_test

    from vqe.data.datamodule import VQEDataModule

    write_train_and_test(tmp_path)

    def datamodule() -> VQEDataModule:
        return VQEDataModule(
            path=tmp_path,
            crop_size=16,
            val_query="subset == 'synthetic'",
            val_videos=1,
            batch_size=2,
            eval_batch_size=1,
        )

    fit, test = CountingScorer("fit-key"), CountingScorer("test-key")
    first = datamodule()
    first.score_inputs_with(fit=fit, test=test)
    first.setup("fit")
    first.setup("test")
    assert fit.calls == 0  # training crops are no stored view: nothing to cache for them
    assert first.test_set is not None and test.frames_scored == len(
        set(first.test_set.index[IMG_SOURCE])
    )
    assert (tmp_path / CACHE_DIR / "test-key.csv").is_file()
    batch = next(iter(first.test_dataloader()))
    expected = test(batch["x"])  # the score of exactly the frame the batch holds
    torch.testing.assert_close(batch["dover_input"].float(), expected)
    assert torch.isnan(next(iter(first.train_dataloader()))["dover_input"]).all()

    again = CountingScorer("test-key")
    second = datamodule()
    second.score_inputs_with(test=again)
    second.setup("test")
    assert again.calls == 0  # read from the cache file, not recomputed


# --------------------------------------------------------------------------- sharded precompute


def write_frames(root: Path, paths: list[str], size: tuple[int, int] = (72, 96)) -> Path:
    """PNG frames under ``root`` and a frame index listing them (one row per frame)."""
    import cv2
    import numpy as np

    for number, relative in enumerate(paths):
        rng = np.random.default_rng(number)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / relative), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    index = root / "train.csv"
    pd.DataFrame({IMG_SOURCE: paths + paths[:2]}).to_csv(index, index=False)  # repeats too
    return index


def test_shards_partition_the_index_and_merge_into_the_unsharded_cache(tmp_path: Path) -> None:
    from vqe.data.input_cache import merge_shard_caches, read_scores, shard_cache_paths
    from vqe.dataprep.precompute import frame_reader, index_sources, is_covered, score_shard

    index = write_frames(tmp_path / "sharded", PATHS)
    write_frames(tmp_path / "whole", PATHS)
    sources = index_sources([index])
    assert sources == sorted(PATHS)
    scorer = CountingScorer("k")
    for shard in ((1, 3), (2, 3), (3, 3)):
        assert not is_covered(tmp_path / "sharded", "k", sources)
        report = score_shard(tmp_path / "sharded", sources, scorer, shard, progress=False)
        assert report.scored == report.inputs_in_shard == 2
    assert scorer.frames_scored == len(PATHS)  # every frame once, over all shards
    assert len(shard_cache_paths(tmp_path / "sharded", "k")) == 3
    assert is_covered(tmp_path / "sharded", "k", sources)
    merged = read_scores(merge_shard_caches(tmp_path / "sharded", "k", remove=True))
    whole = DoverScoreCache(tmp_path / "whole", CountingScorer("k"), progress=False)
    whole.get_or_compute(sources, frame_reader(tmp_path / "whole"))
    assert merged == read_scores(whole.path)  # the same file an unsharded fill writes
    assert shard_cache_paths(tmp_path / "sharded", "k") == []


def test_a_restarted_shard_scores_only_what_is_missing(tmp_path: Path) -> None:
    from vqe.dataprep.precompute import index_sources, score_shard

    sources = index_sources([write_frames(tmp_path, PATHS)])
    first = score_shard(tmp_path, sources, CountingScorer("k"), (1, 1), limit=4, progress=False)
    assert (first.scored, first.already_scored) == (4, 0)  # then "killed"
    scorer = CountingScorer("k")
    second = score_shard(tmp_path, sources, scorer, (1, 1), progress=False)
    assert (second.scored, second.already_scored, scorer.frames_scored) == (2, 4, 2)


def test_the_tool_scores_shards_with_dover_and_the_last_one_merges(tmp_path: Path) -> None:
    from vqe.cli.score_inputs import main
    from vqe.data.input_cache import cache_path, read_scores

    index = write_frames(tmp_path, PATHS[:4])
    common = ["--data-root", str(tmp_path), "--index", str(index), "--allow-random",
              "--frames", "2", "--clips", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main([*common, "--shard", "1/2"]) == 0
    critic = DoverCritic(load_dover(None, allow_random=True), DoverSettings(2, 1))
    target = cache_path(tmp_path, critic.cache_key)
    assert not target.exists()  # half the index: nothing merged yet
    assert main([*common, "--shard", "2/2"]) == 0
    scores = read_scores(target)
    assert sorted(scores) == sorted(PATHS[:4])
    # The training's cache reads them: nothing is scored again.
    cache = DoverScoreCache(tmp_path, critic, progress=False)
    loader = CountingLoader()
    expected = torch.tensor([scores[p] for p in PATHS[:4]], dtype=torch.float32)
    assert torch.equal(cache.get_or_compute(PATHS[:4], loader), expected)
    assert loader.loaded == []


# --------------------------------------------------------------------------- VQA input features


class CountingEncoder(CountingScorer):
    """Stands in for the VQA's input encoder: N×4 features that depend on the frames."""

    def __call__(self, frames: Tensor) -> Tensor:
        self.calls += 1
        self.frames_scored += frames.shape[0]
        return torch.cat([frames.mean(dim=(2, 3)), frames.std(dim=(1, 2, 3))[:, None]], dim=1)


def test_feature_cache_stores_rows_without_pickle_and_reloads_them(tmp_path: Path) -> None:
    from vqe.data.input_cache import FeatureCache

    encoder, loader = CountingEncoder("vqa-abc"), CountingLoader()
    features = FeatureCache(tmp_path, encoder, batch_size=4, progress=False).get_or_compute(
        PATHS, loader
    )
    assert features.shape == (len(PATHS), 4) and encoder.calls == 2
    expected = CountingEncoder("x")(torch.stack([loader(p) for p in PATHS]))
    torch.testing.assert_close(features, expected)
    path = tmp_path / CACHE_DIR / "vqa-abc.npz"
    with np.load(path, allow_pickle=False) as stored:  # plain arrays only
        assert list(stored["img_source"]) == PATHS and stored["features"].dtype == np.float32

    again = CountingEncoder("vqa-abc")
    reloaded = FeatureCache(tmp_path, again, progress=False).get_or_compute(PATHS[::-1], loader)
    assert again.calls == 0
    torch.testing.assert_close(reloaded, features.flip(0))


def test_a_broken_feature_cache_is_named_with_what_to_do(tmp_path: Path) -> None:
    from vqe.data.input_cache import FeatureCache

    path = tmp_path / CACHE_DIR / "vqa-bad.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip file")
    with pytest.raises(DoverCacheError, match=r"vqa-bad\.npz.*delete the file"):
        FeatureCache(tmp_path, CountingEncoder("vqa-bad"))
    # Object arrays would need unpickling: refused, never loaded.
    np.savez(path, img_source=np.array(PATHS[:1]), features=np.array([object()], dtype=object))
    with pytest.raises(DoverCacheError, match=r"vqa-bad\.npz"):
        FeatureCache(tmp_path, CountingEncoder("vqa-bad"))
    # Training memory-maps the matrix: a compressed archive cannot be, and says so.
    np.savez_compressed(path, img_source=np.array(PATHS[:1]), features=np.ones((1, 4), np.float32))
    with pytest.raises(DoverCacheError, match=r"vqa-bad\.npz.*uncompressed.*delete the file"):
        read_mapped_features(path)


def test_feature_shards_merge_into_the_unsharded_cache(tmp_path: Path) -> None:
    from vqe.data.input_cache import FeatureCache, read_features
    from vqe.dataprep.precompute import frame_reader, index_sources, score_shard

    index = write_frames(tmp_path / "sharded", PATHS)
    write_frames(tmp_path / "whole", PATHS)
    sources = index_sources([index])
    encoder = CountingEncoder("vqa-k")
    for shard in ((1, 2), (2, 2)):
        report = score_shard(
            tmp_path / "sharded", sources, encoder, shard, progress=False, cache_type=FeatureCache
        )
        assert report.scored == 3
    merged = read_features(FeatureCache.merge_shards(tmp_path / "sharded", "vqa-k", remove=True))
    whole = FeatureCache(tmp_path / "whole", CountingEncoder("vqa-k"), progress=False)
    whole.get_or_compute(sources, frame_reader(tmp_path / "whole"))
    unsharded = read_features(whole.path)
    assert sorted(merged) == sorted(unsharded) == sources
    for source in sources:
        assert (merged[source] == unsharded[source]).all()
    assert FeatureCache.shard_paths(tmp_path / "sharded", "vqa-k") == []


def test_the_datamodule_delivers_vqa_input_features_of_stored_frames(tmp_path: Path) -> None:
    """Whole stored test frames carry their cached features (``vqa_input``), read back by a
    second run without encoding; a generated pair beside stored rows gets a NaN row."""
    from index_helpers import write_train_and_test
    from torch.utils.data import default_collate

    from vqe.data.datamodule import VQEDataModule
    from vqe.data.photos import CleanPhotoPairs

    write_train_and_test(tmp_path)

    def datamodule() -> VQEDataModule:
        return VQEDataModule(
            path=tmp_path, crop_size=16, val_query="subset == 'synthetic'", val_videos=1,
            batch_size=2, eval_batch_size=1,
        )  # fmt: skip

    encoder = CountingEncoder("vqa-test")
    first = datamodule()
    first.score_inputs_with(test=CountingScorer("dover-test"), test_features=encoder)
    first.setup("test")
    assert first.test_set is not None
    assert encoder.frames_scored == len(set(first.test_set.index[IMG_SOURCE]))
    batch = next(iter(first.test_dataloader()))
    torch.testing.assert_close(batch["vqa_input"], CountingEncoder("x")(batch["x"]))
    first.setup("fit")
    assert "vqa_input" not in next(iter(first.train_dataloader()))  # no fit encoder given

    again = CountingEncoder("vqa-test")
    second = datamodule()
    second.score_inputs_with(test_features=again)
    second.setup("test")
    assert again.calls == 0  # read from the .npz, not recomputed
    stored_item = second.test_set[0]
    torch.testing.assert_close(stored_item["vqa_input"], batch["vqa_input"][0])
    # The rows stay in the cache file, memory-mapped, and a pickled dataset (what a spawned
    # loader worker receives) carries the file's name, not the matrix.
    served = second.test_set._input_features
    assert served is not None and isinstance(served.matrix, MappedFeatures)
    assert isinstance(served.matrix.array, np.memmap)
    assert served.matrix.path == tmp_path / CACHE_DIR / "vqa-test.npz"
    copy = pickle.loads(pickle.dumps(second.test_set))
    assert copy._input_features.matrix._array is None  # reopened on first use
    torch.testing.assert_close(copy[0]["vqa_input"], stored_item["vqa_input"])

    pairs = CleanPhotoPairs(crop_size=tuple(stored_item["x"].shape[1:]), samples_per_epoch=1)
    assert "vqa_input" not in pairs[0]
    pairs.deliver_input_features(4)
    mixed = default_collate([stored_item, {**pairs[0], "subset": stored_item["subset"]}])
    assert mixed["vqa_input"].shape == (2, 4)
    assert not torch.isnan(mixed["vqa_input"][0]).any() and torch.isnan(mixed["vqa_input"][1]).all()


def test_the_tool_fills_the_vqa_feature_cache_training_reads(tmp_path: Path) -> None:
    import warnings

    from vqe.cli.score_inputs import main
    from vqe.critics.vqa import VqaInputEncoder, load_vqa
    from vqe.data.input_cache import FeatureCache
    from vqe.dataprep.precompute import frame_reader

    index = write_frames(tmp_path, PATHS[:3])
    common = ["--data-root", str(tmp_path), "--index", str(index), "--allow-random",
              "--critic", "vqa", "--device", "cpu", "--no-progress"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the random critic's loud warning
        assert main(common) == 0
        encoder = VqaInputEncoder(load_vqa(None, allow_random=True))
    cache = FeatureCache(tmp_path, encoder, progress=False)
    assert cache.path.name == f"{encoder.cache_key}.npz" and len(cache) == 3
    features = cache.get_or_compute(PATHS[:3], CountingLoader())  # no frame is loaded again
    frames = torch.stack([frame_reader(tmp_path)(p) for p in PATHS[:3]])
    torch.testing.assert_close(features, encoder(frames), atol=1e-6, rtol=0)
