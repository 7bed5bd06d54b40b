"""The training text as an endless, resumable stream of (x, y) batches: contiguous streams, or random windows.

Under torchrun every process draws the same global batch and keeps its own rows of it (rank_rows), so the
order in which the text is read does not depend on how many processes share the work.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import TrainConfig
from .corpus import random_batch, stream_batches


def rank_rows(rows: int, rank: int, world_size: int) -> slice:
    """The rows of a global batch of `rows` that process `rank` of `world_size` trains on: a contiguous block,
    the blocks in rank order and as even as they can be (sizes differ by at most one)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of the {world_size} processes")
    return slice(rank * rows // world_size, (rank + 1) * rows // world_size)


class BatchStream:
    """Contiguous streams (a stateful model carries its state along them) or random windows, from a position.

    The position (epoch, chunk, offset) and the generator's state are all a resume needs to go on with
    exactly the batches an uninterrupted run would have read, with any number of processes.
    """

    def __init__(self, train_ids: np.ndarray, cfg: TrainConfig, generator: torch.Generator,
                 position: dict | None = None, rank: int = 0, world_size: int = 1):
        self.ids, self.generator = train_ids, generator
        self.batch_size, self.seq_len = cfg.batch_size, cfg.seq_len
        self.contiguous = cfg.stateful and cfg.objective == "all"
        self.rank, self.world_size = rank, world_size
        self.batch_rows = 0   # rows of the last global batch (this process trained on rank_rows of them)
        position = position or {}
        self.epoch_index = _count(position, "epoch_index")
        self.chunk_index = _count(position, "chunk_index")
        self.offset = _count(position, "offset")
        self._chunks = None

    def position(self) -> dict:
        return {"epoch_index": self.epoch_index, "chunk_index": self.chunk_index, "offset": self.offset}

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """-> (x, y, starts_a_new_stream), each (rows, seq_len): this process's rows of the next global batch.
        The caller resets carried state on the flag."""
        x, y, fresh = self._next_global()
        self.batch_rows = x.shape[0]
        rows = rank_rows(self.batch_rows, self.rank, self.world_size)
        return x[rows], y[rows], fresh

    def _next_global(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
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


def pinned(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host batch bound for a GPU in page-locked memory, so its copy can overlap the GPU's work
    (.to(device, non_blocking=True)); on other devices the batch as it is."""
    return batch.pin_memory() if device.type == "cuda" else batch


def _count(position: dict, name: str) -> int:
    """A whole number of 0 or more from a resume file's position; a damaged file says so plainly."""
    value = position.get(name, 0) if isinstance(position, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the resume file is damaged: its position in the text ({name}) is not a count")
    return value
