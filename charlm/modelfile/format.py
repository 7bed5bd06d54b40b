"""Model files, numpy only: written as safetensors plus JSON; read checked, table, config, tensors, then data.

Two formats are read: safetensors (what charlm writes) and torch.save's zip archive (what earlier
versions wrote); charlm.modelfile.tables reads either's table without its data. No tensor is allocated before the
declared shapes have been checked against the model's config, and the config against the caps
(config.Limits). One error type, ModelFileError, with one plain message, covers every way a file can be
wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from charlm.modelfile import tables
from charlm.config import Limits, ModelConfig
from charlm.modelfile.tables import ModelFileError, TensorRef  # noqa: F401  (part of this module's interface)

FORMAT = "charlm-checkpoint"
VERSION = 2                       # 1: torch.save archives; 2: safetensors model files
MAX_FILE_BYTES = 2 << 30          # no model within any cap comes near this
MAX_TEXT = 200                    # characters kept of a text field (preset, corpus name, device)
_WEIGHT_DTYPES = (np.float32, np.float16)


@dataclass
class ModelFile:
    """What a checked file holds: its config and weights as float32 arrays, plus plain data."""
    config: ModelConfig
    vocab: list[str]
    weights: dict[str, np.ndarray]          # CharLSTM state_dict names -> float32 arrays
    meta: dict = field(default_factory=dict)   # everything else (plain data; tensors elsewhere as TensorRef)

    @property
    def window(self) -> int | None:
        return self.meta.get("window")


def to_bytes(config: dict, vocab: list[str], weights: dict[str, np.ndarray], meta: dict) -> bytes:
    """A model file: the weights as safetensors, everything else (plain data) as JSON in its metadata."""
    payload = {"format": FORMAT, "version": VERSION, "model_config": config, "vocab": list(vocab), **meta}
    from safetensors.numpy import save as safetensors_bytes   # here: reading (the app's first view) needs none of it

    tensors = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()}
    return safetensors_bytes(tensors, metadata={"charlm": json.dumps(payload, ensure_ascii=False)})


def read(source: str | Path | bytes, limits: Limits = Limits(), name: str | None = None) -> ModelFile:
    """Check and read a model file from a path or bytes; raises ModelFileError with a message for people."""
    data, name = _bytes(source, name)
    if data[:4] == b"PK\x03\x04":
        payload, tensors = tables.torch_archive_table(data, name)
    elif len(data) >= 10 and data[8:9] == b"{":
        payload, tensors = tables.safetensors_table(data, name)
    else:
        raise ModelFileError(f"{name} is not a charlm model file (neither safetensors nor a PyTorch archive); "
                             "is it truncated, or from another program?")
    try:
        return _checked(payload, tensors, limits)
    except (ValueError, TypeError, KeyError) as err:   # ModelFileError too: say which file
        raise ModelFileError(f"{name} is not a usable charlm model: {_one_line(err)}") from None


def _bytes(source, name: str | None) -> tuple[memoryview, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = memoryview(source).cast("B")
        name = name or "The uploaded file"
    else:
        path = Path(source)
        name = name or str(path)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ModelFileError(f"{name} is {size:,} bytes, larger than any charlm model")
            data = memoryview(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ModelFileError(f"no model file at {path}") from None
        except PermissionError:
            raise ModelFileError(f"{path} cannot be read (permission denied)") from None
    if not len(data):
        raise ModelFileError(f"{name} is empty, not a model file")
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"{name} is {len(data):,} bytes, larger than any charlm model")
    return data, name


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


# --- the checks every format goes through ---------------------------------------------------------------

def _checked(payload: dict, tensors: dict[str, TensorRef], limits: Limits) -> ModelFile:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError("it is not a charlm model (its format field is missing)")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError("its format version is damaged")
    if version > VERSION:
        raise ModelFileError(f"it was written by a newer charlm (format {version}); upgrade charlm")
    config = ModelConfig.from_dict(payload.get("model_config"))
    window = payload.get("window")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise ValueError("its window is not a positive whole number")
    over = limits.problems(config, window)
    if over:
        raise ModelFileError(f"this model is larger than allowed here: {'; '.join(over)}")
    vocab = payload.get("vocab")
    if not (isinstance(vocab, list) and len(vocab) == config.vocab_size
            and all(isinstance(c, str) and len(c) == 1 for c in vocab) and len(set(vocab)) == len(vocab)):
        raise ModelFileError("its vocabulary is damaged or does not match its model")
    expected = config.weight_shapes()
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ModelFileError(f"its weights do not match its configuration (missing {missing[:3]}, "
                             f"unexpected {[str(k)[:40] for k in extra[:3]]})")
    weights = {}
    for key, shape in expected.items():
        ref = tensors[key]
        if not isinstance(ref, TensorRef) or ref.shape != shape or ref.dtype not in _WEIGHT_DTYPES:
            raise ModelFileError(f"its weight {key} has the wrong shape or type for its configuration")
        array = ref.read().astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise ModelFileError(f"its weight {key} holds NaN or infinite numbers; the model cannot write")
        weights[key] = array
    return ModelFile(config, list(vocab), weights, _plain_meta(payload, window))


def _plain_meta(payload: dict, window: int | None) -> dict:
    """The file's other fields, with its text fields made short plain strings (they are shown to people)."""
    meta = {k: v for k, v in payload.items() if k not in ("model_config", "vocab", "format", "version")}
    meta["window"] = window
    meta["preset"] = _text(payload.get("preset"), "custom")
    info = payload.get("info")
    meta["info"] = {str(k)[:40]: _plain(v) for k, v in info.items() if _plain(v) is not None} \
        if isinstance(info, dict) else {}
    best = payload.get("best_val_loss")
    meta["best_val_loss"] = float(best) if isinstance(best, (int, float)) and not isinstance(best, bool) \
        and math.isfinite(best) else None
    history = payload.get("history")
    meta["history"] = [row for row in history if isinstance(row, dict)] if isinstance(history, list) else []
    return meta


def _plain(value) -> str | int | float | None:
    """A finite number as it is, text as _text makes it; anything else is dropped (None)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if math.isfinite(value) else None
    return _text(value, "") if isinstance(value, str) else None


def _text(value, default: str) -> str:
    """One line of printable text, at most MAX_TEXT characters: how a file's words reach a page."""
    if not isinstance(value, str):
        return default
    text = "".join(ch if ch.isprintable() else " " for ch in value).strip()
    return text[:MAX_TEXT] or default
