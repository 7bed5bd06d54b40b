"""Training: TrainConfig, Progress events, train() and evaluate(); the loop reports, it never prints."""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt_io
from .corpus import Corpus, random_batch, stream_batches
from .decoding import DecodeConfig, generate
from .device import pick_device, seed_everything
from .model import CharLSTM, ModelConfig, detach_state
from .presets import get_preset

LN2 = math.log(2)


@dataclass
class TrainConfig:
    seq_len: int = 128              # characters per truncated-BPTT chunk (the window, for objective "last")
    batch_size: int = 64            # parallel streams (or windows) per step
    lr: float = 3e-3                # peak learning rate
    min_lr_ratio: float = 0.05      # the cosine schedule ends at lr * this
    warmup_steps: int = 50          # linear warm-up
    weight_decay: float = 0.01      # AdamW's decoupled decay on matrices only
    grad_clip: float = 1.0          # max global gradient norm; 0 turns clipping off
    optimizer: str = "adamw"        # "adamw" or "adam" (the 2017 recipe)
    schedule: str = "cosine"        # "cosine" over the budget, or "constant"
    objective: str = "all"          # "all": every position is a target; "last": one target per window (2017)
    stateful: bool = True           # carry LSTM state across consecutive chunks of contiguous streams
    epochs: float | None = None     # budget in passes over the training text ...
    minutes: float | None = None    # ... and/or in wall-clock minutes (whichever ends first); neither = 1 epoch
    max_steps: int | None = None    # ... and/or in optimizer steps
    eval_interval_s: float = 30.0   # seconds of training between evaluations
    eval_chars: int = 100_000       # validation characters scored per evaluation (fixed, so runs compare)
    sample_chars: int = 200         # sample written at each evaluation
    seed: int = 0
    device: str = "auto"            # "auto", "cpu", "cuda" or "mps"
    amp: bool = True                # bf16 autocast on CUDA (ignored on CPU)

    def __post_init__(self):
        if self.seq_len < 1 or self.batch_size < 1:
            raise ValueError("sequence length and batch size must be at least 1")
        if not self.lr > 0:
            raise ValueError("the learning rate must be positive")
        if self.optimizer not in ("adamw", "adam") or self.schedule not in ("cosine", "constant"):
            raise ValueError("optimizer is adamw or adam; schedule is cosine or constant")
        if self.objective not in ("all", "last"):
            raise ValueError("objective is 'all' or 'last'")
        for name in ("epochs", "minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if self.seed < 0:
            raise ValueError("the seed must be 0 or more")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Progress:
    kind: str                      # "step", "eval", "checkpoint", "warning", "done", "stopped"
    step: int
    epoch: float                   # passes over the training text so far
    chars_seen: int                # training targets predicted so far
    train_loss: float | None       # smoothed, nats/char
    val_loss: float | None         # latest evaluation, nats/char
    val_bits: float | None         # the same in bits/char
    chars_per_sec: float
    elapsed_s: float
    eta_s: float | None
    lr: float
    fraction: float                # of the budget, 0..1
    sample: str | None = None      # at evaluations
    message: str | None = None
    path: str | None = None        # the checkpoint written, for "checkpoint"


@dataclass
class TrainResult:
    best_val_loss: float | None
    final_val_loss: float | None
    history: list[dict]
    best_path: Path | None
    last_path: Path | None
    stopped: bool
    steps: int
    chars_seen: int
    elapsed_s: float
    message: str | None = None


def last_path_for(out: Path) -> Path:
    """The resume file lives beside the model: model.safetensors -> model.last.pt."""
    return out.with_name(out.stem + ".last.pt")


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
    ids = val_ids
    total, count = 0.0, 0
    if window:
        # max_chars targets spread evenly over the whole text (each needs the window before it).
        targets = np.arange(window, len(ids))
        if max_chars is not None and len(targets) > max_chars:
            targets = targets[np.linspace(0, len(targets) - 1, max_chars).astype(np.int64)]
        for start in range(0, len(targets), 256):
            t = targets[start:start + 256]
            x = torch.from_numpy(ids[t[:, None] - window + np.arange(window)].astype(np.int64)).to(device)
            y = torch.from_numpy(ids[t].astype(np.int64)).to(device)
            logits, _ = model(x)
            total += float(F.cross_entropy(logits[:, -1].float(), y, reduction="sum"))
            count += len(t)
    else:
        if max_chars is not None:
            ids = ids[: max_chars + 1]
        state = None
        for x, y in stream_batches(ids, batch_size, 256):
            x, y = x.to(device), y.to(device)
            if state is None:
                state = model.init_state(x.shape[0])
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum"))
            count += y.numel()
    if was_training:
        model.train()
    if count == 0:
        raise ValueError("the validation text is too short to score")
    return total / count, count


def _lr_at(cfg: TrainConfig, step: int, fraction: float) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    fraction = min(max(fraction, 0.0), 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * fraction)))


