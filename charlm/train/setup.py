"""Setting up a run: the text checked against its batches, the Trainer's parts built from the run's own generators,
the model's head at the text's frequencies, and the arithmetic chosen on rank 0 and shared. The Trainer calls
each once, before its first step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from charlm.config import TrainConfig
from charlm.errors import UserError
from charlm.nn.device import generator, pick_device
from charlm.nn.model import CharLSTM
from charlm.text.encoded import identity
from charlm.train import precision
from charlm.train.averaging import WeightAverage
from charlm.train.distributed import Group, rank_seed
from charlm.train.evaluate import eval_sample_size
from charlm.train.optim import make_optimizer

if TYPE_CHECKING:
    from charlm.train.trainer import Trainer


def check_text(train_ids: np.ndarray, cfg: TrainConfig, world_size: int) -> None:
    """Refuse, in words, a training text too short for one sequence or a batch too small for the processes."""
    if len(train_ids) < cfg.seq_len + 2:
        raise UserError(f"the training text ({len(train_ids):,} characters) is shorter than one sequence "
                         f"({cfg.seq_len}); lower the sequence length or bring more text")
    if min(cfg.batch_size, len(train_ids) - cfg.seq_len) < world_size:
        raise UserError(f"a batch of {cfg.batch_size} rows cannot be shared by {world_size} processes; "
                         f"use a batch size of at least {world_size}, or fewer processes")


def build(trainer: Trainer) -> None:
    """The trainer's device, generators, model, optimizer and weight average, and what the run's text gives them.
    Each generator is the run's own: nothing here seeds or draws from the process-wide ones."""
    cfg, group = trainer.cfg, trainer.group
    trainer.device = group.place(pick_device(cfg.device))
    if trainer.device.type == "cuda":
        torch.backends.cudnn.benchmark = True   # the batch shapes repeat: let cuDNN time its LSTM kernels once
    trainer.generator = generator(cfg.seed)   # the batches: the same order on every process
    trainer.model = CharLSTM(trainer.model_cfg, generator(cfg.seed)).to(trainer.device)
    # Each process's own dropout masks for its rows, on the device that draws them.
    trainer.model.generator = generator(rank_seed(cfg.seed, group.rank, 0), trainer.device)
    trainer.optimizer = make_optimizer(trainer.model, cfg)
    trainer.carry = None                # the LSTM state carried along contiguous streams
    trainer.averaging = WeightAverage(trainer.model, cfg.average_from, cfg.average_decay)
    trainer.arithmetic, trainer.arithmetic_why = precision.FP32, ""   # chosen when its session starts
    trainer.train_chars = max(1, len(trainer.train_ids))
    trainer.eval_chars = eval_sample_size(cfg.eval_chars, len(trainer.val_ids), cfg.window)
    trainer.identity = identity(trainer.corpus)
    if group.active:
        trainer.identity["processes"] = group.world_size


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
