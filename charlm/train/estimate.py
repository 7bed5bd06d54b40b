"""A rough training-time estimate: time a few training steps of a model and recipe on random ids, on this device."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from charlm.config import ModelConfig, TrainConfig
from charlm.nn.device import pick_device
from charlm.nn.model import CharLSTM
from charlm.train.optim import make_optimizer

_PROBE_SEQ_CPU = 16      # an LSTM step costs the same at every position, so a short probe scales to seq_len ...
_PROBE_BATCH_CPU = 32    # ... and on a CPU about the same per sequence (a little less in big batches: pessimistic)
_PROBE_SECONDS = 0.4     # stop timing once this much has been measured ...
_PROBE_STEPS = 3         # ... or after this many timed steps

_cache: dict[tuple, "Estimate"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Estimate:
    device: str
    chars_per_sec: float     # training characters (targets) per second

    def seconds_per_epoch(self, train_chars: int) -> float:
        """Seconds for one pass over `train_chars` characters of training text (evaluations not counted)."""
        return train_chars / self.chars_per_sec


def estimate(model_cfg: ModelConfig, train_cfg: TrainConfig, device: str | torch.device = "auto") -> Estimate:
    """Training throughput of this model and recipe here; measured once per process, configs and device."""
    device = pick_device(device) if isinstance(device, str) else device
    key = (model_cfg, train_cfg, str(device))   # frozen configs: hashable, equal when every field is
    with _lock:   # two visitors asking at once measure once, and not against each other
        if key not in _cache:
            _cache[key] = _measure(model_cfg, train_cfg, device)
        return _cache[key]


def _measure(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device) -> Estimate:
    model = CharLSTM(model_cfg).to(device).train()
    optimizer = make_optimizer(model, cfg)
    # On a GPU a full step is cheap; on a CPU a slice of one keeps the probe to a second or two.
    full = device.type == "cuda"
    probe_seq = cfg.seq_len if full else min(cfg.seq_len, _PROBE_SEQ_CPU)
    probe_batch = cfg.batch_size if full else min(cfg.batch_size, _PROBE_BATCH_CPU)
    generator = torch.Generator().manual_seed(0)
    vocab = model_cfg.vocab_size
    x = torch.randint(0, vocab, (probe_batch, probe_seq), generator=generator).to(device)
    y = torch.randint(0, vocab, (probe_batch, probe_seq), generator=generator).to(device)

    def step() -> None:
        logits, _ = model(x)   # (batch, probe_seq, vocab)
        if cfg.objective == "last":
            loss = F.cross_entropy(logits[:, -1], y[:, -1])
        else:
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()   # warm-up: allocations, kernel selection
    timed, steps = 0.0, 0
    while steps < _PROBE_STEPS and timed < _PROBE_SECONDS:
        started = time.perf_counter()
        step()
        timed += time.perf_counter() - started
        steps += 1
    seconds_per_step = timed / steps * (cfg.seq_len / probe_seq) * (cfg.batch_size / probe_batch)
    targets_per_step = cfg.batch_size * (1 if cfg.objective == "last" else cfg.seq_len)
    return Estimate(device=str(device), chars_per_sec=targets_per_step / seconds_per_step)