def make_optimizer(model: CharLSTM, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("embed"))]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


class _Batches:
    """The training data as an endless, resumable sequence of (x, y) chunks."""

    def __init__(self, train_ids: np.ndarray, cfg: TrainConfig, generator: torch.Generator, position: dict):
        self.ids, self.cfg, self.generator = train_ids, cfg, generator
        self.epoch_index = position.get("epoch_index", 0)
        self.chunk_index = position.get("chunk_index", 0)
        self.offset = position.get("offset", 0)
        self._iter = None

    def position(self) -> dict:
        return {"epoch_index": self.epoch_index, "chunk_index": self.chunk_index, "offset": self.offset}

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """-> (x, y, starts_a_new_stream): the caller resets carried state when the flag is set."""
        if not (self.cfg.stateful and self.cfg.objective == "all"):
            x, y = random_batch(self.ids, self.cfg.batch_size, self.cfg.seq_len, self.generator)
            return x, y, True
        if self._iter is None:
            self._iter = stream_batches(self.ids, self.cfg.batch_size, self.cfg.seq_len, self.offset)
            for _ in range(self.chunk_index):  # fast-forward after a resume
                next(self._iter)
        try:
            x, y = next(self._iter)
        except StopIteration:
            # A new epoch starts at a fresh random offset so chunk borders move between epochs.
            self.epoch_index += 1
            self.chunk_index = 0
            self.offset = int(torch.randint(0, self.cfg.seq_len, (1,), generator=self.generator))
            self._iter = stream_batches(self.ids, self.cfg.batch_size, self.cfg.seq_len, self.offset)
            x, y = next(self._iter)
        self.chunk_index += 1
        return x, y, self.chunk_index == 1


