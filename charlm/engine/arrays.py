"""The CPU inference engine: the LSTM as numpy arrays, stepped, read, traced, or with units held. No torch here.

Everything that writes on the CPU runs on this (Write, Step mode, beam search, scoring, the CLI, the
app's first sample): at batch 1 numpy's calls cost about a microsecond each against torch's 5-10, which
halves the time per character (BENCHMARKS.md). The app writes its first sample with it from the shipped
model file (read by charlm.modelfile.format) while torch is still importing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charlm.workload import StopCheck, check

ArrayState = list[tuple[np.ndarray, np.ndarray]]   # (h, c) per layer, each (batch, hidden)
WindowState = np.ndarray                            # a window model's last ids, (batch, <= window)
Clamp = dict[tuple[int, int], float]                 # (layer, unit) -> the value its hidden output is held at
_REREAD_ROWS = 256                                    # windows a window model re-reads together


def slide_window(history: WindowState, ids: np.ndarray, window: int) -> WindowState:
    """A window model's state after reading (batch,) ids: the last `window` ids of each row."""
    return np.concatenate([history, np.asarray(ids, dtype=np.int64)[:, None]], axis=1)[:, -window:]


@dataclass
class ArrayLSTM:
    """CharLSTM's weights folded for stepping: a step is a row lookup and one matrix product per layer.

    The embedding is folded into layer 0's input weights (a table of vocab x 4H rows, biases
    included). The columns of the i, f and o gates are halved, so that one tanh over all four gates
    gives the candidate's tanh and, as (tanh(z / 2) + 1) / 2, the three sigmoids.

    A window model (the 2017 preset) carries no LSTM state between characters: its state is its last
    `window` ids, and each step re-reads them from a zero state, all rows of the batch at once.
    """
    hidden_size: int
    table: np.ndarray                 # (vocab, 4H) layer 0's gate inputs for each character
    w_hh: list[np.ndarray]            # per layer (H, 4H)
    w_ih: list[np.ndarray | None]     # per layer (H, 4H); None for layer 0 (the table holds it)
    bias: list[np.ndarray | None]     # per layer (4H,); None for layer 0
    head_w: np.ndarray                # (H, vocab)
    head_b: np.ndarray                # (vocab,)
    window: int | None = None         # characters a window model re-reads for every new one; None: carried state

    @classmethod
    def from_weights(cls, config: dict, weights: dict[str, np.ndarray], window: int | None = None) -> "ArrayLSTM":
        """From CharLSTM's ModelConfig fields and state_dict (as float32 numpy arrays, the same names)."""
        H, layers = int(config["hidden_size"]), int(config["num_layers"])
        half = np.full(4 * H, 0.5, dtype=np.float32)
        half[2 * H:3 * H] = 1.0
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        bias = lambda k: w[f"lstm.bias_ih_l{k}"] + w[f"lstm.bias_hh_l{k}"]
        if config.get("input_mode", "embedding") == "embedding":
            inputs = w["embed.weight"]                                            # (vocab, E)
        else:   # the 2017 preset: id / vocab as one float
            vocab = w["head.bias"].shape[0]
            inputs = (np.arange(vocab, dtype=np.float32) / vocab)[:, None]
        table = inputs @ w["lstm.weight_ih_l0"].T + bias(0)
        return cls(
            hidden_size=H,
            table=np.ascontiguousarray(table * half),
            w_hh=[np.ascontiguousarray(w[f"lstm.weight_hh_l{k}"].T * half) for k in range(layers)],
            w_ih=[None] + [np.ascontiguousarray(w[f"lstm.weight_ih_l{k}"].T * half) for k in range(1, layers)],
            bias=[None] + [bias(k) * half for k in range(1, layers)],
            head_w=np.ascontiguousarray(w["head.weight"].T),
            head_b=w["head.bias"].copy(),
            window=window,
        )

    @staticmethod
    def bytes_for(config: dict) -> int:
        """What from_weights will hold for this config, known before any weight is read (float32 arrays)."""
        H, layers, vocab = int(config["hidden_size"]), int(config["num_layers"]), int(config["vocab_size"])
        floats = vocab * 4 * H + layers * H * 4 * H + (layers - 1) * (H * 4 * H + 4 * H) + H * vocab + vocab
        return 4 * floats

    @property
    def nbytes(self) -> int:
        """The memory its arrays hold."""
        arrays = [self.table, self.head_w, self.head_b, *self.w_hh, *self.w_ih, *self.bias]
        return sum(a.nbytes for a in arrays if a is not None)

    @property
    def vocab_size(self) -> int:
        return self.head_b.shape[0]

    def init_state(self, batch: int) -> ArrayState | WindowState:
        """Zeros per layer; for a window model, no ids read yet."""
        if self.window:
            return np.zeros((batch, 0), dtype=np.int64)
        return self._zeros(batch)

    def _zeros(self, batch: int) -> ArrayState:
        zeros = lambda: np.zeros((batch, self.hidden_size), dtype=np.float32)
        return [(zeros(), zeros()) for _ in self.w_hh]

    def step(self, ids: np.ndarray, state: ArrayState | WindowState,
             clamp: Clamp | None = None) -> tuple[np.ndarray, ArrayState | WindowState]:
        """(batch,) ids -> logits (batch, vocab) for the next character, and the new state.

        `clamp` holds chosen hidden units at chosen values: {(layer, unit): value}, applied to each layer's
        output h before the next layer and the head read it (and so before it is carried to the next step).
        """
        if self.window:
            history = slide_window(state, ids, self.window)
            return self.reread(history, clamp)[0], history
        x, state = self._layers(ids, state, clamp)
        return self._head(x), state

    def read(self, ids: list[int], batch: int = 1,
             clamp: Clamp | None = None) -> tuple[np.ndarray, ArrayState | WindowState]:
        """Read a prime (at least one id) from a zero state; -> logits for the next character, state.

        A carried model reads it one character at a time, as it writes, so every path computes the same numbers.
        `clamp` holds units while it reads, as step does.
        """
        if self.window:
            history = np.tile(np.asarray(ids[-self.window:], dtype=np.int64), (batch, 1))
            return self.reread(history, clamp)[0], history
        state = self._zeros(batch)
        for i in ids:
            x, state = self._layers(np.full(batch, i), state, clamp)
        return self._head(x), state

    def select(self, state: ArrayState | WindowState, rows: np.ndarray) -> ArrayState | WindowState:
        """The state of the given batch rows, in that order (beam search keeps its best hypotheses)."""
        if self.window:
            return state[rows]
        return [(h[rows], c[rows]) for h, c in state]

    def trace(self, ids, state: ArrayState | None = None, clamp: Clamp | None = None,
              should_stop: StopCheck | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read ids one at a time, carrying the state (even for a window model), and keep everything.

        ids (T,) are one text read at batch 1: -> logits (T, vocab), the prediction after each character;
        h and c (T, layers, hidden), every layer's state after each character. ids (rows, T) are that many
        texts stepped together (one matrix product per step for all of them): -> the same with a leading
        rows axis. `state` is where the rows start (zeros when None). What the teaching tools draw
        (surprise, a unit's activation); charlm.learn.neurons reads a long text as rows. should_stop() is asked
        every 16 steps (32 rows of a 3 x 512 model take seconds); True raises workload.Stopped.
        """
        ids = np.asarray(ids, dtype=np.int64)
        rows = ids[None] if ids.ndim == 1 else ids                                  # (rows, T)
        state = state or self._zeros(rows.shape[0])
        (R, T), L, H = rows.shape, len(self.w_hh), self.hidden_size
        logits = np.empty((R, T, self.vocab_size), dtype=np.float32)
        hs, cs = np.empty((R, T, L, H), dtype=np.float32), np.empty((R, T, L, H), dtype=np.float32)
        for t in range(T):
            if t % 16 == 0:
                check(should_stop)
            x, state = self._layers(rows[:, t], state, clamp)
            logits[:, t] = self._head(x)
            for k, (h, c) in enumerate(state):
                hs[:, t, k], cs[:, t, k] = h, c
        if ids.ndim == 1:
            return logits[0], hs[0], cs[0]
        return logits, hs, cs

    def trace_gates(self, rows: np.ndarray, last_only: bool = False,
                    should_stop: StopCheck | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows (R, T) of ids read from a zero state, the rows stepping together (in chunks of _REREAD_ROWS), keeping
        every layer's gates after their nonlinearities: -> gates (R, T, layers, 4, H) in the order i, f, g, o, and
        h and c (R, T, layers, H). last_only keeps only the last step (T axis of 1): a window model's last pass.

        The same steps as trace and reread (the same products on the same shapes), so the same numbers; kept apart
        from them so that writing pays nothing for it. should_stop() is asked every 16 steps.
        """
        (R, T), L, H = rows.shape, len(self.w_hh), self.hidden_size
        kept = 1 if last_only else T
        gates = np.empty((R, kept, L, 4, H), dtype=np.float32)
        hs, cs = np.empty((R, kept, L, H), dtype=np.float32), np.empty((R, kept, L, H), dtype=np.float32)
        for start in range(0, R, _REREAD_ROWS):
            chunk = slice(start, start + _REREAD_ROWS)
            state = self._zeros(len(rows[chunk]))
            for t in range(T):
                if t % 16 == 0:
                    check(should_stop)
                found = [] if t >= T - kept else None
                _, state = self._layers(rows[chunk, t], state, gates=found)
                for k, ((s, z), (h, c)) in enumerate(zip(found or [], state)):
                    at = t - (T - kept)
                    gates[chunk, at, k] = s.reshape(-1, 4, H)
                    gates[chunk, at, k, 2] = z[:, 2 * H:3 * H]      # the candidate is the tanh, not its sigmoid
                    hs[chunk, at, k], cs[chunk, at, k] = h, c
        return gates, hs, cs

    def _layers(self, ids: np.ndarray, state: ArrayState, clamp: Clamp | None = None,
                gates: list | None = None) -> tuple[np.ndarray, ArrayState]:
        """One character through every layer: -> the top layer's output (batch, H), the new state.

        A `gates` list receives each layer's (sigmoids, tanhs), each (batch, 4H), for trace_gates.
        """
        H = self.hidden_size
        new_state = []
        x = None
        for k, (h, c) in enumerate(state):
            if k == 0:
                t = h @ self.w_hh[0]
                t += self.table[ids]                                            # (batch, 4H)
            else:
                t = x @ self.w_ih[k]
                t += h @ self.w_hh[k]
                t += self.bias[k]
            np.tanh(t, out=t)        # tanh(g) for the candidate, tanh(z / 2) for the three gates
            s = t * 0.5
            s += 0.5                 # the gates' sigmoids (the candidate's quarter goes unused)
            if gates is not None:
                gates.append((s, t))
            c = s[:, H:2 * H] * c
            c += s[:, :H] * t[:, 2 * H:3 * H]
            x = s[:, 3 * H:] * np.tanh(c)
            if clamp:
                for (layer, unit), value in clamp.items():
                    if layer == k:
                        x[:, unit] = value
            new_state.append((x, c))
        return x, new_state

    def _head(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.head_w
        logits += self.head_b
        return logits

    def reread(self, windows: np.ndarray, clamp: Clamp | None = None,
               should_stop: StopCheck | None = None) -> tuple[np.ndarray, ArrayState]:
        """Each row of (batch, n) ids read from a zero state, the rows stepping together (in chunks of
        _REREAD_ROWS, so any number of them fits in memory).

        -> the logits after each row's last id (batch, vocab), and the state it ends in: how a window
        model predicts, and what its units hold, for any number of windows at once. should_stop() is asked
        every 16 steps (a chunk of long windows takes seconds); True raises workload.Stopped.
        """
        chunks = []
        for start in range(0, max(1, len(windows)), _REREAD_ROWS):
            rows = windows[start:start + _REREAD_ROWS]
            state = self._zeros(rows.shape[0])
            for t in range(rows.shape[1]):
                if t % 16 == 0:
                    check(should_stop)
                x, state = self._layers(rows[:, t], state, clamp)
            chunks.append((self._head(x), state))
        if len(chunks) == 1:
            return chunks[0]
        return (np.concatenate([logits for logits, _ in chunks]),
                [tuple(np.concatenate([state[k][i] for _, state in chunks]) for i in (0, 1))
                 for k in range(len(self.w_hh))])
