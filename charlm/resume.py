"""Going on with a run: the Resume request, where the resume file lives, and its counters checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig


@dataclass(frozen=True)
class Resume:
    """Go on with a run from its resume file. A budget given is more, on top of what the run has used;
    without one the run finishes its original plan exactly as if it had never stopped."""
    path: str | Path                       # the run's NAME.last.pt
    minutes: float | None = None           # more wall-clock minutes ...
    epochs: float | None = None            # ... or more passes over the training text ...
    max_steps: int | None = None           # ... or a new limit on the run's steps, counted from its start
    device: str | None = None              # where to go on ("auto", "cpu", ...); None: the run's own setting
    eval_interval_s: float | None = None   # seconds between evaluations; None: the run's own setting

    def config_after(self, saved: TrainConfig, progress: dict, train_chars: int) -> TrainConfig:
        """The run's config for this session; a budget given replaces the old plan's (an old step limit
        must not end the extra minutes at once)."""
        changes = {name: getattr(self, name) for name in ("device", "eval_interval_s") if getattr(self, name) is not None}
        if self.minutes or self.epochs or self.max_steps:
            changes.update(minutes=self.minutes + progress["elapsed_s"] / 60 if self.minutes else None,
                           epochs=self.epochs + progress["chars_seen"] / max(1, train_chars) if self.epochs else None,
                           max_steps=self.max_steps)
        return saved.replace(**changes)


def last_path_for(out: Path) -> Path:
    """The resume file lives beside the model: model.safetensors -> model.last.pt."""
    return out.with_name(out.stem + ".last.pt")


def checked_progress(progress: dict) -> dict:
    """A resume file's counters, checked, so a damaged file says so instead of failing mid-arithmetic."""
    out = dict(progress)
    for name, kinds in (("step", int), ("chars_seen", int), ("elapsed_s", (int, float)), ("eval_s", (int, float))):
        value = out.setdefault(name, 0)
        if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value < 2**53:   # 2**53: exact as a float
            raise ValueError(f"the resume file is damaged: its {name} is not a count")
    return out
