"""Training: the Trainer's phases (set up or resume, step, evaluate and save, snapshot, finish); it emits, never prints.

One process, or several under torchrun (charlm.train.distributed): then each trains on its rows of every batch
through DistributedDataParallel, rank 0 makes the run's decisions and shares them, and rank 0 alone
evaluates, reports and writes files.
"""

from __future__ import annotations

import copy
from dataclasses import replace
import math
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import precision
from charlm.train import resume as resume_file
from charlm.train.averaging import WeightAverage, cpu_weights
from charlm.train.batches import BatchStream, pinned, rank_rows
from charlm.config import ModelConfig, TrainConfig
from charlm.text.corpus import Corpus, Vocab
from charlm.engine.decoding import generate
from charlm.nn.device import OutOfMemory, memory_that_ran_out, pick_device, seed_everything
from charlm.train.distributed import Group, rank_seed
from charlm.text.encoded import EncodedCorpus, identity
from charlm.train.evaluate import eval_sample_size, evaluate
from charlm.train.events import Progress, TrainResult
from charlm.nn.model import CharLSTM, detach_state
from charlm.train.optim import lr_at, make_optimizer
from charlm.train.resume import Resume, check_fits, checked_progress, last_path_for
from charlm.engine.sampling import DecodeConfig
from charlm.train.startfrom import StartFrom
from charlm.units import LN2

SAVE_EVERY_S = 60.0  # the resume file is written at least this often (seconds), so a killed run loses little
MAX_ROLLBACKS = 3   # non-finite losses a run rolls back from (halving the learning rate each time) before it gives up
STOPPED = "stopped on request"
DIVERGED = ("training diverged (the loss became NaN/inf) three times even after lowering the learning rate; "
            "try a lower learning rate")
_SAMPLE = DecodeConfig("sample", temperature=0.8)   # how the sample at each evaluation is written
_REASONS = (None, STOPPED, DIVERGED)                # why a run stopped early, as rank 0 shares it


