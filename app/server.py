"""What this server keeps for all its visitors, held outside Streamlit's caches.

Any client can send Streamlit a `clear_cache` message, which empties st.cache_resource for everyone. The job
slots and their line, the registry of visitors and its sweeper, and the cores given to each job must outlive
that: here each is made once per process (per value of the settings it depends on) and kept in a plain dict.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_kept: dict[tuple, object] = {}


def once(key: tuple, make: Callable[[], T]) -> T:
    """The object kept under `key`, made by make() on the first call (one thread makes it; the others wait)."""
    with _lock:
        if key not in _kept:
            _kept[key] = make()
        return _kept[key]


def kept(kind: str) -> list:
    """Every object kept under a key whose first part is `kind` (e.g. all the slots, whatever their size)."""
    with _lock:
        return [value for key, value in _kept.items() if key[0] == kind]
