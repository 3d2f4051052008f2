"""DOVER, the frozen video-quality critic: network, views and loading.

``load_dover(path, allow_random=False)`` returns the frozen network (CPU; move it with
``.to()``). ``build_dover(...)`` (the ``configs/model_dover`` entry point) wraps it with the clip
settings of one use in a :class:`DoverCritic`: internal frames → fused scores in [0, 1].
The on-disk cache of the inputs' scores is data-side: :mod:`vqe.data.input_cache`.
"""

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
    "DoverSettings",
    "build_dover",
    "fuse_branch_scores",
    "load_dover",
]
