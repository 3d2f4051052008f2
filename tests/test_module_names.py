"""Module names a reader cannot mix up: no two modules of the package whose names hold the same
words in another order (``score_inputs`` / ``input_scores`` once did)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def word_root(word: str) -> str:
    """A crude stem, enough for names: ``scoring``, ``scores`` and ``score`` → ``scor``."""
    for suffix in ("ing", "s", "e"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            word = word[: -len(suffix)]
    return word


def word_order_twins(stems: Iterable[str]) -> list[list[str]]:
    """Groups of distinct module names made of the same words in another order or form
    (``score_inputs`` / ``input_scores``, ``score_outputs`` / ``output_scoring``)."""
    grouped: dict[frozenset[str], set[str]] = defaultdict(set)
    for stem in filter(lambda name: "_" in name, stems):  # one word has no order
        grouped[frozenset(map(word_root, stem.split("_")))].add(stem)
    return sorted(sorted(names) for names in grouped.values() if len(names) > 1)


def test_no_two_module_names_differ_only_by_word_order() -> None:
    stems = [p.stem for p in (ROOT / "vqe").rglob("*.py") if not p.stem.startswith("__")]
    twins = word_order_twins(stems)
    assert not twins, f"module names that differ only by word order: {twins}"


def test_twins_are_found() -> None:
    stems = ["score_inputs", "input_scores", "score_outputs", "output_scoring", "score", "score"]
    assert word_order_twins(stems) == [
        ["input_scores", "score_inputs"],
        ["output_scoring", "score_outputs"],
    ]
