"""Checkpoints: a state_dict plus plain data; model files written atomically, loaded through the checked reader.

No torch here: weights are numpy arrays once loaded (torch tensors only while a trainer holds them), and a
resume file's tensors come back as numpy arrays, which charlm.train.resume turns into tensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from charlm import files
from charlm.modelfile import format as modelfile
from charlm.config import Limits, ModelConfig, TrainConfig
from charlm.text.corpus import Vocab

FORMAT = modelfile.FORMAT
VERSION = 1                        # of resume files (torch archives); model files are modelfile.VERSION
CheckpointError = modelfile.ModelFileError   # one error type for every way a model file can be wrong


@dataclass
class Checkpoint:
    model_config: dict                 # ModelConfig fields
    vocab: list[str]                   # index -> character
    state_dict: dict                   # the model's weights: torch tensors, or float32 numpy arrays when loaded
    preset: str = "custom"
    train_config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)   # one row per evaluation
    progress: dict = field(default_factory=dict)        # step, chars_seen, elapsed_s, epoch position...
    best_val_loss: float | None = None
    best_step: int | None = None       # the step of the evaluation the weights are from (None: files before it)
    window: int | None = None          # generation re-reads this many characters (2017 preset)
    optimizer: dict | None = None      # for resume
    rng: dict | None = None            # generator states (tensors) for exact resume
    carry: list | None = None          # the training streams' LSTM state [h, c] at the resume point
    average: dict | None = None        # for resume: the moving average of the weights (TrainConfig.average_from)
    best_weights: dict | None = None   # for resume: the model file's weights (the best evaluation's)
    info: dict = field(default_factory=dict)            # corpus name, device, notes

    def numpy_weights(self) -> dict:
        """The weights as float32 numpy arrays, whether loaded (numpy already) or a trainer's (torch tensors)."""
        return {k: _numpy(v) for k, v in self.state_dict.items()}

    def get_vocab(self) -> Vocab:
        return Vocab.from_list(self.vocab)

    def model_cfg(self) -> ModelConfig:
        """The model's shape as a checked ModelConfig (ValueError, said for people, if the file's is out of range)."""
        return ModelConfig.from_dict(self.model_config)

    def train_cfg(self) -> TrainConfig:
        """The recipe the model was trained with as a checked TrainConfig; a file from before rereads_window was
        recorded says it through its window (only the 2017 design re-reads one)."""
        return TrainConfig.from_dict({"rereads_window": self.window is not None, **self.train_config})

    def best_evaluation(self) -> int | None:
        """The index in history of the evaluation the weights are from: the one at best_step, or (a file written
        before best_step was, whose history ended at its best) the last one with the best loss; None: no history."""
        steps = [row.get("step") for row in self.history]
        if self.best_step is not None and self.best_step in steps:
            return len(steps) - 1 - steps[::-1].index(self.best_step)
        best = [i for i, row in enumerate(self.history) if row.get("val_loss") == self.best_val_loss]
        return best[-1] if best else (len(steps) - 1 if steps else None)

    def num_parameters(self) -> int:
        """From the config, which load() checked every weight against: nothing is built to count them."""
        return self.model_cfg().num_parameters()


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write a model file atomically. A resume file (with the optimizer's state) is charlm.train.resume's."""
    return files.write_atomically(path, to_bytes(ckpt))


def to_bytes(ckpt: Checkpoint) -> bytes:
    """The model as one file's bytes (for save, and for a download button): safetensors plus JSON, which
    cannot carry code and numpy reads without torch. Resume state, if any, is left out."""
    meta = {k: getattr(ckpt, k) for k in META_FIELDS}
    meta["history"] = fitted_history(ckpt.history)
    return modelfile.to_bytes(ckpt.model_config, ckpt.vocab, ckpt.numpy_weights(), meta)


META_FIELDS = ("preset", "train_config", "history", "progress", "best_val_loss", "best_step", "window", "info")
MAX_HISTORY_BYTES = 1 << 20   # of the 2 MiB a file's table may take (modelfile.tables): ~2,000 rows with samples


def fitted_history(history: list[dict], budget: int = MAX_HISTORY_BYTES) -> list[dict]:
    """The history whole when it fits the budget (as JSON); else every other sample dropped (the first and last
    kept) until it fits, then every other row: a very long run's file stays readable by the checked reader."""
    rows = [dict(row) for row in history]
    while len(rows) > 2 and len(json.dumps(rows, ensure_ascii=False)) > budget:
        sampled = [i for i, row in enumerate(rows) if row.get("sample")][1:-1]
        if sampled:
            for i in sampled[::2]:
                rows[i]["sample"] = None
        else:
            rows = rows[:-1:2] + rows[-1:]
    return rows


def _numpy(value):
    if hasattr(value, "detach"):          # a torch tensor: the trainer's weights
        value = value.detach().float().cpu().numpy()
    return value


def load(source: str | Path | bytes, limits: Limits = Limits(), for_resume: bool = False) -> Checkpoint:
    """Check and load a checkpoint from a path or bytes; nothing in the file can run code or exceed `limits`.

    The optimizer, random and carried state are read only `for_resume` (the trainer); a model to write with
    never allocates them.
    """
    read = modelfile.read(source, limits)
    meta = read.meta
    resume = {"optimizer": None, "rng": None, "carry": None, "average": None, "best_weights": None}
    if for_resume:
        budget = [len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size]
        resume = {k: _tensors(meta.get(k), budget) for k in resume}
    try:
        return Checkpoint(model_config=read.config.to_dict(), vocab=read.vocab, state_dict=read.weights,
                          preset=meta["preset"], train_config=_plain(meta.get("train_config")),
                          history=meta["history"], progress=_plain(meta.get("progress")),
                          best_val_loss=meta["best_val_loss"], best_step=_step(meta.get("best_step")),
                          window=read.window, info=meta["info"], **resume)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the checkpoint is damaged ({err})") from None


def _step(value) -> int | None:
    """A step count from a file, or None when it is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def _plain(value) -> dict:
    """A dict of plain data from a file, with any tensor references left out."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if not isinstance(v, modelfile.TensorRef)}


def _tensors(value, budget: list[int]):
    """A file's nested resume state with each tensor reference read as a numpy array.

    Tensors may share a storage, so the bytes read are counted against the file's size: a file cannot make
    the reader allocate more than it holds.
    """
    if isinstance(value, modelfile.TensorRef):
        budget[0] -= len(value.buffer)
        if budget[0] < 0:
            raise CheckpointError("the checkpoint's resume state refers to more data than the file holds")
        return value.read()
    if isinstance(value, dict):
        return type(value)((k, _tensors(v, budget)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors(v, budget) for v in value)
    return value
