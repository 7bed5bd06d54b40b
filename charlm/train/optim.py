"""The optimizer (AdamW, decay on matrices only; or the 2017 recipe's Adam) and the learning-rate schedule."""

from __future__ import annotations

import math

import torch

from charlm.config import TrainConfig
from charlm.nn.model import CharLSTM


def make_optimizer(model: CharLSTM, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # Decay pulls matrices towards zero; biases, gains and the embedding (a lookup table) are left alone.
    decays = {name: p.dim() >= 2 and not name.startswith("embed") for name, p in model.named_parameters()}
    decay = [p for name, p in model.named_parameters() if decays[name]]
    no_decay = [p for name, p in model.named_parameters() if not decays[name]]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def lr_at(cfg: TrainConfig, step: int, fraction: float) -> float:
    """The learning rate at `step`, `fraction` of the way through the budget: linear warm-up, then cosine or constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    fraction = min(max(fraction, 0.0), 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * fraction)))
