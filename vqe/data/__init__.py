"""Data: dataset building from the official videos, the embedded demo set, datasets and batching."""
