"""Reading model files safely, numpy only: the file's table first, then its config, then each tensor, then the data.

Two formats are read: safetensors (what charlm writes) and the zip archive of torch.save (what earlier
versions wrote). Neither can run code here: the safetensors header is JSON, and a torch archive's pickle
is read by an unpickler that knows four names and builds nothing but plain data and tensor references.
Nothing is inflated and no tensor is allocated before the declared shapes have been checked against
the model's config, and the config against the caps (config.Limits). One error type, ModelFileError,
with one plain message, covers every way a file can be wrong.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save as safetensors_bytes

from .config import Limits, ModelConfig

FORMAT = "charlm-checkpoint"
VERSION = 2                       # 1: torch.save archives; 2: safetensors model files
MAX_FILE_BYTES = 2 << 30          # no model within any cap comes near this
MAX_TABLE_BYTES = 2 << 20         # a pickle or JSON header: config, vocabulary, history (a long run's is ~100 KB)
MAX_TEXT = 200                    # characters kept of a text field (preset, corpus name, device)
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
                      "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
_WEIGHT_DTYPES = (np.float32, np.float16)


class ModelFileError(ValueError):
    """A file that cannot be used as a charlm model; the message says why, in one line."""


@dataclass
class TensorRef:
    """A tensor the file declares, not yet read: where its bytes are and what they should hold."""
    dtype: np.dtype
    shape: tuple[int, ...]
    buffer: memoryview            # exactly this tensor's bytes (a view into the file's data: no copy)

    def read(self) -> np.ndarray:
        return np.frombuffer(self.buffer, dtype=self.dtype).reshape(self.shape).copy()


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
    tensors = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()}
    return safetensors_bytes(tensors, metadata={"charlm": json.dumps(payload, ensure_ascii=False)})


def read(source: str | Path | bytes, limits: Limits = Limits(), name: str | None = None) -> ModelFile:
    """Check and read a model file from a path or bytes; raises ModelFileError with a message for people."""
    data, name = _bytes(source, name)
    if data[:4] == b"PK\x03\x04":
        payload, tensors = _torch_archive_table(data, name)
    elif len(data) >= 10 and data[8:9] == b"{":
        payload, tensors = _safetensors_table(data, name)
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


# --- safetensors: an 8-byte length, a JSON table, then the raw tensor bytes -------------------------------

def _safetensors_table(data: memoryview, name: str) -> tuple[dict, dict[str, TensorRef]]:
    (length,) = struct.unpack("<Q", data[:8])
    if length > MAX_TABLE_BYTES or 8 + length > len(data):
        raise ModelFileError(f"{name} declares a header of {length:,} bytes; it is damaged or not a charlm model")
    try:
        header = json.loads(bytes(data[8:8 + length]))
        meta = header.pop("__metadata__", {}) if isinstance(header, dict) else None
        payload = json.loads(meta["charlm"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ModelFileError(f"{name} is a safetensors file but not a charlm model (no charlm metadata)") from None
    body = data[8 + length:]
    tensors, end = {}, 0
    for key, entry in sorted(header.items(), key=lambda item: _offsets(item[1])[0]):
        begin, stop = _offsets(entry)
        dtype = SAFETENSORS_DTYPES.get(entry.get("dtype"))
        shape = _shape(entry.get("shape"))
        if dtype is None or shape is None:
            raise ModelFileError(f"{name}: tensor {str(key)[:60]!r} has an unknown type or shape")
        if begin != end or stop > len(body) or stop - begin != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ModelFileError(f"{name}: tensor {str(key)[:60]!r} does not lie where its header says; "
                                 "the file is damaged")
        tensors[key] = TensorRef(np.dtype(dtype), shape, body[begin:stop])
        end = stop
    return payload, tensors


def _offsets(entry) -> tuple[int, int]:
    try:
        begin, stop = entry["data_offsets"]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (begin, stop)) and 0 <= begin <= stop:
            return begin, stop
    except (TypeError, KeyError, ValueError):
        pass
    raise ModelFileError("a tensor's data offsets are damaged")


def _shape(value) -> tuple[int, ...] | None:
    if not isinstance(value, list) or len(value) > 4:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in value):
        return None
    return tuple(value)


# --- torch.save archives: a zip of a pickle plus one entry per storage --------------------------------------

@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    dtype: np.dtype
    buffer: memoryview


_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
                   "BoolStorage": np.bool_}


def _tensor(storage, offset, size, stride, *_ignored) -> TensorRef:
    """torch._utils._rebuild_tensor_v2, for the table only: a reference to a contiguous run of a storage."""
    shape = _shape(list(size)) if isinstance(size, (tuple, list)) else None
    if not isinstance(storage, _StorageRef) or shape is None or isinstance(offset, bool) \
            or not isinstance(offset, int) or offset < 0:
        raise ModelFileError("a tensor in the archive is described in a way charlm never writes")
    contiguous = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
    if tuple(stride) != contiguous and math.prod(shape) > 1:
        raise ModelFileError("a tensor in the archive repeats its data (a stride other than a plain array's); "
                             "charlm never writes such files")
    itemsize = storage.dtype.itemsize
    begin, stop = offset * itemsize, (offset + math.prod(shape)) * itemsize
    if stop > len(storage.buffer):
        raise ModelFileError("a tensor in the archive is larger than the data stored for it")
    return TensorRef(storage.dtype, shape, storage.buffer[begin:stop])


class _TableUnpickler(pickle.Unpickler):
    """Reads torch.save's pickle as plain data: only these names exist, and nothing they build runs code."""

    def __init__(self, pickled: bytes, storages: dict[str, memoryview]):
        super().__init__(io.BytesIO(pickled))
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise ModelFileError(f"the file holds a Python object ({module[:40]}.{name[:40]}) that a safe loader "
                             "refuses (it could run code); only files written by charlm can be opened")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise ModelFileError("the archive refers to its data in a way charlm never writes")
        buffer = self.storages.get(pid[2])
        if buffer is None or len(buffer) != pid[4] * pid[1].dtype.itemsize:
            raise ModelFileError("the archive's data does not match what its table declares")
        return _StorageRef(pid[1].dtype, buffer)