class Trainer:
    """One training run: set up (or resume), then step until should_stop(), evaluating when should_evaluate().

    The decisions (stop now? evaluate now? save the resume file now? how far through the budget?) live in
    one method each; decide() makes them on rank 0 and shares them, so every process acts alike.
    """

    def __init__(self, corpus: Corpus | EncodedCorpus, model_cfg: ModelConfig, cfg: TrainConfig, *,
                 preset: str = "custom", out: str | Path | None = None,
                 on_progress: Callable[[Progress], None] | None = None, stop: threading.Event | None = None,
                 resume_from: ckpt_io.Checkpoint | None = None, start: StartFrom | None = None,
                 clock: Callable[[], float] = time.perf_counter, group: Group = Group(),
                 save_every_s: float = SAVE_EVERY_S):
        self.corpus, self.model_cfg, self.preset, self.group = corpus, model_cfg, preset, group
        self.cfg = cfg if cfg.has_budget else cfg.replace(epochs=1.0)   # no budget given means one pass
        self.emit = on_progress if on_progress is not None and group.is_main else (lambda event: None)
        self.stop, self.clock, self.save_every_s = stop or threading.Event(), clock, save_every_s
        self.train_ids, self.val_ids = corpus.split()
        if len(self.train_ids) < cfg.seq_len + 2:
            raise ValueError(f"the training text ({len(self.train_ids):,} characters) is shorter than one sequence "
                             f"({cfg.seq_len}); lower the sequence length or bring more text")
        if min(cfg.batch_size, len(self.train_ids) - cfg.seq_len) < group.world_size:
            raise ValueError(f"a batch of {cfg.batch_size} rows cannot be shared by {group.world_size} processes; "
                             f"use a batch size of at least {group.world_size}, or fewer processes")
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
        self.batches = BatchStream(self.train_ids, self.cfg, self.generator, self.progress.get("position"),
                                   rank=group.rank, world_size=group.world_size)
        # What the steps run: the model itself, or (several processes) DDP around it, which averages the
        # gradients over the processes during backward. Rank 0's weights are copied to the others here.
        self.stepper = self.model
        if group.active:
            self.stepper = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self._start_session()

    @classmethod
    def resuming(cls, corpus: Corpus, resume: Resume, **kwargs) -> "Trainer":
        """A trainer that goes on from resume.path with the run's own configs (and the budget resume gives)."""
        state = resume_file.load(resume.path)
        if state.vocab != corpus.vocab.to_list():
            if set(corpus.vocab.chars) - set(state.vocab):
                raise ValueError("this checkpoint was trained on a text with other characters; resume it on the same "
                                 "corpus")
            # The same text in the run's own order of characters (a run started from a model appended its new ones).
            corpus = corpus.in_memory() if hasattr(corpus, "in_memory") else corpus
            vocab = Vocab.from_list(state.vocab)
            corpus = replace(corpus, vocab=vocab, ids=vocab.encode(corpus.text))
        saved = TrainConfig.from_dict({"rereads_window": state.window is not None, **state.train_config})
        if saved.window != state.window:
            raise ValueError(f"the resume file is damaged: its window ({state.window}) is not its sequence length")
        progress = checked_progress(state.progress)
        cfg = resume.config_after(saved, progress, len(corpus.split()[0]))
        return cls(corpus, ModelConfig.from_dict(state.model_config), cfg, preset=state.preset,
                   resume_from=state, **kwargs)

    @property
    def average(self) -> CharLSTM | None:
        """The copy holding the average of the weights (self.averaging), or None before it has begun."""
        return self.averaging.averaged

    # --- set up ---------------------------------------------------------------------------------

    def _build(self) -> None:
        """Device, seeds, model and optimizer, and the run's counters at their start."""
        self.device = self.group.place(pick_device(self.cfg.device))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # the batch shapes repeat: let cuDNN time its LSTM kernels once
        self.generator = seed_everything(self.cfg.seed)
        self.model = CharLSTM(self.model_cfg).to(self.device)
        if self.group.rank:   # dropout masks of their own for the other processes' rows (rank 0: as one process)
            torch.manual_seed(rank_seed(self.cfg.seed, self.group.rank, 0))
        self.optimizer = make_optimizer(self.model, self.cfg)
        self.progress = {"step": 0, "chars_seen": 0, "elapsed_s": 0.0}   # saved in snapshots, restored on resume
        self.history: list[dict] = []    # one row per evaluation
        self.best_val: float | None = None
        self.carry = None                # the LSTM state carried along contiguous streams
        self.averaging = WeightAverage(self.model, self.cfg.average_from, self.cfg.average_decay)
        self.arithmetic, self.arithmetic_why = precision.FP32, ""   # chosen in _start_session
        self.train_chars = max(1, len(self.train_ids))
        self.eval_chars = eval_sample_size(self.cfg.eval_chars, len(self.val_ids), self.cfg.window)
        self.identity = identity(self.corpus)
        if self.group.active:
            self.identity["processes"] = self.group.world_size

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
        check_fits(state, self.model, self.optimizer)
        self.model.load_state_dict({name: torch.as_tensor(v) for name, v in state.state_dict.items()})
        if state.optimizer:
            self.optimizer.load_state_dict(state.optimizer)
        self.progress = checked_progress(state.progress)
        self.history = list(state.history)
        self.best_val = state.best_val_loss
        self.averaging.load_state_dict(state.average)
        if state.info.get("arithmetic") in (precision.FP32, precision.BF16):
            # A resumed run keeps the arithmetic it was trained in (a new probe might choose otherwise).
            self.arithmetic, self.arithmetic_why = state.info["arithmetic"], precision.RESUMED
        # A run started from another model says so in every file it writes, resumed or not.
        self.identity.update({k: v for k, v in state.info.items() if k.startswith("started_from") or k == "new_chars"})
        if state.rng:
            self.generator.set_state(state.rng["batches"])   # the data order: the same for every process
            # Each process's own dropout stream (files from one process, or older ones: "torch" alone).
            ranks = state.rng.get("ranks") or [{"torch": state.rng["torch"]}]
            if self.group.rank < len(ranks):
                torch.set_rng_state(ranks[self.group.rank]["torch"])
                if self.device.type == "cuda" and ranks[self.group.rank].get("cuda") is not None:
                    torch.cuda.set_rng_state(ranks[self.group.rank]["cuda"], self.device)
            else:   # more processes than the run had: a stream of its own, not the one an earlier run used
                torch.manual_seed(rank_seed(self.cfg.seed, self.group.rank, self.progress["step"]))
        if state.carry:
            # The file holds every row of the global batch; this process carries its own rows on.
            rows = rank_rows(state.carry[0].shape[1], self.group.rank, self.group.world_size)
            self.carry = tuple(part[:, rows].contiguous().to(self.device) for part in state.carry[:2])

    def _choose_arithmetic(self) -> None:
        """bf16 autocast or fp32 (charlm.train.precision): decided on rank 0 and shared, so every process trains alike."""
        bf16 = 0.0
        if self.group.is_main:
            step = precision.probe_step(self.model, self.model_cfg.vocab_size, self.cfg.batch_size, self.cfg.seq_len)
            self.arithmetic, self.arithmetic_why = precision.choose(self.device, self.cfg.amp, step)
            bf16 = float(self.arithmetic == precision.BF16)
        self.arithmetic = precision.BF16 if self.group.share([bf16])[0] else precision.FP32

    def _start_session(self) -> None:
        """This session's clock and rates; the budget used before it (a resumed run) stays counted."""
        if self.device.type == "cuda":
            self.model.lstm.flatten_parameters()
        if self.arithmetic_why != precision.RESUMED:
            self._choose_arithmetic()
        self.identity["arithmetic"] = self.arithmetic
        self.use_amp = self.arithmetic == precision.BF16
        self.good = self.snapshot(with_optimizer=True)   # the last known-good state, for the divergence guard
        self.saved_at = self.clock()                      # when the resume file was last written
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

    def should_save(self) -> bool:
        """Write the resume file now? Once save_every_s seconds have passed since it was last written."""
        return self.last_path is not None and self.clock() - self.saved_at >= self.save_every_s

    def decide(self, stepped: bool) -> tuple[bool, bool, bool, float]:
        """-> (stop, evaluate, save, fraction done): rank 0's decisions, the same on every process, so they
        stop, evaluate and save together and follow one learning-rate schedule. `stepped`: the last step counted."""
        mine = [0.0] * 5
        if self.group.is_main:
            stop = self.should_stop()
            mine = [stop, stepped and self.should_evaluate(), not stop and self.should_save(), self.fraction_done(),
                    _REASONS.index(self.message)]
        stop, evaluate, save, fraction, reason = self.group.share(mine)
        if reason:
            self.stopped, self.message = True, _REASONS[int(reason)]
        return bool(stop), bool(evaluate), bool(save), fraction

    # --- the phases -----------------------------------------------------------------------------

    def run(self) -> TrainResult:
        self.model.train()
        stepped = False
        while True:
            stop, evaluate, save, fraction = self.decide(stepped)
            if evaluate:
                self.evaluate_and_save()
                self.good = self.snapshot(with_optimizer=True)
            if stop:
                break
            if save:
                self.save_resume()
            stepped = self.step(fraction)
        return self.finish()

    def step(self, fraction: float | None = None) -> bool:
        """One optimizer step on the next batch; False when its loss was not finite and it was rolled back.
        `fraction`: how far through the budget (rank 0's, under torchrun); None measures it here."""
        started = self.clock()
        x, y, fresh = self.batches.next()   # this process's rows of the global batch
        x = pinned(x, self.device).to(self.device, non_blocking=True)
        y = pinned(y, self.device).to(self.device, non_blocking=True)
        if fresh or self.carry is None or self.carry[0].shape[1] != x.shape[0]:
            self.carry = self.model.init_state(x.shape[0])
        fraction = self.fraction_done() if fraction is None else fraction
        self.lr = self.lr_scale * lr_at(self.cfg, self.progress["step"], fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        loss, new_state = self._loss(x, y)
        # The batch's mean loss over every process: each process's mean weighted by its share of the rows.
        # Backward scales each share so that DDP's average of the gradients is the gradient of that mean.
        share = x.shape[0] / self.batches.batch_rows
        if share * self.group.world_size != 1.0:
            loss = loss * (share * self.group.world_size)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        loss_value = self.group.total(loss.item() / self.group.world_size)
        targets = self.batches.batch_rows * (y.shape[1] if self.cfg.objective == "all" else 1)
        if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
            self._roll_back(loss_value)
            return False
        self.optimizer.step()
        self.averaging.fold(fraction)
        self.carry = detach_state(new_state) if self.cfg.stateful else None
        self.progress["step"] += 1
        self.progress["chars_seen"] += targets
        self.smoothed = loss_value if self.smoothed is None else 0.95 * self.smoothed + 0.05 * loss_value
        self.rate_chars += targets
        self.rate_time += self.clock() - started
        self.progress["elapsed_s"] = self.elapsed()
        self.emit(self.event("step"))
        return True

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """-> (mean loss over these rows, the state after x): every position, or the last of each window."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            logits, new_state = self.stepper(x, self.carry)   # (rows, seq, vocab)
            if self.cfg.objective == "last":
                return F.cross_entropy(logits[:, -1].float(), y[:, -1]), new_state
            return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten()), new_state

    def _roll_back(self, loss_value: float) -> None:
        """Divergence guard: back to the last good state with half the learning rate (should_stop gives up)."""
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            return
        good = self.good
        self.model.load_state_dict(good.state_dict)
        self.averaging.load_state_dict(good.average)
        # A copy: load_state_dict keeps the tensors it is given, and later steps would update them in place.
        self.optimizer.load_state_dict(copy.deepcopy(good.optimizer))
        self.lr_scale *= 0.5
        self.carry = None
        self.emit(self.event("warning", message=f"the loss became {loss_value}; rolled back to step "
                                                f"{good.progress['step']} and halved the learning rate"))
        self.progress.update({k: good.progress[k] for k in ("step", "chars_seen")})

    def evaluate_and_save(self) -> None:
        """Score the validation sample, write a text, add a history row; save the model if it is the best yet.
        Rank 0 alone: the others wait for its next decision."""
        if not self.group.is_main:
            return
        started = self.clock()
        train_s = self.elapsed() - self.eval_time
        model = self.averaging.model   # the model as it is saved: its averaged weights, once there are some
        self.latest_val, _ = evaluate(model, self.val_ids, self.eval_chars, self.cfg.window, device=self.device)
        extra = {}
        ending = self.fraction_done() >= 1.0 or self.stop.is_set()
        if self.averaging.started and ending:   # what the averaging bought: the weights as trained, scored alike
            extra["val_loss_trained"], _ = evaluate(self.model, self.val_ids, self.eval_chars, self.cfg.window,
                                                    device=self.device)
        sample = None
        if self.cfg.sample_chars:
            sample = generate(model, self.corpus.vocab, prime="", length=self.cfg.sample_chars, cfg=_SAMPLE,
                              seed=self.cfg.seed, window=self.cfg.window).texts[0]
        self.model.train()
        self.eval_time += self.clock() - started
        self.progress["eval_s"] = self.eval_time
        self.last_eval_at = self.elapsed()
        step, chars_seen = self.progress["step"], self.progress["chars_seen"]
        self.history.append({"step": step, "epoch": chars_seen / self.train_chars, "chars_seen": chars_seen,
                             "elapsed_s": self.last_eval_at, "train_s": train_s, "train_loss": self.smoothed,
                             "val_loss": self.latest_val, "lr": self.lr, "sample": sample, **extra})
        self.emit(self.event("eval", sample=sample))
        if self.best_val is None or self.latest_val < self.best_val:
            self.best_val = self.latest_val
            if self.out is not None:
                ckpt_io.save(self.snapshot(with_optimizer=False), self.out)
                self.emit(self.event("checkpoint", path=str(self.out), message="best so far"))

    def save_resume(self) -> None:
        """Write the resume file (rank 0) with every process's carried rows and random state; under torchrun
        every process calls it at once (decide() says when)."""
        if self.last_path is None:
            return
        mine = {"carry": [t.detach().float().cpu() for t in self.carry] if self.carry is not None else None,
                "rng": {"torch": torch.get_rng_state()}}
        if self.device.type == "cuda":
            mine["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        every = self.group.gather(mine)
        if self.group.is_main:
            carry = None
            if all(share["carry"] is not None for share in every):   # the global batch's rows, in rank order
                carry = [torch.cat([share["carry"][k] for share in every], dim=1) for k in (0, 1)]
            rng = {"torch": every[0]["rng"]["torch"], "batches": self.generator.get_state(),
                   "ranks": [share["rng"] for share in every]}
            resume_file.save(self.snapshot(with_optimizer=True, carry=carry, rng=rng), self.last_path)
        self.saved_at = self.clock()

    def snapshot(self, with_optimizer: bool, carry: list | None = None, rng: dict | None = None) -> ckpt_io.Checkpoint:
        """The run as a checkpoint: the model alone, or (with_optimizer) all an exact resume needs, with the
        carried and random state given (save_resume gathers them from every process)."""
        # A model file holds the averaged weights, once there are some; a resume file both.
        resume, saved = {}, self.averaging.model
        if with_optimizer:   # a resume file: the weights as trained, and their average beside them
            resume = {"optimizer": copy.deepcopy(self.optimizer.state_dict()), "carry": carry, "rng": rng,
                      "average": self.averaging.state_dict()}
            saved = self.model
        return ckpt_io.Checkpoint(
            model_config=self.model_cfg.to_dict(), vocab=self.corpus.vocab.to_list(),
            state_dict=cpu_weights(saved),
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
            self.save_resume()
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
                        elapsed_s=elapsed, eta_s=eta, lr=self.lr, fraction=fraction, arithmetic=self.arithmetic,
                        arithmetic_why=self.arithmetic_why, **extra)


def train(corpus: Corpus | EncodedCorpus, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
          *, preset: str = "custom", out: str | Path | None = None, resume: Resume | None = None,
          start: StartFrom | None = None, on_progress: Callable[[Progress], None] | None = None,
          stop: threading.Event | None = None, group: Group = Group(),
          save_every_s: float = SAVE_EVERY_S) -> TrainResult:
    """Train a model with these configs on corpus, or go on with a run (resume); report through on_progress.

    `start` (charlm.train.startfrom) begins a new run from a trained model: then corpus and model_cfg are start's.
    `group`: this process's place under torchrun (charlm.train.distributed.joined); one process by default.
    OutOfMemory (a ValueError) says what to lower when the device's memory runs out.
    """
    if start is not None and (start.corpus is not corpus or start.model_cfg != model_cfg):
        raise TypeError("a run started from a model trains start.corpus with start.model_cfg")
    if resume is not None and (model_cfg is not None or train_cfg is not None or start is not None):
        raise TypeError("a resumed run keeps its own configs; give the budget in Resume")
    if resume is None and (model_cfg is None or train_cfg is None):
        raise TypeError("train() needs a model config and a training config, or a run to resume")
    common = dict(out=out, on_progress=on_progress, stop=stop, group=group, save_every_s=save_every_s)
    trainer = None
    try:
        if resume is not None:
            trainer = Trainer.resuming(corpus, resume, **common)
        else:
            trainer = Trainer(corpus, model_cfg, train_cfg, preset=preset, start=start, **common)
        return trainer.run()
    except RuntimeError as err:   # torch.cuda.OutOfMemoryError is one
        where = memory_that_ran_out(err)
        if where is None:
            raise
        if trainer is not None:
            model_cfg, train_cfg = trainer.model_cfg, trainer.cfg
        raise OutOfMemory(where, model_cfg, train_cfg, group.world_size) from None
