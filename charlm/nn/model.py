"""The model: ModelConfig and CharLSTM, ints in, logits and LSTM state out; it knows no text."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from charlm.config import ModelConfig

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

    @classmethod
    def from_checkpoint(cls, ckpt, device: torch.device | str = "cpu") -> CharLSTM:
        """A checkpoint's model (modelfile.checkpoint.Checkpoint), built only after load() has checked every
        weight's shape against its config; in eval mode on `device`."""
        model = cls(ckpt.model_cfg())
        model.load_state_dict({k: torch.as_tensor(v) for k, v in ckpt.state_dict.items()})
        model.to(device).eval()
        if torch.device(device).type == "cuda":
            model.lstm.flatten_parameters()
        return model

    def engine(self, window: int | None = None):
        """The engine that writes with this model (charlm.nn.engine): how engine.decoding steps a torch model."""
        from charlm.nn.engine import torch_engine   # here: the engine module imports this one
        return torch_engine(self, window)

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
        table = self.embed.weight
        if self.training and self.config.embed_drop:
            # Embedding dropout (Gal and Ghahramani 2016): some characters lose their whole embedding for this
            # batch, wherever they occur, so the model must also read them from their context.
            kept = torch.empty_like(table[:, :1]).bernoulli_(1 - self.config.embed_drop)
            table = table * kept / (1 - self.config.embed_drop)
        return self.drop(F.embedding(ids, table))

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """(batch, seq) ids -> logits (batch, seq, vocab), new state."""
        if state is None:
            state = self.init_state(ids.shape[0])
        inputs = self.features(ids)
        if self.training and self.config.weight_drop:
            out, h, c = torch.lstm(inputs, state, self._dropped_weights(), True, self.config.num_layers,
                                   self.lstm.dropout, True, False, True)
            state = (h, c)
        else:
            out, state = self.lstm(inputs, state)
        return self.head(self.drop(out)), state

    def _dropped_weights(self) -> list[torch.Tensor]:
        """The LSTM's weights as its fused kernel takes them, with DropConnect on each hidden-to-hidden matrix
        (Merity et al. 2017, AWD-LSTM's weight drop): one mask for the whole batch and every time step, so the
        recurrence is regularised and the kernel stays the fused one."""
        weights = []
        for k in range(self.config.num_layers):
            weights += [getattr(self.lstm, f"weight_ih_l{k}"),
                        drop_connect(getattr(self.lstm, f"weight_hh_l{k}"), self.config.weight_drop),
                        getattr(self.lstm, f"bias_ih_l{k}"), getattr(self.lstm, f"bias_hh_l{k}")]
        return weights

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def drop_connect(weight: torch.Tensor, p: float) -> torch.Tensor:
    """weight with each entry zeroed with probability p and the rest scaled by 1 / (1 - p), as F.dropout does.
    On a CPU the mask comes from 16-bit slices of 64-bit random numbers (p to the nearest 1/65,536): a quarter as
    many draws as F.dropout makes: the mask is 4x cheaper, and the default trains about 5% faster."""
    if weight.device.type != "cpu":
        return F.dropout(weight, p, training=True)
    n = weight.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None)   # every one of the 64 bits random
    drawn = bits.view(torch.int16)[:n].view(weight.shape)                         # uniform on [-32768, 32767]
    dropped = min(round(p * 65_536), 65_535)                                        # of every 65,536 draws
    kept = drawn >= -32_768 + dropped
    return weight * kept.to(weight.dtype).mul_(65_536 / (65_536 - dropped))


def detach_state(state: State) -> State:
    """Cut the graph between truncated-BPTT chunks; the values carry on."""
    return (state[0].detach(), state[1].detach())
