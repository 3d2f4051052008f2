"""GroupedBatchSampler: grouping, per-epoch seeded order, drop_last, and the split over ranks."""

from __future__ import annotations

from collections import Counter

import pytest

from vqe.data.sampler import EpochPermutation, FrameKey, GroupedBatchSampler

# 23 rows in three groups of uneven sizes, interleaved as an index would list them.
GROUP_SIZES = {("synthetic", True): 10, ("unsupervised", False): 8, ("real", True): 5}
KEYS = [key for size_round in range(10) for key, size in GROUP_SIZES.items() if size_round < size]


def make_sampler(
    batch_size: int = 3,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    num_replicas: int = 1,
    rank: int = 0,
) -> GroupedBatchSampler:
    return GroupedBatchSampler(
        EpochPermutation(len(KEYS), shuffle=shuffle, seed=seed),
        KEYS,
        batch_size=batch_size,
        drop_last=drop_last,
        num_replicas=num_replicas,
        rank=rank,
    )


def epoch_batches(sampler: GroupedBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert all(key.epoch == epoch for batch in batches for key in batch)
    return [[key.index for key in batch] for batch in batches]


def test_batches_never_mix_groups_and_cover_every_row_once() -> None:
    sampler = make_sampler()
    for epoch in range(3):
        batches = epoch_batches(sampler, epoch)
        assert all(len({KEYS[row] for row in batch}) == 1 for batch in batches)
        assert sorted(row for batch in batches for row in batch) == list(range(len(KEYS)))
        assert all(1 <= len(batch) <= 3 for batch in batches)


def test_order_changes_with_the_epoch_and_repeats_for_the_same_seed_and_epoch() -> None:
    sampler = make_sampler(seed=5)
    first, second = epoch_batches(sampler, 0), epoch_batches(sampler, 1)
    assert first != second
    assert epoch_batches(make_sampler(seed=5), 1) == second
    assert epoch_batches(make_sampler(seed=6), 1) != second
    # Lightning sets the epoch on batch_sampler.sampler; the batches follow it.
    sampler.sampler.set_epoch(0)
    assert [[key.index for key in batch] for batch in sampler] == first


def test_without_shuffle_groups_follow_the_index_in_row_order() -> None:
    batches = epoch_batches(make_sampler(shuffle=False), 4)
    rows = [row for batch in batches for row in batch]
    group_order = list(dict.fromkeys(KEYS[row] for row in rows))
    assert group_order == list(GROUP_SIZES)
    for key in GROUP_SIZES:
        assert [row for row in rows if KEYS[row] == key] == [
            row for row, k in enumerate(KEYS) if k == key
        ]
    assert epoch_batches(make_sampler(shuffle=False), 9) == batches


def test_drop_last_keeps_only_full_batches() -> None:
    batches = epoch_batches(make_sampler(drop_last=True), 0)
    assert all(len(batch) == 3 for batch in batches)
    assert len(batches) == sum(size // 3 for size in GROUP_SIZES.values())


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("num_replicas", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 16])
def test_length_matches_the_batches_yielded(
    batch_size: int, num_replicas: int, drop_last: bool
) -> None:
    for rank in range(num_replicas):
        sampler = make_sampler(
            batch_size, drop_last=drop_last, num_replicas=num_replicas, rank=rank
        )
        for epoch in range(2):
            assert len(epoch_batches(sampler, epoch)) == len(sampler)


def _per_rank(num_replicas: int, epoch: int, **options) -> list[list[list[int]]]:
    return [
        epoch_batches(make_sampler(num_replicas=num_replicas, rank=rank, **options), epoch)
        for rank in range(num_replicas)
    ]


def test_ranks_get_disjoint_equal_shares_covering_every_row() -> None:
    # batch_size 5 → 2 + 2 + 1 = 5 batches, which 5 ranks split without padding.
    ranks = _per_rank(5, epoch=2, batch_size=5)
    assert len({len(batches) for batches in ranks}) == 1
    rows = [row for batches in ranks for batch in batches for row in batch]
    assert sorted(rows) == list(range(len(KEYS)))


def test_uneven_batch_counts_are_padded_by_repeating_batches() -> None:
    # batch_size 3 → 4 + 3 + 2 = 9 batches over 4 ranks: 3 batches repeated to make 12.
    ranks = _per_rank(4, epoch=1, batch_size=3)
    assert [len(batches) for batches in ranks] == [3, 3, 3, 3]
    counts = Counter(tuple(batch) for batches in ranks for batch in batches)
    assert set(row for batch in counts for row in batch) == set(range(len(KEYS)))
    assert sum(counts.values()) == 12 and sum(count - 1 for count in counts.values()) == 3
    assert all(len({KEYS[row] for row in batch}) == 1 for batch in counts)


def test_uneven_batch_counts_are_dropped_with_drop_last() -> None:
    # 3 + 2 + 1 = 6 full batches over 4 ranks: the last 2 are dropped, the rest are disjoint.
    ranks = _per_rank(4, epoch=0, batch_size=3, drop_last=True)
    assert [len(batches) for batches in ranks] == [1, 1, 1, 1]
    rows = [row for batches in ranks for batch in batches for row in batch]
    assert len(rows) == len(set(rows)) == 12


def test_padding_works_when_there_are_fewer_batches_than_ranks() -> None:
    ranks = _per_rank(7, epoch=0, batch_size=16)  # 1 + 1 + 1 batches for 7 ranks
    assert [len(batches) for batches in ranks] == [1] * 7
    assert sorted({row for batches in ranks for row in batches[0]}) == list(range(len(KEYS)))


def test_frame_keys_carry_the_epoch() -> None:
    sampler = make_sampler()
    sampler.set_epoch(6)
    assert sampler.epoch == 6 and sampler.sampler.epoch == 6
    batch = next(iter(sampler))
    assert all(isinstance(key, FrameKey) and key.epoch == 6 for key in batch)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        make_sampler(batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        make_sampler(num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="one key per dataset row"):
        GroupedBatchSampler(EpochPermutation(3), KEYS, batch_size=2)
    with pytest.raises(ValueError, match="epoch"):
        make_sampler().set_epoch(-1)


def test_world_defaults_to_a_single_process_without_torch_distributed() -> None:
    sampler = GroupedBatchSampler(EpochPermutation(len(KEYS)), KEYS, batch_size=4)
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