def _torch_archive_table(data: memoryview, name: str) -> tuple[dict, dict[str, TensorRef]]:
    if _central_directory_size(data) > MAX_TABLE_BYTES:
        raise ModelFileError(f"{name} declares more archive entries than any charlm model has; it was not opened")
    try:
        # BytesIO over a bytes object shares its buffer: no copy of the file.
        archive = zipfile.ZipFile(io.BytesIO(data.obj if isinstance(data.obj, bytes) else bytes(data)))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ModelFileError(f"{name} is not a complete PyTorch archive (is it truncated?)") from None
    # torch.save stores entries uncompressed; a compressed one could inflate far beyond the file's size.
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED or entry.file_size != entry.compress_size:
            raise ModelFileError(f"{name} holds compressed data; charlm never writes that (a small compressed "
                                 "file can expand to gigabytes), so it was not opened")
    pickles = [e for e in entries if e.filename.endswith("/data.pkl") and e.filename.count("/") == 1]
    if len(pickles) != 1 or pickles[0].file_size > MAX_TABLE_BYTES:
        raise ModelFileError(f"{name} is a zip file but not a charlm model archive")
    root = pickles[0].filename[: -len("data.pkl")]
    storages = {}
    for entry in entries:
        if entry.filename.startswith(root + "data/"):
            start = _entry_data_offset(data, entry)
            storages[entry.filename[len(root + "data/"):]] = data[start:start + entry.file_size]
    try:
        byteorder = archive.read(root + "byteorder") if root + "byteorder" in archive.namelist() else b"little"
        if byteorder != b"little":
            raise ModelFileError(f"{name} was written on a big-endian machine; charlm reads little-endian files")
        payload = _TableUnpickler(archive.read(pickles[0]), storages).load()
    except ModelFileError as err:
        raise ModelFileError(f"{name}: {err}") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError,
            KeyError, RecursionError, zipfile.BadZipFile, struct.error):
        raise ModelFileError(f"{name} could not be read as a charlm model (a damaged archive)") from None
    if not isinstance(payload, dict):
        raise ModelFileError(f"{name} is a PyTorch file but not a charlm model")
    state = payload.get("state_dict")
    tensors = dict(state) if isinstance(state, dict) else {}
    payload = {k: v for k, v in payload.items() if k != "state_dict"}
    return payload, tensors


def _central_directory_size(data: memoryview) -> int:
    """The size of the zip's table as its end records declare it (zipfile would read all of it)."""
    tail = bytes(data[-(65_536 + 22):])
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise ModelFileError("the archive has no table of contents (is it truncated?)")
    (size,) = struct.unpack("<L", tail[at + 12:at + 16])
    locator = tail[at - 20:at] if at >= 20 else b""
    if locator[:4] == b"PK\x06\x07":   # zip64: the real size is in another record, wherever the locator says
        (offset,) = struct.unpack("<Q", locator[8:16])
        record = bytes(data[offset:offset + 56]) if offset < len(data) else b""
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            raise ModelFileError("the archive's table of contents is damaged")
        size = max(size, struct.unpack("<Q", record[40:48])[0])
    return size


def _entry_data_offset(data: memoryview, entry: zipfile.ZipInfo) -> int:
    """Where a stored entry's bytes begin: after its local header (read here, not trusted from elsewhere)."""
    at = entry.header_offset
    header = bytes(data[at:at + 30])
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ModelFileError("the archive's table points outside the file; it is damaged")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = at + 30 + name_len + extra_len
    if start + entry.file_size > len(data):
        raise ModelFileError("the archive is shorter than its table says; it is truncated")
    return start


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
