"""Training: the Trainer's phases (set up or resume, step, evaluate and save, snapshot, finish); it emits, never prints.

One process, or several under torchrun (charlm.train.distributed): then each trains on its rows of every batch
through DistributedDataParallel, rank 0 makes the run's decisions and shares them, and rank 0 alone
evaluates, reports and writes files.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import precision, setup
from charlm.train.batches import BatchStream, pinned
from charlm.config import ModelConfig, TrainConfig
from charlm.text.corpus import Corpus
from charlm.engine.decoding import generate
from charlm.nn.device import OutOfMemory, memory_that_ran_out
from charlm.train.distributed import Group
from charlm.text.encoded import EncodedCorpus
from charlm.train.evaluate import evaluate
from charlm.train.events import Progress, TrainResult
from charlm.nn.model import CharLSTM, detach_state
from charlm.train.optim import lr_at
from charlm.train.resume import Resume
from charlm.train.runfiles import RunFiles
from charlm.engine.sampling import DecodeConfig
from charlm.train.startfrom import StartFrom
from charlm.train.state import RunState

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
        setup.check_text(self.train_ids, cfg, group.world_size)
        self.files = RunFiles(out)
        self.state = RunState() if resume_from is None else \
            RunState.from_file(resume_from.progress, resume_from.history, resume_from.best_val_loss,
                               resume_from.best_step)
        setup.build(self)   # device, generators, model, optimizer, weight average
        if resume_from is not None:
            self.files.restore(self, resume_from)
        elif start is not None:   # a new run from a trained model's weights (start_from widened them to this text)
            self.model.load_state_dict(start.weights)
            self.identity.update(start.origin)
        else:
            setup.head_from_frequencies(self.model, self.train_ids)
        self.batches = BatchStream(self.train_ids, self.cfg, self.generator, self.state.position,
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
        corpus, state, model_cfg, cfg = RunFiles.read_resume(corpus, resume)
        return cls(corpus, model_cfg, cfg, preset=state.preset, resume_from=state, **kwargs)

    @property
    def average(self) -> CharLSTM | None:
        """The copy holding the average of the weights (self.averaging), or None before it has begun."""
        return self.averaging.averaged

    # --- set up ---------------------------------------------------------------------------------

    def _start_session(self) -> None:
        """This session's arithmetic, clock and rates; the budget used before it (a resumed run) stays counted."""
        if self.device.type == "cuda":
            self.model.lstm.flatten_parameters()
        if self.arithmetic_why != precision.RESUMED:
            self.arithmetic, self.arithmetic_why = setup.shared_arithmetic(self.model, self.cfg, self.device,
                                                                           self.group)
        self.identity["arithmetic"] = self.arithmetic
        self.use_amp = self.arithmetic == precision.BF16
        self.good = self.snapshot(with_optimizer=True)   # the last known-good state, for the divergence guard
        fraction = self.fraction_done(self.state.elapsed_s)
        self.state.begin_session(self.clock(), fraction, lr_at(self.cfg, self.state.step, fraction))

    # --- the decisions --------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds the run has trained, earlier sessions included."""
        return self.state.elapsed_before + self.clock() - self.state.session_start

    def fraction_done(self, elapsed: float | None = None) -> float:
        """How far through the budget (1 or more: spent): the furthest of its epochs, minutes and steps.
        It also drives the cosine schedule."""
        elapsed = self.elapsed() if elapsed is None else elapsed
        cfg, parts = self.cfg, []
        if cfg.epochs:
            parts.append(self.state.chars_seen / (cfg.epochs * self.train_chars))
        if cfg.minutes:
            parts.append(elapsed / (cfg.minutes * 60))
        if cfg.max_steps:
            parts.append(self.state.step / cfg.max_steps)
        return max(parts)

    def should_stop(self) -> bool:
        """Stop now? After a divergence rollbacks did not cure, on the stop flag, or once the budget is spent."""
        state = self.state
        if state.rollbacks > MAX_ROLLBACKS:
            state.stopped, state.message = True, DIVERGED
        elif self.stop.is_set():
            state.stopped, state.message = True, STOPPED
        return state.stopped or self.fraction_done() >= 1.0

    def should_evaluate(self) -> bool:
        """Evaluate now? At the early steps (state.EARLY_EVALS), then once eval_interval_s seconds have passed
        since the last evaluation (or the start)."""
        return self.state.early_eval_due() or self.elapsed() - self.state.last_eval_at >= self.cfg.eval_interval_s

    def should_save(self) -> bool:
        """Write the resume file now? Once save_every_s seconds have passed since it was last written."""
        return self.files.last_path is not None and self.clock() - self.state.saved_at >= self.save_every_s

    def decide(self, stepped: bool) -> tuple[bool, bool, bool, float]:
        """-> (stop, evaluate, save, fraction done): rank 0's decisions, the same on every process, so they
        stop, evaluate and save together and follow one learning-rate schedule. `stepped`: the last step counted."""
        mine = [0.0] * 5
        if self.group.is_main:
            stop = self.should_stop()
            evaluate = (stepped or self.state.step == 0) and self.should_evaluate()   # step 0: the untrained model
            mine = [stop, evaluate, not stop and self.should_save(), self.fraction_done(),
                    _REASONS.index(self.state.message)]
        stop, evaluate, save, fraction, reason = self.group.share(mine)
        if reason:
            self.state.stopped, self.state.message = True, _REASONS[int(reason)]
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
        self.state.lr = self.state.lr_scale * lr_at(self.cfg, self.state.step, fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = self.state.lr
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
        self.state.stepped(loss_value, targets, self.clock() - started)
        self.state.elapsed_s = self.elapsed()
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
        state, good = self.state, self.good
        state.rollbacks += 1
        if state.rollbacks > MAX_ROLLBACKS:
            return
        self.model.load_state_dict(good.state_dict)
        self.averaging.load_state_dict(good.average)
        # A copy: load_state_dict keeps the tensors it is given, and later steps would update them in place.
        self.optimizer.load_state_dict(copy.deepcopy(good.optimizer))
        state.lr_scale *= 0.5
        self.carry = None
        self.emit(self.event("warning", message=f"the loss became {loss_value}; rolled back to step "
                                                f"{good.progress['step']} and halved the learning rate"))
        state.step, state.chars_seen = good.progress["step"], good.progress["chars_seen"]

    def evaluate_and_save(self) -> None:
        """Score the validation sample, write a text, add a history row; save the model if it is the best yet.
        Rank 0 alone: the others wait for its next decision."""
        if not self.group.is_main:
            return
        started = self.clock()
        train_s = self.elapsed() - (self.state.eval_s or 0.0)
        model = self.averaging.model   # the model as it is saved: its averaged weights, once there are some
        val_loss, _ = evaluate(model, self.val_ids, self.eval_chars, self.cfg.window, device=self.device)
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
        eval_s = self.clock() - started
        row = self.state.row(self.elapsed(), train_s, self.train_chars, val_loss, sample, **extra)
        best = self.state.evaluated(row, eval_s)
        self.emit(self.event("eval", sample=sample))
        # The model file at every evaluation: the whole history, with the best evaluation's weights.
        if self.files.save_model(self, best) and best:
            self.emit(self.event("checkpoint", path=str(self.files.out), message="best so far"))

    def save_resume(self) -> None:
        """Write the resume file (rank 0) with every process's carried rows and random state; under torchrun
        every process calls it at once (decide() says when)."""
        self.files.save_resume(self)
        self.state.saved_at = self.clock()

    def snapshot(self, with_optimizer: bool, carry: list | None = None, rng: dict | None = None) -> ckpt_io.Checkpoint:
        """The run as a checkpoint: the model alone, or (with_optimizer) all an exact resume needs."""
        return self.files.snapshot(self, with_optimizer, carry, rng)

    def finish(self) -> TrainResult:
        """Evaluate the last step if that has not been done, write the resume file, and report the end."""
        state = self.state
        state.elapsed_s = self.elapsed()
        if state.step > 0 and (not state.history or state.history[-1]["step"] != state.step):
            self.evaluate_and_save()
        state.elapsed_s = self.elapsed()
        if self.group.is_main:   # the model file says the run's whole steps and time, its evaluation's included
            self.files.save_model(self, best=False)
        if self.files.last_path is not None:
            self.save_resume()
            self.emit(self.event("checkpoint", path=str(self.files.last_path), message="latest (for resume)"))
        self.emit(self.event("stopped" if state.stopped else "done", message=state.message))
        return TrainResult.of(state, self.files.best_path(), self.files.last_path)

    def event(self, kind: str, **extra) -> Progress:
        """A Progress event of this kind, with the run's figures as they are now."""
        elapsed = self.elapsed()
        return Progress.of(kind, self.state, elapsed_s=elapsed, fraction=self.fraction_done(elapsed),
                           train_chars=self.train_chars, arithmetic=self.arithmetic,
                           arithmetic_why=self.arithmetic_why, **extra)


def train(corpus: Corpus | EncodedCorpus, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
          *, preset: str = "custom", out: str | Path | None = None, resume: Resume | None = None,
          start: StartFrom | None = None, on_progress: Callable[[Progress], None] | None = None,
          stop: threading.Event | None = None, group: Group = Group(),
          save_every_s: float = SAVE_EVERY_S) -> TrainResult:
    """Train a model with these configs on corpus, or go on with a run (resume); report through on_progress.

    `start` (charlm.train.startfrom) begins a new run from a trained model: then corpus and model_cfg are start's.
    `group`: this process's place under torchrun (charlm.train.distributed.joined); one process by default.
    OutOfMemory (a UserError) says what to lower when the device's memory runs out.
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
