"""Going on with a run: the Resume request, where the resume file lives, and its contents checked."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from charlm import files
from charlm.config import TrainConfig
from charlm.modelfile import checkpoint
from charlm.errors import UserError
from charlm.modelfile.checkpoint import Checkpoint


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


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write a resume file atomically: a torch archive of tensors and plain data (the model, the optimizer's,
    random and carried state), read back by the checked reader, never by unpickling."""
    payload = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION,
               **{k: getattr(ckpt, k) for k in Checkpoint.__dataclass_fields__}}
    payload["state_dict"] = {k: torch.from_numpy(v) for k, v in ckpt.numpy_weights().items()}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return files.write_atomically(path, buffer.getvalue())


def load(path: str | Path) -> Checkpoint:
    """A resume file, checked, with its resume state (optimizer, generators, carry, average) as torch tensors."""
    state = checkpoint.load(path, for_resume=True)
    for name in ("optimizer", "rng", "carry", "average", "best_weights"):
        setattr(state, name, _as_tensors(getattr(state, name)))
    return state


def _as_tensors(value):
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return torch.from_numpy(value)
    if isinstance(value, dict):
        return type(value)((k, _as_tensors(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_as_tensors(v) for v in value)
    return value


def last_path_for(out: Path) -> Path:
    """The resume file lives beside the model: model.safetensors -> model.last.pt."""
    return out.with_name(out.stem + ".last.pt")


_MOMENTS = ("step", "exp_avg", "exp_avg_sq")   # what Adam and AdamW (charlm.train.optim) keep for each weight


def check_fits(state, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """A resume file's optimizer, carried state, weight average and random state, checked against the model it
    holds before any is used: a crafted or damaged one would otherwise fail steps later, in a traceback."""
    problem = (_optimizer_misfit(state.optimizer, optimizer) or _carry_misfit(state.carry, model)
               or _weights_misfit(state.average, model, "its average of the weights is not the model's shape")
               or _weights_misfit(state.best_weights, model, "its best weights are not the model's shape")
               or _rng_misfit(state.rng))
    if problem:
        raise UserError(f"the resume file does not fit its own model ({problem}): it is damaged or was altered; "
                         "start the run afresh without --resume, or resume from the .last.pt file the run itself wrote")


def _optimizer_misfit(saved, optimizer: torch.optim.Optimizer) -> str | None:
    if not saved:
        return None
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    moments = saved.get("state") if isinstance(saved, dict) else None
    ours = optimizer.param_groups
    if not isinstance(groups, list) or not isinstance(moments, dict) or len(groups) != len(ours) or \
            any(not isinstance(g, dict) or not isinstance(g.get("params"), list) or len(g["params"]) != len(o["params"])
                for g, o in zip(groups, ours)):
        return "its optimizer's groups of weights are not the model's"
    for group in groups:
        numbers = [group.get("lr"), group.get("eps"), group.get("weight_decay"), *(group.get("betas") or [None])]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers) or len(numbers) != 5:
            return "its optimizer's settings are not numbers"
    params = dict(zip((i for g in groups for i in g["params"]), (p for o in ours for p in o["params"])))
    for index, moment in moments.items():
        if index not in params or not isinstance(moment, dict):
            return "its optimizer holds state for a weight the model lacks"
        weight = params[index]
        for name in _MOMENTS:
            value = moment.get(name)
            shape = () if name == "step" else weight.shape
            if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.shape != shape:
                return f"its optimizer's {name} for weight {index} is missing or the wrong shape"
    return None


def _carry_misfit(carry, model: torch.nn.Module) -> str | None:
    if not carry:
        return None
    cfg = model.config
    expected = (cfg.num_layers, cfg.hidden_size)
    if not isinstance(carry, (list, tuple)) or len(carry) < 2 or not all(
            isinstance(part, torch.Tensor) and part.is_floating_point() and part.dim() == 3 and part.shape[1] >= 1
            and (part.shape[0], part.shape[2]) == expected and part.shape == carry[0].shape for part in carry[:2]):
        return f"its carried state is not two (layers {expected[0]}, rows, hidden {expected[1]}) tensors"
    return None


def _weights_misfit(saved, model: torch.nn.Module, problem: str) -> str | None:
    if not saved:
        return None
    weights = model.state_dict()
    if not isinstance(saved, dict) or saved.keys() != weights.keys() or any(
            not isinstance(saved[name], torch.Tensor) or saved[name].shape != weight.shape
            for name, weight in weights.items()):
        return problem
    return None


def _rng_misfit(rng) -> str | None:
    if not rng:
        return None
    ranks = rng.get("ranks") if isinstance(rng, dict) else None
    # Each process's masks: a CPU generator's state ("torch"), or a GPU one's ("cuda", checked when it is set).
    states = [rng.get("batches"), *[r.get("torch") if isinstance(r, dict) else None
                                    for r in ranks or [rng] if not (isinstance(r, dict) and "cuda" in r)]] \
        if isinstance(rng, dict) and isinstance(ranks or [], list) else [None]
    if any(isinstance(r, dict) and "cuda" in r and not isinstance(r["cuda"], torch.Tensor) for r in ranks or []):
        return "its random state is not a generator's"
    try:
        for saved in states:
            torch.Generator().set_state(saved)   # a scratch generator: nothing of the run's is touched
    except (RuntimeError, TypeError, ValueError):
        return "its random state is not a generator's"
    return None
