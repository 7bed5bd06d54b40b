"""The model: ModelConfig and CharLSTM, ints in, logits and LSTM state out; it knows no text."""

from __future__ import annotations

import torch
import torch.nn as nn

from .arrays import ArrayLSTM
from .config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, batch, hidden_size)


class CharLSTM(nn.Module):
    """Embedding (or the 2017 scaled index) -> stacked LSTM -> linear head over the vocabulary."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        if config.input_mode == "embedding":
            self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
            input_size = config.embed_dim
        else:
            self.embed = None
            input_size = 1
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(input_size, config.hidden_size, config.num_layers, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        self._init_weights()

    def _init_weights(self):
        # A forget-gate bias of 1 lets early gradients flow through the cell (Jozefowicz et al., 2015).
        h = self.config.hidden_size
        for name, param in self.lstm.named_parameters():
            if name.startswith("bias_ih"):
                nn.init.zeros_(param)
                param.data[h:2 * h] = 1.0
            elif name.startswith("bias_hh"):
                nn.init.zeros_(param)
            elif name.startswith("weight_hh"):
                for k in range(4):
                    nn.init.orthogonal_(param.data[k * h:(k + 1) * h])
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=1.0)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def init_state(self, batch_size: int) -> State:
        weight = self.head.weight
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        return (weight.new_zeros(shape), weight.new_zeros(shape))

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq) int ids -> (batch, seq, input_size) LSTM inputs."""
        if self.embed is None:
            return (ids.to(self.head.weight.dtype) / self.config.vocab_size).unsqueeze(-1)
        return self.drop(self.embed(ids))

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """(batch, seq) ids -> logits (batch, seq, vocab), new state."""
        if state is None:
            state = self.init_state(ids.shape[0])
        out, state = self.lstm(self.features(ids), state)
        return self.head(self.drop(out)), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def detach_state(state: State) -> State:
    """Cut the graph between truncated-BPTT chunks; the values carry on."""
    return (state[0].detach(), state[1].detach())


class FastStepper:
    """One character at a time for inference, without nn.LSTM's per-call overhead.

    On the CPU it steps the numpy ArrayLSTM (about half the time per character of the same step in
    torch at batch 1). Elsewhere (a GPU) it folds the embedding into layer 0's input weights the same
    way and steps in torch. The numbers are those of CharLSTM.forward up to float rounding.
    """

    def __init__(self, model: CharLSTM):
        cfg = model.config
        self.config = cfg
        weights = {name: value.detach() for name, value in model.state_dict().items()}
        head = weights["head.weight"]
        self.arrays: ArrayLSTM | None = None
        if head.device.type == "cpu" and head.dtype == torch.float32:
            self.arrays = ArrayLSTM.from_weights(cfg.to_dict(), {k: v.numpy() for k, v in weights.items()})
            return
        lstm = model.lstm
        with torch.no_grad():
            w_ih0 = lstm.weight_ih_l0
            bias0 = lstm.bias_ih_l0 + lstm.bias_hh_l0
            if model.embed is not None:
                # (vocab, 4H): every character's contribution to layer 0's gates, biases included.
                self.table = (model.embed.weight @ w_ih0.T + bias0).contiguous()
            else:
                ids = torch.arange(cfg.vocab_size, dtype=w_ih0.dtype, device=w_ih0.device)
                self.table = ((ids / cfg.vocab_size)[:, None] @ w_ih0.T + bias0).contiguous()
            self.w_hh = [getattr(lstm, f"weight_hh_l{k}").T.contiguous() for k in range(cfg.num_layers)]
            self.w_ih = [None] + [getattr(lstm, f"weight_ih_l{k}").T.contiguous() for k in range(1, cfg.num_layers)]
            self.bias = [None] + [(getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).contiguous()
                                  for k in range(1, cfg.num_layers)]
            self.head_w = model.head.weight.T.contiguous()
            self.head_b = model.head.bias.detach().clone()

    def step(self, ids: torch.Tensor, state: "State | LayerStates") -> tuple[torch.Tensor, "LayerStates"]:
        """(batch,) ids -> logits (batch, vocab), per-layer state for the next character.

        Call under torch.no_grad(). The state may be CharLSTM's stacked (h, c); what comes back is a
        list of (h, c) per layer, which saves stacking and unstacking at every character.
        """
        if isinstance(state, tuple):
            state = list(zip(state[0].unbind(0), state[1].unbind(0)))
        if self.arrays is not None:
            logits, arrays = self.arrays.step(ids.numpy(), [(h.numpy(), c.numpy()) for h, c in state])
            return torch.from_numpy(logits), [(torch.from_numpy(h), torch.from_numpy(c)) for h, c in arrays]
        H = self.config.hidden_size
        new_state = []
        x = None
        for k, (h, c) in enumerate(state):
            if k == 0:
                gates = torch.addmm(self.table[ids], h, self.w_hh[0])          # (batch, 4H)
            else:
                gates = torch.addmm(self.bias[k], x, self.w_ih[k]).addmm_(h, self.w_hh[k])
            # Gate order i, f, g, o as in nn.LSTM; one sigmoid over all four is cheaper than three calls.
            s = gates.sigmoid()
            c = torch.addcmul(s[:, H:2 * H] * c, s[:, :H], gates[:, 2 * H:3 * H].tanh())
            x = s[:, 3 * H:] * c.tanh()
            new_state.append((x, c))
        return torch.addmm(self.head_b, x, self.head_w), new_state


LayerStates = list[tuple[torch.Tensor, torch.Tensor]]   # FastStepper's state: (h, c) per layer, each (batch, H)


def select_rows(state: LayerStates, rows: torch.Tensor) -> LayerStates:
    """Reorder or repeat the batch rows of a stepper state (beam search keeps its best hypotheses)."""
    return [(h[rows], c[rows]) for h, c in state]
