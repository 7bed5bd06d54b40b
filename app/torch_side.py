"""Whether PyTorch is here: only training and the Corpus page's time estimate need it.

The app writes and explains with numpy alone (the reading half of charlm), so a server without torch still
serves Generate, Corpus and every Learn part. The Train page and the estimate ask here before they import
anything torch-side, and say in one line how to install it when it is missing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util

INSTALL = "`pip install torch==2.13.0` (or `pip install -r requirements.txt`)"
NEEDED = f"Training needs PyTorch, which is not installed on this server. To train here, install it: {INSTALL}."
ESTIMATE_NEEDS = f"The rough training time is measured with PyTorch, which is not installed on this server: {INSTALL}."


def installed() -> bool:
    """Whether torch is installed here, without loading it (a run in a worker process loads it there)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):   # a finder that refuses it, or a broken installation's missing spec
        return False


@functools.cache
def available() -> bool:
    """Whether torch imports here; tried once per process (importing it takes seconds, a failure is final).

    A page that calls this loads torch when it is installed: call it only where torch is about to be used."""
    try:
        importlib.import_module("torch")
    except (ImportError, OSError):   # not installed, or a build whose libraries do not load here
        return False
    return True
