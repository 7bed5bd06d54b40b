"""Inside the LSTM cell: its gates over a text, the units that keep their cell longest, and where gates snap open.
numpy only.

Alignment, as in charlm.learn.neurons: the values at character t are the ones the cell computes reading t, so
the cell c and output h at t are the Neuron explorer's at t.

A window model (the 2017 preset) re-reads the last `window` characters for each new one, from a zero state. Its
gates at t are those of the last step of the pass that re-reads the window ending at t: the pass whose output
predicts the next character, and whose cell is the one the Neuron explorer shows for that model. The earlier steps
of each pass are scaffolding the model throws away; drawing them would show a hundred cells per character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from charlm.engine.arrays import ArrayLSTM
from charlm.workload import StopCheck

GATES = {"i": "input gate", "f": "forget gate", "o": "output gate"}   # the gates that open and close
MAX_CHARS = 4096   # the longest text traced: read as one stream, so its cell is exactly the Neuron explorer's


@dataclass(frozen=True)
class CellTrace:
    """One layer's cell over a text, each (T, hidden) float32: the values computed reading each character."""
    i: np.ndarray   # input gate, sigmoid: how much of the candidate enters the cell
    f: np.ndarray   # forget gate, sigmoid: how much of the cell is kept
    g: np.ndarray   # cell candidate, tanh: what would enter
    o: np.ndarray   # output gate, sigmoid: how much of tanh(c) is shown as h
    c: np.ndarray   # the cell: f * c_before + i * g
    h: np.ndarray   # the output: o * tanh(c)
    layer: int


@dataclass(frozen=True)
class Keeper:
    """A unit ranked by how much of its cell it keeps from one character to the next."""
    unit: int
    forget: float      # its forget gate's mean over the text
    half_life: float   # characters until its cell keeps half of what it held, at its typical forget gate; inf: never


@dataclass(frozen=True)
class Snap:
    """A position where a gate's layer average jumps up."""
    position: int      # the character read there
    char: str
    gate: str          # "i", "f" or "o"
    jump: float        # the layer average there minus the one before
    level: float       # the layer average there


def gates(engine: ArrayLSTM, ids, layer: int = 0, should_stop: StopCheck | None = None) -> CellTrace:
    """The gates, cell and output of one layer after each character of ids (at most MAX_CHARS)."""
    ids = np.asarray(ids, dtype=np.int64)
    layers, T = len(engine.w_hh), len(ids)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < layers:
        raise ValueError(f"the model has no layer {layer!r}; it has {layers} (0 to {layers - 1})")
    if T > MAX_CHARS:
        raise ValueError(f"the text is {T:,} characters; the cell is traced over {MAX_CHARS:,} at most")
    if T == 0:
        empty = np.zeros((0, engine.hidden_size), dtype=np.float32)
        return CellTrace(empty, empty, empty, empty, empty, empty, layer)
    W = engine.window
    # A carried model reads the text as one stream; a window model's first W windows begin at its start, so they
    # are one stream too.
    found, h, c = engine.trace_gates(ids[None, :W] if W else ids[None], should_stop=should_stop)
    found, h, c = found[0], h[0], c[0]                      # (T, layers, 4, H), (T, layers, H)
    if W and T > W:
        # Each later character: the last step of re-reading the window that ends there (row j ends at W + j).
        windows = np.lib.stride_tricks.sliding_window_view(ids, W)[1:]
        last, last_h, last_c = engine.trace_gates(windows, last_only=True, should_stop=should_stop)
        found = np.concatenate([found, last[:, 0]])
        h, c = np.concatenate([h, last_h[:, 0]]), np.concatenate([c, last_c[:, 0]])
    i, f, g, o = (found[:, layer, k] for k in range(4))
    return CellTrace(i=i, f=f, g=g, o=o, c=c[:, layer], h=h[:, layer], layer=layer)


def keepers(trace: CellTrace, top: int | None = None) -> list[Keeper]:
    """Units ranked by their mean forget gate, nearest 1 first (ties: the lower unit first); `top` of them."""
    mean = trace.f.mean(axis=0, dtype=np.float64)
    with np.errstate(divide="ignore"):
        # The typical forget gate is the geometric mean: a cell kept t steps holds the product of t of them.
        logs = np.log(trace.f.astype(np.float64)).mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:top]
    return [Keeper(int(u), float(mean[u]), float(math.log(0.5) / logs[u]) if logs[u] < 0 else math.inf)
            for u in order]


def snaps(trace: CellTrace, text: str, gate: str = "i", top: int = 10) -> list[Snap]:
    """The `top` positions where the gate's layer average rises most from the character before, largest first
    (ties: the earlier first); only rises. text is the text traced, one character per step."""
    if gate not in GATES:
        raise ValueError(f"gate must be one of {', '.join(GATES)} ({', '.join(GATES.values())}); got {gate!r}")
    values = getattr(trace, gate)
    if len(text) != len(values):
        raise ValueError(f"the text has {len(text)} characters but the trace {len(values)} steps")
    average = values.mean(axis=1, dtype=np.float64)
    jumps = np.diff(average)                                    # jumps[t - 1]: from t - 1 to t
    order = [t for t in np.argsort(-jumps, kind="stable")[:top] if jumps[t] > 0]
    return [Snap(int(t) + 1, text[t + 1], gate, float(jumps[t]), float(average[t + 1])) for t in order]
