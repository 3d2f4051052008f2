"""CSV column names shared by dataset building, training, evaluation and scoring.

Every module that reads or writes one of these files takes its column names from here.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- frame index
#: The frame index CSVs, one per split, written beside the data root.
TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
SPLITS = ("train", "test")
#: Written last into a demo set's root (:mod:`vqe.dataprep.demo`); ``dataset=demo`` refuses a
#: data root without it.
DEMO_MANIFEST = "demo.json"

IMG_SOURCE = "img_source"  # path of the input frame, relative to the data root
IMG_TARGET = "img_target"  # path of the target frame; empty for unsupervised rows
HEIGHT = "h"
WIDTH = "w"
SUBSET = "subset"
VIDEO_ID = "video_id"
#: The official columns, in the official order.
FRAME_INDEX_COLUMNS = (IMG_SOURCE, IMG_TARGET, HEIGHT, WIDTH, SUBSET, VIDEO_ID)

# Extra columns vqe adds after the official ones.
FRAME_INDEX = "frame_index"  # 0-based position of the frame within its video
FPS = "fps"  # frame rate the frames were extracted at (empty for jpg sequences)
EXTRA_INDEX_COLUMNS = (FRAME_INDEX, FPS)
INDEX_COLUMNS = FRAME_INDEX_COLUMNS + EXTRA_INDEX_COLUMNS

#: Values of the ``subset`` column.
SUBSET_SYNTHETIC = "synthetic"  # train/supervised/synthetic: jpg pairs
SUBSET_REAL = "real"  # train/supervised/real: mp4 pairs
SUBSET_UNSUPERVISED = "unsupervised"  # */unsupervised: mp4 inputs without target
SUBSETS = (SUBSET_SYNTHETIC, SUBSET_REAL, SUBSET_UNSUPERVISED)
SUPERVISED_SUBSETS = (SUBSET_SYNTHETIC, SUBSET_REAL)
#: ``subset`` values written by the organisers' ``dataset_builder.py`` (split-prefixed), and the
#: value vqe reads each as. Readers accept both vocabularies; vqe writes its own.
OFFICIAL_SUBSETS = {
    "train_supervised_synthetic": SUBSET_SYNTHETIC,
    "train_supervised_real": SUBSET_REAL,
    "train_unsupervised": SUBSET_UNSUPERVISED,
    "test_supervised_synthetic": SUBSET_SYNTHETIC,
    "test_unsupervised": SUBSET_UNSUPERVISED,
}

# --------------------------------------------------------------------------- DOVER cache
#: ``<data root>/.dover_cache/<cache key>.csv`` maps each input frame to its DOVER score.
DOVER_CACHE_DIR = ".dover_cache"
DOVER_SCORE = "dover"
DOVER_CACHE_COLUMNS = (IMG_SOURCE, DOVER_SCORE)

# --------------------------------------------------------------------------- submission
SUPERVISED_METRICS_CSV = "metrics_supervised.csv"
UNSUPERVISED_METRICS_CSV = "metrics_unsupervised.csv"
VIDEO_KEY = "video_i"
RMSE = "rmse"
#: m_1 = p (VQA preference of enhanced over input), m_2 … m_12 = the 11 auxiliary scores.
NUM_VQA_SCORES = 12
SCORE_COLUMNS = tuple(f"m_{i}" for i in range(1, NUM_VQA_SCORES + 1))
SUPERVISED_METRICS_COLUMNS = (VIDEO_KEY, RMSE)
UNSUPERVISED_METRICS_COLUMNS = (VIDEO_KEY, *SCORE_COLUMNS)
#: The one score that falls with quality (a4 of the VQA, i.e. m_5); the formula uses 1 - m_5.
DECREASING_SCORE_COLUMN = "m_5"

#: Official row counts of the test submission.
OFFICIAL_UNSUPERVISED_VIDEOS = 3000
OFFICIAL_SUPERVISED_VIDEOS = 500

# --------------------------------------------------------------------------- pairwise votes
#: One row per P.910 vote: the two methods shown, the 1–5 vote (1 = strong preference for left),
#: and optionally the deciding factor and the rater.
VOTE_LEFT = "left"
VOTE_RIGHT = "right"
VOTE = "vote"
VOTE_FACTOR = "factor"
VOTE_RATER = "rater"
VOTE_REQUIRED_COLUMNS = (VOTE_LEFT, VOTE_RIGHT, VOTE)
VOTE_OPTIONAL_COLUMNS = (VOTE_FACTOR, VOTE_RATER)
VOTE_FACTORS = ("colors", "brightness", "skintone")
VOTE_VALUES = (1, 2, 3, 4, 5)
