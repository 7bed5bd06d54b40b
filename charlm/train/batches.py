"""The training text as an endless, resumable stream of (x, y) batches: contiguous streams, or random windows.

Under torchrun every process draws the same global batch and keeps its own rows of it (rank_rows), so the
order in which the text is read does not depend on how many processes share the work.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from charlm.config import TrainConfig
from charlm.errors import UserError
from charlm.text.corpus import CorpusError


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
        raise UserError(f"the resume file is damaged: its position in the text ({name}) is not a count")
    return value


def random_batch(
    ids: np.ndarray, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) int64 tensors of shape (batch_size, seq_len): random crops, y is x shifted by one character."""
    _check_sizes(batch_size, seq_len)
    if len(ids) < seq_len + 1:
        raise CorpusError(
            f"The text has {len(ids):,} characters, too few for sequences of {seq_len:,} "
            f"(at least {seq_len + 1:,} are needed). Use a shorter sequence length or more text."
        )
    # Offsets come from the torch generator so a run is reproducible and resumes from its state.
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator).numpy()
    windows = ids[starts[:, None] + np.arange(seq_len + 1)]  # (batch, seq_len + 1)
    return torch.from_numpy(windows[:, :-1].astype(np.int64)), torch.from_numpy(windows[:, 1:].astype(np.int64))


def stream_rows(n: int, batch_size: int) -> int:
    """How many rows n ids can be cut into, at most batch_size, each with at least one input and one target."""
    return max(0, min(batch_size, n - 1))


def stream_batches(
    ids: np.ndarray, batch_size: int, seq_len: int, offset: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Contiguous streams for truncated BPTT with carried state.

    Drop the first `offset` ids, cut the rest into batch_size equal rows, and yield consecutive (x, y)
    chunks of at most seq_len columns (the last chunk may be shorter), y shifted by one. Row r of
    chunk k continues row r of chunk k - 1, so the model's state carries across chunks. Every character
    but the first of each row is a target exactly once; the few ids that do not fill a row are left out.
    """
    _check_sizes(batch_size, seq_len)
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    data = ids[offset:]
    rows = stream_rows(len(data), batch_size)
    if rows == 0:
        raise CorpusError(f"The text has {len(data):,} characters; at least 2 are needed to make a batch.")
    targets_per_row = (len(data) - 1) // rows
    # Row r is data[r*L : (r+1)*L + 1]: rows overlap by one so the targets run on without a gap.
    # A view of every L-th sliding window: no copy of the text.
    windows = np.lib.stride_tricks.sliding_window_view(data[: rows * targets_per_row + 1], targets_per_row + 1)
    matrix = windows[::targets_per_row]  # (rows, L + 1)
    return _chunks(matrix, seq_len)


def _chunks(matrix: np.ndarray, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    targets_per_row = matrix.shape[1] - 1
    for start in range(0, targets_per_row, seq_len):
        stop = min(start + seq_len, targets_per_row)
        x = matrix[:, start:stop].astype(np.int64)  # (rows, <= seq_len), converted per chunk only
        y = matrix[:, start + 1 : stop + 1].astype(np.int64)
        yield torch.from_numpy(x), torch.from_numpy(y)


def _check_sizes(batch_size: int, seq_len: int) -> None:
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be at least 1; got {batch_size} and {seq_len}")
