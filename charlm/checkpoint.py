"""Checkpoints: one file holding a state_dict plus plain data, written atomically, loaded safely."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import arrays
from .corpus import Vocab
from .model import CharLSTM, ModelConfig

FORMAT = "charlm-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be used as a charlm checkpoint; the message says why."""


@dataclass
class Checkpoint:
    model_config: dict                 # ModelConfig fields
    vocab: list[str]                   # index -> character
    state_dict: dict                   # the model's weights (on the CPU when loaded)
    preset: str = "custom"
    train_config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)   # one row per evaluation
    progress: dict = field(default_factory=dict)        # step, chars_seen, elapsed_s, epoch position...
    best_val_loss: float | None = None
    window: int | None = None          # generation re-reads this many characters (2017 preset)
    optimizer: dict | None = None      # for resume
    rng: dict | None = None            # generator states (tensors) for exact resume
    carry: list | None = None          # the training streams' LSTM state [h, c] at the resume point
    info: dict = field(default_factory=dict)            # corpus name, device, notes

    def build_model(self, device: torch.device | str = "cpu") -> CharLSTM:
        model = CharLSTM(ModelConfig.from_dict(self.model_config))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as err:
            raise CheckpointError(f"the checkpoint's weights do not fit its own configuration ({err})") from None
        model.to(device).eval()
        if torch.device(device).type == "cuda":
            model.lstm.flatten_parameters()
        return model

    def get_vocab(self) -> Vocab:
        return Vocab.from_list(self.vocab)


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write to a temporary file beside `path`, then rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **{k: getattr(ckpt, k) for k in Checkpoint.__dataclass_fields__}}
    payload["state_dict"] = {k: v.detach().cpu() for k, v in ckpt.state_dict.items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; a checkpoint is an ordinary file to share
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_bytes(ckpt: Checkpoint) -> bytes:
    """The checkpoint as one file's bytes, for a download button."""
    with tempfile.TemporaryDirectory() as tmp:
        return save(ckpt, Path(tmp) / "model.pt").read_bytes()


def load(source: str | Path | bytes) -> Checkpoint:
    """Load from a path or raw bytes with weights_only=True: nothing in the file can run code."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        name = "the uploaded file"
    else:
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint file at {path}")
        data = path.read_bytes()
        name = str(path)
    if not data:
        raise CheckpointError(f"{name} is empty, not a checkpoint")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError(f"{name} is not a charlm checkpoint (not a PyTorch file; is it truncated?)")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{name} holds Python objects a safe loader refuses (it could run code); "
                              "it was not loaded. Only checkpoints written by charlm can be opened.") from None
    except Exception as err:  # truncated archives and foreign formats fail in many ways
        raise CheckpointError(f"{name} could not be read as a checkpoint ({type(err).__name__}); "
                              "it may be truncated or from another program") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a PyTorch file but not a charlm checkpoint")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{name} was written by a newer charlm (format {payload['version']}); upgrade charlm")
    try:
        ckpt = Checkpoint(**{k: payload[k] for k in Checkpoint.__dataclass_fields__ if k in payload})
        if not (isinstance(ckpt.model_config, dict) and isinstance(ckpt.vocab, list)
                and isinstance(ckpt.state_dict, dict)
                and all(isinstance(v, torch.Tensor) for v in ckpt.state_dict.values())):
            raise ValueError("its parts have the wrong types")
        if ckpt.window is not None and not (isinstance(ckpt.window, int) and ckpt.window > 0):
            raise ValueError("its window is not a positive number")
        ModelConfig.from_dict(ckpt.model_config)
        vocab = ckpt.get_vocab()
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{name} is a damaged charlm checkpoint ({err})") from None
    if len(vocab) != ckpt.model_config.get("vocab_size"):
        raise CheckpointError(f"{name} is damaged: its vocabulary does not match its model")
    return ckpt


def export_arrays(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write the checkpoint's model as a .npz of plain arrays (charlm.arrays loads it without torch)."""
    if ckpt.window:
        raise CheckpointError("a window model (the 2017 preset) re-reads its window through torch at every step; "
                              "only models that carry their state can be exported")
    weights = {name: value.detach().float().cpu().numpy() for name, value in ckpt.state_dict.items()}
    info = {"preset": ckpt.preset, "best_val_loss": ckpt.best_val_loss, "corpus": ckpt.info.get("corpus")}
    return arrays.save_npz(path, ckpt.model_config, list(ckpt.vocab), weights, info)
