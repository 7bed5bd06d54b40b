"""Training: the Trainer's phases (set up or resume, step, evaluate and save, snapshot, finish); it emits, never prints."""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt_io
from .batches import BatchStream
from .config import ModelConfig, TrainConfig
from .corpus import Corpus
from .decoding import generate
from .device import pick_device, seed_everything
from .evaluate import eval_sample_size, evaluate
from .events import Progress, TrainResult
from .model import CharLSTM, detach_state
from .optim import lr_at, make_optimizer
from .resume import Resume, checked_progress, last_path_for
from .sampling import DecodeConfig
from .startfrom import StartFrom
from .units import LN2

MAX_ROLLBACKS = 3   # non-finite losses a run rolls back from (halving the learning rate each time) before it gives up
STOPPED = "stopped on request"
DIVERGED = ("training diverged (the loss became NaN/inf) three times even after lowering the learning rate; "
            "try a lower learning rate")
_SAMPLE = DecodeConfig("sample", temperature=0.8)   # how the sample at each evaluation is written


class Trainer:
    """One training run: set up (or resume), then step until should_stop(), evaluating when should_evaluate().

    The decisions (stop now? evaluate now? how far through the budget?) live in one method each, so a
    distributed run can make them on one process and share them.
    """

    def __init__(self, corpus: Corpus, model_cfg: ModelConfig, cfg: TrainConfig, *, preset: str = "custom",
                 out: str | Path | None = None, on_progress: Callable[[Progress], None] | None = None,
                 stop: threading.Event | None = None, resume_from: ckpt_io.Checkpoint | None = None,
                 start: StartFrom | None = None, clock: Callable[[], float] = time.perf_counter):
        self.corpus, self.model_cfg, self.preset = corpus, model_cfg, preset
        self.cfg = cfg if cfg.has_budget else cfg.replace(epochs=1.0)   # no budget given means one pass
        self.emit = on_progress or (lambda event: None)
        self.stop, self.clock = stop or threading.Event(), clock
        self.train_ids, self.val_ids = corpus.split()
        if len(self.train_ids) < cfg.seq_len + 2:
            raise ValueError(f"the training text ({len(self.train_ids):,} characters) is shorter than one sequence "
                             f"({cfg.seq_len}); lower the sequence length or bring more text")
        self.out = Path(out) if out else None
        self.last_path = last_path_for(self.out) if self.out else None
        self._build()
        if resume_from is not None:
            self._restore(resume_from)
        elif start is not None:   # a new run from a trained model's weights (start_from widened them to this text)
            self.model.load_state_dict(start.weights)
            self.identity.update(start.origin)
        else:
            self._head_from_frequencies()
        self.batches = BatchStream(self.train_ids, self.cfg, self.generator, self.progress.get("position"))
        self._start_session()

    @classmethod
    def resuming(cls, corpus: Corpus, resume: Resume, **kwargs) -> "Trainer":
        """A trainer that goes on from resume.path with the run's own configs (and the budget resume gives)."""
        state = ckpt_io.load(resume.path, for_resume=True)
        if state.vocab != corpus.vocab.to_list():
            raise ValueError("this checkpoint was trained on a text with other characters; resume it on the same corpus")
        saved = TrainConfig.from_dict({"rereads_window": state.window is not None, **state.train_config})
        if saved.window != state.window:
            raise ValueError(f"the resume file is damaged: its window ({state.window}) is not its sequence length")
        progress = checked_progress(state.progress)
        cfg = resume.config_after(saved, progress, len(corpus.split()[0]))
        return cls(corpus, ModelConfig.from_dict(state.model_config), cfg, preset=state.preset,
                   resume_from=state, **kwargs)

    # --- set up ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """Device, seeds, model and optimizer, and the run's counters at their start."""
        self.device = pick_device(self.cfg.device)
        self.generator = seed_everything(self.cfg.seed)
        self.model = CharLSTM(self.model_cfg).to(self.device)
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.progress = {"step": 0, "chars_seen": 0, "elapsed_s": 0.0}   # saved in snapshots, restored on resume
        self.history: list[dict] = []    # one row per evaluation
        self.best_val: float | None = None
        self.carry = None                # the LSTM state carried along contiguous streams
        self.use_amp = self.cfg.amp and self.device.type == "cuda"
        self.train_chars = max(1, len(self.train_ids))
        self.eval_chars = eval_sample_size(self.cfg.eval_chars, len(self.val_ids), self.cfg.window)
        # Which text the model learnt from, so a tool can tell whether the text at hand is that one.
        self.identity = {"corpus": self.corpus.name,
                         "corpus_sha256": hashlib.sha256(self.corpus.text.encode()).hexdigest(),
                         "corpus_chars": len(self.corpus.text), "val_fraction": self.corpus.val_fraction}

    def _head_from_frequencies(self) -> None:
        """Start the head at the text's character frequencies, so the first steps learn context rather than
        counts (the loss starts at the unigram entropy instead of log(vocab size))."""
        vocab_size = self.model_cfg.vocab_size
        # In chunks: bincount widens its input to int64, 8 bytes per character of a whole corpus at once.
        counts = sum(np.bincount(self.train_ids[i:i + 2**20], minlength=vocab_size)
                     for i in range(0, len(self.train_ids), 2**20))[:vocab_size] + 1.0
        with torch.no_grad():
            self.model.head.bias.copy_(torch.from_numpy(np.log(counts / counts.sum())))

    def _restore(self, state: ckpt_io.Checkpoint) -> None:
        """Weights, optimizer, counters, history, random state and carried state from a resume file."""
        self.model.load_state_dict({name: torch.as_tensor(v) for name, v in state.state_dict.items()})
        if state.optimizer:
            self.optimizer.load_state_dict(state.optimizer)
        self.progress = checked_progress(state.progress)
        self.history = list(state.history)
        self.best_val = state.best_val_loss
        if state.rng:
            torch.set_rng_state(state.rng["torch"])
            self.generator.set_state(state.rng["batches"])
        if state.carry:
            self.carry = (state.carry[0].to(self.device), state.carry[1].to(self.device))

    def _start_session(self) -> None:
        """This session's clock and rates; the budget used before it (a resumed run) stays counted."""
        if self.device.type == "cuda":
            self.model.lstm.flatten_parameters()
        self.good = self.snapshot(with_optimizer=True)   # the last known-good state, for the divergence guard
        self.rollbacks, self.lr_scale = 0, 1.0
        self.stopped, self.message = False, None
        self.smoothed: float | None = None                # training loss, exponentially smoothed
        self.latest_val = self.history[-1]["val_loss"] if self.history else None
        self.session_start = self.clock()
        self.elapsed_before = self.progress["elapsed_s"]
        self.fraction_before = self.fraction_done(self.elapsed_before)
        self.last_eval_at = self.elapsed_before
        self.rate_chars, self.rate_time = 0, 0.0          # chars/s over this session's steps, evaluations excluded
        self.eval_time = self.progress.get("eval_s", 0.0)  # seconds spent evaluating, so time-to-loss can exclude it
        self.lr = lr_at(self.cfg, self.progress["step"], self.fraction_before)

    # --- the decisions --------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds the run has trained, earlier sessions included."""
        return self.elapsed_before + self.clock() - self.session_start

    def fraction_done(self, elapsed: float | None = None) -> float:
        """How far through the budget (1 or more: spent): the furthest of its epochs, minutes and steps.
        It also drives the cosine schedule."""
        elapsed = self.elapsed() if elapsed is None else elapsed
        cfg, parts = self.cfg, []
        if cfg.epochs:
            parts.append(self.progress["chars_seen"] / (cfg.epochs * self.train_chars))
        if cfg.minutes:
            parts.append(elapsed / (cfg.minutes * 60))
        if cfg.max_steps:
            parts.append(self.progress["step"] / cfg.max_steps)
        return max(parts)

    def should_stop(self) -> bool:
        """Stop now? After a divergence rollbacks did not cure, on the stop flag, or once the budget is spent."""
        if self.rollbacks > MAX_ROLLBACKS:
            self.stopped, self.message = True, DIVERGED
        elif self.stop.is_set():
            self.stopped, self.message = True, STOPPED
        return self.stopped or self.fraction_done() >= 1.0

    def should_evaluate(self) -> bool:
        """Evaluate now? Once eval_interval_s seconds have passed since the last evaluation (or the start)."""
        return self.elapsed() - self.last_eval_at >= self.cfg.eval_interval_s

    # --- the phases -----------------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.model.train()
        while not self.should_stop():
            if self.step() and self.should_evaluate():
                self.evaluate_and_save()
                self.good = self.snapshot(with_optimizer=True)
        return self.finish()

    def step(self) -> bool:
        """One optimizer step on the next batch; False when its loss was not finite and it was rolled back."""
        started = self.clock()
        x, y, fresh = self.batches.next()
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if fresh or self.carry is None or self.carry[0].shape[1] != x.shape[0]:
            self.carry = self.model.init_state(x.shape[0])
        self.lr = self.lr_scale * lr_at(self.cfg, self.progress["step"], self.fraction_done())
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        loss, new_state, targets = self._loss(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        loss_value = loss.item()
        if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
            self._roll_back(loss_value)
            return False
        self.optimizer.step()
        self.carry = detach_state(new_state) if self.cfg.stateful else None
        self.progress["step"] += 1
        self.progress["chars_seen"] += targets
        self.smoothed = loss_value if self.smoothed is None else 0.95 * self.smoothed + 0.05 * loss_value
        self.rate_chars += targets
        self.rate_time += self.clock() - started
        self.progress["elapsed_s"] = self.elapsed()
        self.emit(self.event("step"))
        return True

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple, int]:
        """-> (mean loss, the state after x, targets scored): every position, or the last of each window."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            logits, new_state = self.model(x, self.carry)   # (batch, seq, vocab)
            if self.cfg.objective == "last":
                return F.cross_entropy(logits[:, -1].float(), y[:, -1]), new_state, x.shape[0]
            return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten()), new_state, y.numel()

    def _roll_back(self, loss_value: float) -> None:
        """Divergence guard: back to the last good state with half the learning rate (should_stop gives up)."""
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            return
        good = self.good
        self.model.load_state_dict(good.state_dict)
        # A copy: load_state_dict keeps the tensors it is given, and later steps would update them in place.
        self.optimizer.load_state_dict(copy.deepcopy(good.optimizer))
        self.lr_scale *= 0.5
        self.carry = None
        self.emit(self.event("warning", message=f"the loss became {loss_value}; rolled back to step "
                                                f"{good.progress['step']} and halved the learning rate"))
        self.progress.update({k: good.progress[k] for k in ("step", "chars_seen")})

    def evaluate_and_save(self) -> None:
        """Score the validation sample, write a text, add a history row; save the model if it is the best yet."""
        started = self.clock()
        train_s = self.elapsed() - self.eval_time
        self.latest_val, _ = evaluate(self.model, self.val_ids, self.eval_chars, self.cfg.window, device=self.device)
        sample = None
        if self.cfg.sample_chars:
            sample = generate(self.model, self.corpus.vocab, prime="", length=self.cfg.sample_chars, cfg=_SAMPLE,
                              seed=self.cfg.seed, window=self.cfg.window).texts[0]
        self.model.train()
        self.eval_time += self.clock() - started
        self.progress["eval_s"] = self.eval_time
        self.last_eval_at = self.elapsed()
        step, chars_seen = self.progress["step"], self.progress["chars_seen"]
        self.history.append({"step": step, "epoch": chars_seen / self.train_chars, "chars_seen": chars_seen,
                             "elapsed_s": self.last_eval_at, "train_s": train_s, "train_loss": self.smoothed,
                             "val_loss": self.latest_val, "lr": self.lr, "sample": sample})
        self.emit(self.event("eval", sample=sample))
        if self.best_val is None or self.latest_val < self.best_val:
            self.best_val = self.latest_val
            if self.out is not None:
                ckpt_io.save(self.snapshot(with_optimizer=False), self.out)
                self.emit(self.event("checkpoint", path=str(self.out), message="best so far"))

    def snapshot(self, with_optimizer: bool) -> ckpt_io.Checkpoint:
        """The run as a checkpoint: the model alone, or (with_optimizer) all an exact resume needs."""
        resume = {}
        if with_optimizer:
            carry = [t.detach().cpu() for t in self.carry] if self.carry is not None else None
            resume = {"optimizer": copy.deepcopy(self.optimizer.state_dict()), "carry": carry,
                      "rng": {"torch": torch.get_rng_state(), "batches": self.generator.get_state()}}
        return ckpt_io.Checkpoint(
            model_config=self.model_cfg.to_dict(), vocab=self.corpus.vocab.to_list(),
            state_dict={k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            preset=self.preset, train_config=self.cfg.to_dict(), history=list(self.history),
            progress={**self.progress, "position": self.batches.position()}, best_val_loss=self.best_val,
            window=self.cfg.window, info={**self.identity, "device": str(self.device)}, **resume)

    def finish(self) -> TrainResult:
        """Evaluate the last step if that has not been done, write the resume file, and report the end."""
        self.progress["elapsed_s"] = self.elapsed()
        step = self.progress["step"]
        if step > 0 and (not self.history or self.history[-1]["step"] != step):
            self.evaluate_and_save()
        if self.last_path is not None:
            ckpt_io.save(self.snapshot(with_optimizer=True), self.last_path)
            self.emit(self.event("checkpoint", path=str(self.last_path), message="latest (for resume)"))
        self.emit(self.event("stopped" if self.stopped else "done", message=self.message))
        best_path = self.out if self.out is not None and self.out.exists() else None
        return TrainResult(best_val_loss=self.best_val, final_val_loss=self.latest_val, history=self.history,
                           best_path=best_path, last_path=self.last_path, stopped=self.stopped, steps=step,
                           chars_seen=self.progress["chars_seen"], elapsed_s=self.progress["elapsed_s"],
                           message=self.message)

    def event(self, kind: str, **extra) -> Progress:
        """A Progress event of this kind, with the run's figures as they are now."""
        elapsed = self.elapsed()
        fraction = min(self.fraction_done(elapsed), 1.0)
        eta = None
        if 0 < fraction < 1 and self.progress["step"] > 0:   # the rest of the budget at this session's pace
            eta = (elapsed - self.elapsed_before) * (1 - fraction) / max(fraction - self.fraction_before, 1e-9)
        val = self.latest_val
        return Progress(kind=kind, step=self.progress["step"], epoch=self.progress["chars_seen"] / self.train_chars,
                        chars_seen=self.progress["chars_seen"], train_loss=self.smoothed, val_loss=val,
                        val_bits=val / LN2 if val is not None else None,
                        chars_per_sec=self.rate_chars / self.rate_time if self.rate_time > 0 else 0.0,
                        elapsed_s=elapsed, eta_s=eta, lr=self.lr, fraction=fraction, **extra)


def train(corpus: Corpus, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None, *,
          preset: str = "custom", out: str | Path | None = None, resume: Resume | None = None,
          start: StartFrom | None = None, on_progress: Callable[[Progress], None] | None = None,
          stop: threading.Event | None = None) -> TrainResult:
    """Train a model with these configs on corpus, or go on with a run (resume); report through on_progress.

    `start` (charlm.startfrom) begins a new run from a trained model: then corpus and model_cfg are start's.
    """
    if start is not None and (start.corpus is not corpus or start.model_cfg != model_cfg):
        raise TypeError("a run started from a model trains start.corpus with start.model_cfg")
    if resume is not None:
        if model_cfg is not None or train_cfg is not None or start is not None:
            raise TypeError("a resumed run keeps its own configs; give the budget in Resume")
        trainer = Trainer.resuming(corpus, resume, out=out, on_progress=on_progress, stop=stop)
    elif model_cfg is None or train_cfg is None:
        raise TypeError("train() needs a model config and a training config, or a run to resume")
    else:
        trainer = Trainer(corpus, model_cfg, train_cfg, preset=preset, out=out, on_progress=on_progress, stop=stop,
                          start=start)
    return trainer.run()
