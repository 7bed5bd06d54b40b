"""One way to write a file: to a temporary beside it, then a rename, so no reader ever sees half a file."""

from __future__ import annotations

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

_SUFFIX = ".tmp"   # a temporary is NAME.<random>.tmp beside the file NAME it becomes


def _temporary(path: Path) -> tuple[int, str]:
    """A new empty temporary beside path, named for it: (open descriptor, its path)."""
    return tempfile.mkstemp(prefix=path.name + ".", suffix=_SUFFIX, dir=path.parent)


@contextmanager
def writing_atomically(path: str | Path) -> Iterator[BinaryIO]:
    """A file to write a chunk at a time, in place under path's name only once it is whole.

    For data too large to hold in memory once more as bytes; a crash (or an exception inside the
    block) leaves the old file, or none, and removes the temporary.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; these are ordinary files to share
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through `NAME.<random>.tmp` beside it; a crash leaves the old file (or none)."""
    with writing_atomically(path) as f:
        f.write(data)
    return Path(path)


def check_writable(path: str | Path) -> None:
    """Raise OSError now if a file cannot be written at path (made the way the write itself would be)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named like a real write's temporary, so a process killed right here leaves nothing a sweep keeps.
    fd, probe = _temporary(path)
    os.close(fd)
    os.unlink(probe)


def sweep_stale(path: str | Path) -> None:
    """Remove the temporaries a process killed while writing path left beside it."""
    path = Path(path)
    for stale in path.parent.glob(glob.escape(path.name) + ".*" + _SUFFIX):
        stale.unlink(missing_ok=True)
