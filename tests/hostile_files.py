"""Hostile model files, built on the fly the way an attacker would: torch.save's archive layout, by hand.

Each builder returns the file's bytes. A torch archive is a zip of `archive/data.pkl` (the pickled
payload, tensors as references to storages) plus one `archive/data/<key>` entry per storage; writing it
here lets a test declare any storage size, stride or compression, which torch.save itself never would.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import torch

from charlm.modelfile import checkpoint as ckpt_io

ZIP_BOMB_BYTES = 1_500_000_000     # what the bomb's one compressed entry inflates to (zeros)
MARKDOWN_PRESET = "[click me](https://example.com/phish) ![pixel](https://example.com/pixel.png)"


class _Storage:
    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles as torch.save pickles a tensor: _rebuild_tensor_v2 over a storage, with any size and stride."""

    def __init__(self, storage: _Storage, shape: tuple, stride: tuple, offset: int = 0):
        self.storage, self.shape, self.stride, self.offset = storage, shape, stride, offset

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.shape, self.stride, False, OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def torch_archive(payload: dict, storages: dict[str, bytes], deflate_everything: bool = False) -> bytes:
    """A torch.save-style zip of `payload` and the storages' bytes (stored, as torch writes, unless deflated)."""
    pickled = io.BytesIO()
    _Pickler(pickled, protocol=2).dump(payload)
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate_everything else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", b"little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return out.getvalue()


def _zeros_entry_archive(payload: dict, storages: dict[str, bytes], size: int) -> bytes:
    out = io.BytesIO()
    pickled = io.BytesIO()
    _Pickler(pickled, protocol=2).dump(payload)
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", pickled.getvalue())
        archive.writestr("archive/byteorder", b"little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
        info = zipfile.ZipInfo("archive/data/bomb")
        info.compress_type = zipfile.ZIP_DEFLATED
        chunk = bytes(1 << 24)
        with archive.open(info, "w", force_zip64=True) as entry:
            for _ in range(size // len(chunk)):
                entry.write(chunk)
    return out.getvalue()


def _real_parts(ckpt: ckpt_io.Checkpoint) -> tuple[dict, dict[str, bytes]]:
    """A real checkpoint's payload with its weights as storage references, and the storages' bytes."""
    state, storages = OrderedDict(), {}
    for i, (name, value) in enumerate(ckpt.state_dict.items()):
        array = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        storages[str(i)] = array.tobytes()
        stride = tuple(math.prod(array.shape[j + 1:]) for j in range(array.ndim))
        state[name] = _Tensor(_Storage(str(i), array.size), array.shape, stride)
    payload = {"format": ckpt_io.FORMAT, "version": 1, "model_config": dict(ckpt.model_config),
               "vocab": list(ckpt.vocab), "state_dict": state, "preset": ckpt.preset, "history": [],
               "info": {"corpus": "cat.txt"}, "best_val_loss": ckpt.best_val_loss, "window": None}
    return payload, storages


def zip_bomb(ckpt: ckpt_io.Checkpoint) -> bytes:
    """A working model plus a 'notes' tensor of 1.5 GB of zeros, DEFLATE-compressed to under 2 MB (~1000:1)."""
    payload, storages = _real_parts(ckpt)
    numel = ZIP_BOMB_BYTES // 4
    payload["info"] = {"corpus": "cat.txt", "notes": _Tensor(_Storage("bomb", numel), (numel,), (1,))}
    return _zeros_entry_archive(payload, storages, ZIP_BOMB_BYTES)


def stride_zero_giant(ckpt: ckpt_io.Checkpoint, embed_dim: int = 1_000_000) -> bytes:
    """A model whose config asks for a giant embedding, its tensors one float each, expanded by stride 0."""
    payload, storages = _real_parts(ckpt)
    cfg = {**ckpt.model_config, "embed_dim": embed_dim}
    vocab, hidden = cfg["vocab_size"], cfg["hidden_size"]
    one = _Storage("one", 1)
    storages = {"one": np.zeros(1, np.float32).tobytes()}
    shapes = {"embed.weight": (vocab, embed_dim), "lstm.weight_ih_l0": (4 * hidden, embed_dim),
              "lstm.weight_hh_l0": (4 * hidden, hidden), "lstm.bias_ih_l0": (4 * hidden,),
              "lstm.bias_hh_l0": (4 * hidden,), "head.weight": (vocab, hidden), "head.bias": (vocab,)}
    payload["state_dict"] = OrderedDict((k, _Tensor(one, s, (0,) * len(s))) for k, s in shapes.items())
    payload["model_config"] = cfg
    return torch_archive(payload, storages)


def stride_zero_within_caps(ckpt: ckpt_io.Checkpoint) -> bytes:
    """The right shapes for its (small) config, but every tensor is one float repeated by stride 0."""
    payload, _ = _real_parts(ckpt)
    one = _Storage("one", 1)
    payload["state_dict"] = OrderedDict(
        (k, _Tensor(one, tuple(np.shape(v)), (0,) * np.ndim(v))) for k, v in ckpt.state_dict.items())
    return torch_archive(payload, {"one": np.zeros(1, np.float32).tobytes()})


def with_fields(ckpt: ckpt_io.Checkpoint, **fields) -> bytes:
    """A real checkpoint, saved by charlm itself, with some fields replaced (model_config keys via config=)."""
    from dataclasses import replace
    config = fields.pop("config", None)
    if config:
        fields["model_config"] = {**ckpt.model_config, **config}
    return ckpt_io.to_bytes(replace(ckpt, **fields))


def nan_weights(ckpt: ckpt_io.Checkpoint) -> bytes:
    state = {k: torch.as_tensor(v).clone() for k, v in ckpt.state_dict.items()}
    state["head.weight"][0, 0] = float("nan")
    return with_fields(ckpt, state_dict=state)
