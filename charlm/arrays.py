"""The LSTM as numpy arrays, stepped one character at a time, traced, or with units held. No torch here.

On the CPU, generation runs on this: at batch 1 numpy's calls cost about a microsecond each against
torch's 5-10, which halves the time per character (BENCHMARKS.md). The app also writes its first
sample with it from the shipped model file (read by charlm.modelfile) while torch is still importing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ArrayState = list[tuple[np.ndarray, np.ndarray]]   # (h, c) per layer, each (batch, hidden)
Clamp = dict[tuple[int, int], float]                 # (layer, unit) -> the value its hidden output is held at


@dataclass
class ArrayLSTM:
    """CharLSTM's weights folded for stepping: a step is a row lookup and one matrix product per layer.

    The embedding is folded into layer 0's input weights (a table of vocab x 4H rows, biases
    included). The columns of the i, f and o gates are halved, so that one tanh over all four gates
    gives the candidate's tanh and, as (tanh(z / 2) + 1) / 2, the three sigmoids.
    """
    hidden_size: int
    table: np.ndarray                 # (vocab, 4H) layer 0's gate inputs for each character
    w_hh: list[np.ndarray]            # per layer (H, 4H)
    w_ih: list[np.ndarray | None]     # per layer (H, 4H); None for layer 0 (the table holds it)
    bias: list[np.ndarray | None]     # per layer (4H,); None for layer 0
    head_w: np.ndarray                # (H, vocab)
    head_b: np.ndarray                # (vocab,)

    @classmethod
    def from_weights(cls, config: dict, weights: dict[str, np.ndarray]) -> "ArrayLSTM":
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
        )

    @property
    def vocab_size(self) -> int:
        return self.head_b.shape[0]

    def init_state(self, batch: int) -> ArrayState:
        zeros = lambda: np.zeros((batch, self.hidden_size), dtype=np.float32)
        return [(zeros(), zeros()) for _ in self.w_hh]

    def step(self, ids: np.ndarray, state: ArrayState, clamp: Clamp | None = None) -> tuple[np.ndarray, ArrayState]:
        """(batch,) ids -> logits (batch, vocab) for the next character, and the new state.

        `clamp` holds chosen hidden units at chosen values: {(layer, unit): value}, applied to each layer's
        output h before the next layer and the head read it (and so before it is carried to the next step).
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
            c = s[:, H:2 * H] * c
            c += s[:, :H] * t[:, 2 * H:3 * H]
            x = s[:, 3 * H:] * np.tanh(c)
            if clamp:
                for (layer, unit), value in clamp.items():
                    if layer == k:
                        x[:, unit] = value
            new_state.append((x, c))
        logits = x @ self.head_w
        logits += self.head_b
        return logits, new_state

    def trace(self, ids: list[int], state: ArrayState | None = None,
              clamp: Clamp | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read ids one at a time (batch 1) and keep everything: -> (logits, h, c).

        logits (T, vocab): the prediction after each character; h and c (T, layers, hidden): every layer's
        state after each character. What the teaching tools draw (surprise, a unit's activation).
        """
        state = state or self.init_state(1)
        T, L, H = len(ids), len(self.w_hh), self.hidden_size
        logits = np.empty((T, self.vocab_size), dtype=np.float32)
        hs, cs = np.empty((T, L, H), dtype=np.float32), np.empty((T, L, H), dtype=np.float32)
        for t, i in enumerate(ids):
            out, state = self.step(np.array([i]), state, clamp)
            logits[t] = out[0]
            for k, (h, c) in enumerate(state):
                hs[t, k], cs[t, k] = h[0], c[0]
        return logits, hs, cs

    def read(self, ids: list[int], batch: int = 1) -> tuple[np.ndarray, ArrayState]:
        """Read a prime (at least one id) from a zero state; -> logits for the next character, state."""
        state = self.init_state(batch)
        for i in ids:
            logits, state = self.step(np.full(batch, i), state)
        return logits, state
