"""The torch engine: CharLSTM stepped by torch on its own device, behind the numpy engine's interface."""

from __future__ import annotations

import numpy as np
import torch

from charlm.engine.arrays import ArrayLSTM, WindowState, slide_window
from charlm.nn.model import CharLSTM, State


def torch_engine(model: CharLSTM, window: int | None = None) -> ArrayLSTM | TorchEngine:
    """A CPU float32 model's weights in the numpy engine (faster for one character at a time); else TorchEngine."""
    weight = model.head.weight
    if weight.device.type == "cpu" and weight.dtype == torch.float32:
        weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        return ArrayLSTM.from_weights(model.config.to_dict(), weights, window)
    return TorchEngine(model, window)


class TorchEngine:
    """CharLSTM stepped by torch on its own device (a GPU): the numpy engine's interface, numpy logits out.

    The LSTM state stays on the device as CharLSTM's stacked (h, c). Holding units (clamp) and traces
    are the CPU engine's (arrays.ArrayLSTM).
    """

    def __init__(self, model: CharLSTM, window: int | None = None):
        self.model = model.eval()   # dropout off (the trainer switches it back on after a sample)
        self.window = window
        self.device = model.head.weight.device

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.model.parameters())

    def init_state(self, batch: int) -> State | WindowState:
        if self.window:
            return np.zeros((batch, 0), dtype=np.int64)
        return self.model.init_state(batch)

    def step(self, ids: np.ndarray, state: State | WindowState, clamp=None) -> tuple[np.ndarray, State | WindowState]:
        """(batch,) ids -> logits (batch, vocab) for the next character, and the new state."""
        if clamp:
            raise ValueError("holding units is done on the CPU: load the model there (engine_for a CPU model)")
        if self.window:
            history = slide_window(state, ids, self.window)
            return self._logits(history)[0], history
        return self._logits(np.asarray(ids)[:, None], state)

    def read(self, ids: list[int], batch: int = 1) -> tuple[np.ndarray, State | WindowState]:
        """Read a prime (at least one id) from a zero state; -> logits for the next character, state."""
        rows = np.tile(np.asarray(ids[-self.window:] if self.window else ids, dtype=np.int64), (batch, 1))
        logits, state = self._logits(rows)
        return logits, (rows if self.window else state)

    def select(self, state: State | WindowState, rows: np.ndarray) -> State | WindowState:
        """The state of the given batch rows, in that order."""
        if self.window:
            return state[rows]
        index = torch.as_tensor(rows, device=self.device)
        return state[0][:, index], state[1][:, index]

    @torch.no_grad()
    def _logits(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Read (batch, seq) ids on from `state` (zeros when None); -> the last position's logits, the state."""
        logits, state = self.model(torch.as_tensor(ids, dtype=torch.long, device=self.device), state)
        return logits[:, -1].float().cpu().numpy(), state
