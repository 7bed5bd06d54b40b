"""The training text as an endless, resumable stream of (x, y) batches: contiguous streams, or random windows."""

from __future__ import annotations

import numpy as np
import torch

from .config import TrainConfig
from .corpus import random_batch, stream_batches


class BatchStream:
    """Contiguous streams (a stateful model carries its state along them) or random windows, from a position.

    The position (epoch, chunk, offset) and the generator's state are all a resume needs to go on with
    exactly the batches an uninterrupted run would have read.
    """

    def __init__(self, train_ids: np.ndarray, cfg: TrainConfig, generator: torch.Generator,
                 position: dict | None = None):
        self.ids, self.generator = train_ids, generator
        self.batch_size, self.seq_len = cfg.batch_size, cfg.seq_len
        self.contiguous = cfg.stateful and cfg.objective == "all"
        position = position or {}
        self.epoch_index = _count(position, "epoch_index")
        self.chunk_index = _count(position, "chunk_index")
        self.offset = _count(position, "offset")
        self._chunks = None

    def position(self) -> dict:
        return {"epoch_index": self.epoch_index, "chunk_index": self.chunk_index, "offset": self.offset}

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """-> (x, y, starts_a_new_stream), each (batch, seq_len): the caller resets carried state on the flag."""
        if not self.contiguous:
            x, y = random_batch(self.ids, self.batch_size, self.seq_len, self.generator)
            return x, y, True
        if self._chunks is None:
            self._chunks = stream_batches(self.ids, self.batch_size, self.seq_len, self.offset)
            for _ in range(self.chunk_index):   # fast-forward after a resume
                next(self._chunks)
        try:
            x, y = next(self._chunks)
        except StopIteration:
            # A new epoch starts at a fresh random offset so chunk borders move between epochs.
            self.epoch_index += 1
            self.chunk_index = 0
            self.offset = int(torch.randint(0, self.seq_len, (1,), generator=self.generator))
            self._chunks = stream_batches(self.ids, self.batch_size, self.seq_len, self.offset)
            x, y = next(self._chunks)
        self.chunk_index += 1
        return x, y, self.chunk_index == 1


def _count(position: dict, name: str) -> int:
    """A whole number of 0 or more from a resume file's position; a damaged file says so plainly."""
    value = position.get(name, 0) if isinstance(position, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the resume file is damaged: its position in the text ({name}) is not a count")
    return value
