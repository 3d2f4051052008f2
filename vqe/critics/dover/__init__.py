"""DOVER, the frozen video-quality critic: network, views, loading and the input-score cache.

``load_dover(path, allow_random=False)`` returns the frozen network (CPU; move it with
``.to()``). ``build_dover(...)`` (the ``configs/model_dover`` entry point) wraps it with the clip
settings of one use in a :class:`DoverCritic`: internal frames → fused scores in [0, 1].
:class:`DoverScoreCache` stores the scores of input frames on disk beside the frame index.
"""

from vqe.critics.dover.cache import DoverScoreCache
from vqe.critics.dover.model import (
    DOVER,
    OFFICIAL_SETTINGS,
    DoverCritic,
    DoverSettings,
    build_dover,
    fuse_branch_scores,
    load_dover,
)

__all__ = [
    "DOVER",
    "OFFICIAL_SETTINGS",
    "DoverCritic",
    "DoverScoreCache",
    "DoverSettings",
    "build_dover",
    "fuse_branch_scores",
    "load_dover",
]
