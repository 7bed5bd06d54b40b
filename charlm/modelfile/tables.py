"""A model file's table, read without reading its data: a safetensors header, or a torch.save archive.

Each reader returns the file's plain data and a TensorRef per tensor (its type, shape and the bytes it
would come from), having checked that every declared size fits inside the file. Nothing is inflated:
a torch archive with a compressed entry is refused, since a small file could expand to gigabytes. The
pickle inside a torch archive is read by an unpickler that knows four names and builds only plain data
and tensor references, so no code in a file can run.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from charlm.errors import UserError

MAX_TABLE_BYTES = 2 << 20         # a pickle or JSON header: config, vocabulary, history (a long run's is ~100 KB)
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
                      "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


class ModelFileError(UserError):
    """A file that cannot be used as a charlm model; the message says why, in one line."""


@dataclass
class TensorRef:
    """A tensor the file declares, not yet read: where its bytes are and what they should hold."""
    dtype: np.dtype
    shape: tuple[int, ...]
    buffer: memoryview            # exactly this tensor's bytes (a view into the file's data: no copy)

    def read(self) -> np.ndarray:
        return np.frombuffer(self.buffer, dtype=self.dtype).reshape(self.shape).copy()


# --- safetensors: an 8-byte length, a JSON table, then the raw tensor bytes -------------------------------

def safetensors_table(data: memoryview, name: str) -> tuple[dict, dict[str, TensorRef]]:
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


def torch_archive_table(data: memoryview, name: str) -> tuple[dict, dict[str, TensorRef]]:
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
