"""Where a run stands: RunState, its counters and evaluations (what a file's progress holds) and this session's figures.

No torch here: the Trainer changes a RunState as it steps and evaluates, RunFiles writes it into checkpoints,
and charlm.train.events reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charlm.errors import UserError

EARLY_EVALS = (0, 10, 30)   # steps evaluated whatever the spacing: the first, noisy writing is worth seeing


@dataclass
class RunState:
    # What the run has done, saved in every file it writes and restored on resume.
    step: int = 0                       # optimizer steps taken
    chars_seen: int = 0                 # training targets predicted (every process's rows)
    elapsed_s: float = 0.0              # seconds trained, earlier sessions included
    eval_s: float | None = None         # seconds of those spent evaluating; None (left out of files) before any
    position: dict | None = None        # where the batches stood in the text at the last save (they hold it since)
    history: list[dict] = field(default_factory=list)   # one row per evaluation
    best_val: float | None = None       # the best validation loss, nats/char: the model file's
    best_step: int | None = None        # the step of that evaluation, whose weights the model file holds
    latest_val: float | None = None     # the latest validation loss, nats/char
    # This session's figures, set again by begin_session().
    smoothed: float | None = None       # training loss, exponentially smoothed
    lr: float = 0.0                     # the learning rate of the last step
    lr_scale: float = 1.0               # halved at each rollback from a non-finite loss
    rollbacks: int = 0                  # rollbacks from a non-finite loss
    stopped: bool = False               # stopped early (on request, or diverged) ...
    message: str | None = None          # ... and why
    session_start: float = 0.0          # the clock when this session began
    elapsed_before: float = 0.0         # seconds trained before this session
    fraction_before: float = 0.0        # of the budget, used before this session
    last_eval_at: float = 0.0           # elapsed seconds at the last evaluation (or the session's start)
    saved_at: float = 0.0               # the clock when the resume file was last written
    rate_chars: int = 0                 # chars/s over this session's steps, evaluations excluded ...
    rate_time: float = 0.0              # ... as characters and seconds

    @classmethod
    def from_file(cls, progress: dict, history: list[dict], best_val: float | None,
                  best_step: int | None = None) -> "RunState":
        """The state a resume file saved (its progress checked first, so a damaged file says so)."""
        counts = checked_progress(progress)
        history = list(history)
        return cls(step=counts["step"], chars_seen=counts["chars_seen"], elapsed_s=counts["elapsed_s"],
                   eval_s=counts["eval_s"], position=counts.get("position"), history=history, best_val=best_val,
                   best_step=best_step, latest_val=history[-1]["val_loss"] if history else None)

    def begin_session(self, now: float, fraction: float, lr: float) -> None:
        """This session's figures at its start; what earlier sessions used stays counted."""
        self.smoothed, self.lr, self.lr_scale, self.rollbacks = None, lr, 1.0, 0
        self.stopped, self.message = False, None
        self.session_start = self.saved_at = now
        self.elapsed_before = self.last_eval_at = self.elapsed_s
        self.fraction_before = fraction
        self.rate_chars, self.rate_time = 0, 0.0

    def progress(self, position: dict) -> dict:
        """The counters as a file's progress holds them, with the batches' position now."""
        counts = {"step": self.step, "chars_seen": self.chars_seen, "elapsed_s": self.elapsed_s}
        if self.eval_s is not None:
            counts["eval_s"] = self.eval_s
        return {**counts, "position": position}

    def stepped(self, loss: float, targets: int, seconds: float) -> None:
        """Count one step of `targets` characters that took `seconds` and scored `loss`."""
        self.step += 1
        self.chars_seen += targets
        self.smoothed = loss if self.smoothed is None else 0.95 * self.smoothed + 0.05 * loss
        self.rate_chars += targets
        self.rate_time += seconds

    def early_eval_due(self) -> bool:
        """Is this step one of EARLY_EVALS, not yet evaluated?"""
        return self.step in EARLY_EVALS and not (self.history and self.history[-1]["step"] == self.step)

    def row(self, elapsed_s: float, train_s: float, train_chars: int, val_loss: float, sample: str | None,
            **extra) -> dict:
        """An evaluation's history row: the run `elapsed_s` seconds in, `train_s` of them training."""
        return {"step": self.step, "epoch": self.chars_seen / train_chars, "chars_seen": self.chars_seen,
                "elapsed_s": elapsed_s, "train_s": train_s, "train_loss": self.smoothed, "val_loss": val_loss,
                "lr": self.lr, "sample": sample, **extra}

    def evaluated(self, row: dict, eval_s: float) -> bool:
        """Add an evaluation's history row (it took eval_s seconds) -> is its val_loss the best yet?"""
        self.eval_s = (self.eval_s or 0.0) + eval_s
        self.last_eval_at = row["elapsed_s"]
        self.latest_val = row["val_loss"]
        self.history.append(row)
        if self.best_val is None or self.latest_val < self.best_val:
            self.best_val, self.best_step = self.latest_val, self.step
            return True
        return False


def checked_progress(progress: dict) -> dict:
    """A resume file's counters, checked, so a damaged file says so instead of failing mid-arithmetic."""
    out = dict(progress)
    for name, kinds in (("step", int), ("chars_seen", int), ("elapsed_s", (int, float)), ("eval_s", (int, float))):
        value = out.setdefault(name, 0)
        if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value < 2**53:   # 2**53: exact as a float
            raise UserError(f"the resume file is damaged: its {name} is not a count")
    return out