def train(corpus: Corpus, preset: str = "cpu-fast", out: str | Path | None = None,
          model_overrides: dict | None = None, train_overrides: dict | None = None,
          resume: str | Path | None = None, on_progress: Callable[[Progress], None] | None = None,
          stop: threading.Event | None = None) -> TrainResult:
    """Train a model on `corpus` with a preset (plus overrides), or resume a checkpoint; report through on_progress."""
    emit = on_progress or (lambda event: None)
    stop = stop or threading.Event()
    state_ckpt = ckpt_io.load(resume, for_resume=True) if resume else None
    if state_ckpt is not None:
        if state_ckpt.vocab != corpus.vocab.to_list():
            raise ValueError("this checkpoint was trained on a text with other characters; resume it on the same corpus")
        window, preset_name = state_ckpt.window, state_ckpt.preset
        model_cfg = ModelConfig.from_dict(state_ckpt.model_config)
        extra = dict(train_overrides or {})
        # A budget given on resume is extra time or passes on top of what the run has used.
        if extra.get("minutes"):
            extra["minutes"] += state_ckpt.progress.get("elapsed_s", 0.0) / 60
        if extra.get("epochs"):
            extra["epochs"] += state_ckpt.progress.get("chars_seen", 0) / max(1, len(corpus.split()[0]))
        saved = dict(state_ckpt.train_config)
        if any(extra.get(k) for k in ("minutes", "epochs", "max_steps")):
            # The new budget replaces the old plan: an old step limit must not end the extra minutes at once.
            saved.update(minutes=None, epochs=None, max_steps=None)
        cfg = TrainConfig.from_dict({**saved, **extra})
    else:
        p = get_preset(preset)
        preset_name = p.name
        model_cfg = ModelConfig(vocab_size=len(corpus.vocab), **{**p.model, **(model_overrides or {})})
        cfg = TrainConfig(**{**p.train, **(train_overrides or {})})
        # A window model is scored and writes with the window it was trained on, also when seq_len is overridden.
        window = cfg.seq_len if p.window else None
    if cfg.epochs is None and cfg.minutes is None and cfg.max_steps is None:
        cfg.epochs = 1.0

    device = pick_device(cfg.device)
    generator = seed_everything(cfg.seed)
    model = CharLSTM(model_cfg).to(device)
    optimizer = make_optimizer(model, cfg)
    train_ids, val_ids = corpus.split()
    if len(train_ids) < cfg.seq_len + 2:
        raise ValueError(f"the training text ({len(train_ids):,} characters) is shorter than one sequence "
                         f"({cfg.seq_len}); lower the sequence length or bring more text")
    progress = {"step": 0, "chars_seen": 0, "elapsed_s": 0.0}
    history: list[dict] = []
    best_val = None
    carry = None
    if state_ckpt is not None:
        model.load_state_dict({name: torch.as_tensor(v) for name, v in state_ckpt.state_dict.items()})
        if state_ckpt.optimizer:
            optimizer.load_state_dict(state_ckpt.optimizer)
        progress = dict(state_ckpt.progress)
        history = list(state_ckpt.history)
        best_val = state_ckpt.best_val_loss
        if state_ckpt.rng:
            torch.set_rng_state(state_ckpt.rng["torch"])
            generator.set_state(state_ckpt.rng["batches"])
        if state_ckpt.carry:
            carry = (state_ckpt.carry[0].to(device), state_ckpt.carry[1].to(device))
    else:
        # Start the head at the text's character frequencies, so the first steps learn context rather
        # than counts (the loss starts at the unigram entropy instead of log(vocab size)).
        # In chunks: bincount widens its input to int64, 8 bytes per character of a whole corpus at once.
        counts = sum(np.bincount(train_ids[i:i + 2**20], minlength=model_cfg.vocab_size)
                     for i in range(0, len(train_ids), 2**20))[: model_cfg.vocab_size] + 1.0
        with torch.no_grad():
            model.head.bias.copy_(torch.from_numpy(np.log(counts / counts.sum())))
    if device.type == "cuda":
        model.lstm.flatten_parameters()
    batches = _Batches(train_ids, cfg, generator, progress.get("position", {}))

    out = Path(out) if out else None
    best_path = out
    last_path = last_path_for(out) if out else None
    use_amp = cfg.amp and device.type == "cuda"
    train_chars = max(1, len(train_ids))
    eval_chars = min(cfg.eval_chars, len(val_ids))
    if window:
        # A window model reads `window` characters per scored one: score a fixed, evenly spread sample
        # (about the same work as a stateful model's evaluation) so evaluations do not eat its budget.
        eval_chars = max(1, min(eval_chars, cfg.eval_chars // window * 2))

    def fraction_done(elapsed: float) -> float:
        parts = []
        if cfg.epochs:
            parts.append(progress["chars_seen"] / (cfg.epochs * train_chars))
        if cfg.minutes:
            parts.append(elapsed / (cfg.minutes * 60))
        if cfg.max_steps:
            parts.append(progress["step"] / cfg.max_steps)
        return max(parts)

    def snapshot(with_optimizer: bool) -> ckpt_io.Checkpoint:
        return ckpt_io.Checkpoint(
            model_config=model_cfg.to_dict(), vocab=corpus.vocab.to_list(),
            state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            preset=preset_name, train_config=asdict(cfg), history=list(history),
            progress={**progress, "position": batches.position()}, best_val_loss=best_val, window=window,
            optimizer=copy.deepcopy(optimizer.state_dict()) if with_optimizer else None,
            rng={"torch": torch.get_rng_state(), "batches": generator.get_state()} if with_optimizer else None,
            carry=[carry[0].detach().cpu(), carry[1].detach().cpu()] if (with_optimizer and carry is not None) else None,
            info={**corpus_identity, "device": str(device)})

    # Which text the model learnt from, so a tool can tell whether the text at hand is that one.
    corpus_identity = {"corpus": corpus.name, "corpus_sha256": hashlib.sha256(corpus.text.encode()).hexdigest(),
                       "corpus_chars": len(corpus.text), "val_fraction": corpus.val_fraction}
    smoothed = None
    good = snapshot(True)       # last known-good state for the divergence guard
    rollbacks = 0
    lr_scale = 1.0
    session_start = time.perf_counter()
    elapsed_before = progress["elapsed_s"]
    fraction_before = fraction_done(elapsed_before)   # of the budget used before this session (resume)
    last_eval_at = elapsed_before
    rate_chars, rate_time = 0, 0.0   # chars/s over this session's steps, evaluations excluded
    eval_time = progress.get("eval_s", 0.0)   # seconds spent evaluating, so time-to-loss can exclude it
    latest_val = history[-1]["val_loss"] if history else None
    message = None
    stopped = False

    def elapsed_now() -> float:
        return elapsed_before + time.perf_counter() - session_start

    def event(kind: str, **extra) -> Progress:
        elapsed = elapsed_now()
        fraction = min(fraction_done(elapsed), 1.0)
        cps = rate_chars / rate_time if rate_time > 0 else 0.0
        eta = None
        if 0 < fraction < 1 and progress["step"] > 0:
            eta = (elapsed - elapsed_before) * (1 - fraction) / max(fraction - fraction_before, 1e-9)
        return Progress(kind=kind, step=progress["step"], epoch=progress["chars_seen"] / train_chars,
                        chars_seen=progress["chars_seen"], train_loss=smoothed, val_loss=latest_val,
                        val_bits=latest_val / LN2 if latest_val is not None else None, chars_per_sec=cps,
                        elapsed_s=elapsed, eta_s=eta, lr=current_lr, fraction=fraction, **extra)

    def run_eval() -> None:
        nonlocal latest_val, best_val, last_eval_at, eval_time
        t0 = time.perf_counter()
        train_s = elapsed_now() - eval_time
        latest_val, _ = evaluate(model, val_ids, eval_chars, window, device=device)
        sample = None
        if cfg.sample_chars:
            sample = generate(model, corpus.vocab, prime="", length=cfg.sample_chars,
                              cfg=DecodeConfig("sample", temperature=0.8), seed=cfg.seed, window=window).texts[0]
        model.train()
        eval_time += time.perf_counter() - t0
        progress["eval_s"] = eval_time
        last_eval_at = elapsed_now()
        history.append({"step": progress["step"], "epoch": progress["chars_seen"] / train_chars,
                        "chars_seen": progress["chars_seen"], "elapsed_s": last_eval_at, "train_s": train_s,
                        "train_loss": smoothed, "val_loss": latest_val, "lr": current_lr, "sample": sample})
        emit(event("eval", sample=sample))
        if best_val is None or latest_val < best_val:
            best_val = latest_val
            if best_path is not None:
                ckpt_io.save(snapshot(False), best_path)
                emit(event("checkpoint", path=str(best_path), message="best so far"))

    current_lr = _lr_at(cfg, progress["step"], fraction_done(elapsed_before))
    model.train()
    while True:
        if stop.is_set():
            stopped, message = True, "stopped on request"
            break
        if fraction_done(elapsed_now()) >= 1.0:
            break
        t0 = time.perf_counter()
        x, y, fresh = batches.next()
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        if fresh or carry is None or carry[0].shape[1] != x.shape[0]:
            carry = model.init_state(x.shape[0])
        current_lr = lr_scale * _lr_at(cfg, progress["step"], fraction_done(elapsed_now()))
        for group in optimizer.param_groups:
            group["lr"] = current_lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits, new_state = model(x, carry)
            if cfg.objective == "last":
                loss = F.cross_entropy(logits[:, -1].float(), y[:, -1])
                targets = x.shape[0]
            else:
                loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
                targets = y.numel()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
        loss_value = loss.item()
        if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
            # Divergence guard: go back to the last good state with half the learning rate.
            rollbacks += 1
            if rollbacks > 3:
                stopped, message = True, ("training diverged (the loss became NaN/inf) three times even after "
                                          "lowering the learning rate; try a lower learning rate")
                break
            model.load_state_dict(good.state_dict)
            # A copy: load_state_dict keeps the tensors it is given, and later steps would update them in place.
            optimizer.load_state_dict(copy.deepcopy(good.optimizer))
            lr_scale *= 0.5
            carry = None
            emit(event("warning", message=f"the loss became {loss_value}; rolled back to step {good.progress['step']} "
                                          f"and halved the learning rate"))
            progress.update({k: good.progress[k] for k in ("step", "chars_seen")})
            continue
        optimizer.step()
        carry = detach_state(new_state) if cfg.stateful else None
        progress["step"] += 1
        progress["chars_seen"] += targets
        smoothed = loss_value if smoothed is None else 0.95 * smoothed + 0.05 * loss_value
        rate_chars += targets
        rate_time += time.perf_counter() - t0
        progress["elapsed_s"] = elapsed_now()
        emit(event("step"))
        if elapsed_now() - last_eval_at >= cfg.eval_interval_s:
            run_eval()
            good = snapshot(True)

    progress["elapsed_s"] = elapsed_now()
    if progress["step"] > 0 and (not history or history[-1]["step"] != progress["step"]):
        run_eval()
    if last_path is not None:
        ckpt_io.save(snapshot(True), last_path)
        emit(event("checkpoint", path=str(last_path), message="latest (for resume)"))
    emit(event("stopped" if stopped else "done", message=message))
    return TrainResult(best_val_loss=best_val, final_val_loss=latest_val, history=history,
                       best_path=best_path if best_path and best_path.exists() else None,
                       last_path=last_path, stopped=stopped, steps=progress["step"],
                       chars_seen=progress["chars_seen"], elapsed_s=progress["elapsed_s"], message=message)

