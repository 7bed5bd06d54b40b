"""Setting up a run: the text checked against its batches, the model's head at the text's frequencies, and
the arithmetic chosen on rank 0 and shared. The Trainer calls each once, before its first step."""

from __future__ import annotations

import numpy as np
import torch

from charlm.config import TrainConfig
from charlm.errors import UserError
from charlm.nn.model import CharLSTM
from charlm.train import precision
from charlm.train.distributed import Group


def check_text(train_ids: np.ndarray, cfg: TrainConfig, world_size: int) -> None:
    """Refuse, in words, a training text too short for one sequence or a batch too small for the processes."""
    if len(train_ids) < cfg.seq_len + 2:
        raise UserError(f"the training text ({len(train_ids):,} characters) is shorter than one sequence "
                         f"({cfg.seq_len}); lower the sequence length or bring more text")
    if min(cfg.batch_size, len(train_ids) - cfg.seq_len) < world_size:
        raise UserError(f"a batch of {cfg.batch_size} rows cannot be shared by {world_size} processes; "
                         f"use a batch size of at least {world_size}, or fewer processes")


def head_from_frequencies(model: CharLSTM, train_ids: np.ndarray) -> None:
    """Start the head at the text's character frequencies, so the first steps learn context rather than
    counts (the loss starts at the unigram entropy instead of log(vocab size))."""
    vocab_size = model.config.vocab_size
    # In chunks: bincount widens its input to int64, 8 bytes per character of a whole corpus at once.
    counts = sum(np.bincount(train_ids[i:i + 2**20], minlength=vocab_size)
                 for i in range(0, len(train_ids), 2**20))[:vocab_size] + 1.0
    with torch.no_grad():
        model.head.bias.copy_(torch.from_numpy(np.log(counts / counts.sum())))


def shared_arithmetic(model: CharLSTM, cfg: TrainConfig, device: torch.device, group: Group) -> tuple[str, str]:
    """-> (bf16 autocast or fp32, why) (charlm.train.precision): decided on rank 0 and shared, so every process
    trains alike; the other processes say only what rank 0 chose."""
    arithmetic, why, bf16 = precision.FP32, "", 0.0
    if group.is_main:
        step = precision.probe_step(model, model.config.vocab_size, cfg.batch_size, cfg.seq_len)
        arithmetic, why = precision.choose(device, cfg.amp, step)
        bf16 = float(arithmetic == precision.BF16)
    return (precision.BF16 if group.share([bf16])[0] else precision.FP32), why
