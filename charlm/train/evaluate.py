"""Evaluation: the mean cross-entropy (nats/char) on held-out text, read as the model reads when it writes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from charlm.train.batches import stream_batches
from charlm.errors import UserError
from charlm.nn.model import CharLSTM

_CHUNK = 256   # characters per forward pass (streams), or windows per forward pass (a window model)


@torch.no_grad()
def evaluate(model: CharLSTM, val_ids: np.ndarray, max_chars: int | None = None, window: int | None = None,
             batch_size: int = 32, device: torch.device | None = None) -> tuple[float, int]:
    """Mean cross-entropy (nats/char) on held-out ids; -> (loss, characters scored).

    A stateful model reads the text as `batch_size` contiguous streams, carrying its state, as it does
    when it writes. A window model (2017) predicts each scored character from the `window` before it.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        if window:
            total, count = _score_windows(model, val_ids, window, max_chars, device)
        else:
            ids = val_ids if max_chars is None else val_ids[: max_chars + 1]
            total, count = _score_streams(model, ids, batch_size, device)
    finally:
        if was_training:
            model.train()
    if count == 0:
        raise UserError("the validation text is too short to score")
    return total / count, count


def _score_windows(model: CharLSTM, ids: np.ndarray, window: int, max_chars: int | None,
                   device: torch.device) -> tuple[float, int]:
    # max_chars targets spread evenly over the whole text (each needs the window before it).
    targets = np.arange(window, len(ids))
    if max_chars is not None and len(targets) > max_chars:
        targets = targets[np.linspace(0, len(targets) - 1, max_chars).astype(np.int64)]
    total = 0.0
    for start in range(0, len(targets), _CHUNK):
        t = targets[start:start + _CHUNK]
        x = torch.from_numpy(ids[t[:, None] - window + np.arange(window)].astype(np.int64)).to(device)  # (n, window)
        y = torch.from_numpy(ids[t].astype(np.int64)).to(device)
        logits, _ = model(x)   # (n, window, vocab)
        total += float(F.cross_entropy(logits[:, -1].float(), y, reduction="sum"))
    return total, len(targets)


def _score_streams(model: CharLSTM, ids: np.ndarray, batch_size: int, device: torch.device) -> tuple[float, int]:
    total, count, state = 0.0, 0, None
    for x, y in stream_batches(ids, batch_size, _CHUNK):
        x, y = x.to(device), y.to(device)
        if state is None:
            state = model.init_state(x.shape[0])
        logits, state = model(x, state)   # (rows, <= _CHUNK, vocab)
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum"))
        count += y.numel()
    return total, count


def eval_sample_size(eval_chars: int, val_chars: int, window: int | None) -> int:
    """Validation characters one evaluation scores during training: the same every time, so losses compare."""
    size = min(eval_chars, val_chars)
    if window:
        # A window model reads `window` characters per scored one: score a fixed, evenly spread sample
        # (about the same work as a stateful model's evaluation) so evaluations do not eat its budget.
        size = max(1, min(size, eval_chars // window * 2))
    return size
