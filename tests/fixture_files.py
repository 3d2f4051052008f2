"""The official-format fixtures the tests read, all inside the checkout (``tests/fixtures/``).

Facts of the challenge's formats, copied once from the organisers' material: the critics'
state-dict key layouts (key, shape, dtype per row) and the sample submission's two CSVs.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DOVER_KEYS = FIXTURES / "dover_state_dict_keys.tsv"
VQA_KEYS = FIXTURES / "vqa_state_dict_keys.tsv"
SAMPLE_SUBMISSION = FIXTURES / "sample_submission"
