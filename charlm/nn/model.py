"""The model: ModelConfig and CharLSTM, ints in, logits and LSTM state out; it knows no text."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from charlm.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, batch, hidden_size)


class CharLSTM(nn.Module):
    """Embedding (or the 2017 scaled index) -> stacked LSTM -> linear head over the vocabulary.

    Nothing here draws from torch's process-wide generator: the first weights come from `generator` (one seeded
    0 when none is given), and training's dropout masks from self.generator, which a trainer sets to its run's
    own, so runs in threads side by side neither reseed nor consume each other's randomness.
    """

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        # Built on the meta device, where the layers' own initialisation draws nothing, then given real memory
        # and every weight drawn from `generator`.
        if config.input_mode == "embedding":
            self.embed = nn.Embedding(config.vocab_size, config.embed_dim, device="meta")
            input_size = config.embed_dim
        else:
            self.embed = None
            input_size = 1
        # The fused LSTM's own dropout would draw from the process-wide generator: forward() drops between
        # layers itself.
        self.lstm = nn.LSTM(input_size, config.hidden_size, config.num_layers, batch_first=True, device="meta")
        self.head = nn.Linear(config.hidden_size, config.vocab_size, device="meta")
        self.to_empty(device="cpu")
        self._init_weights(generator if generator is not None else torch.Generator().manual_seed(0))
        self.generator: torch.Generator | None = None   # draws training's dropout masks (on the weights' device)

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

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator) -> None:
        # The input weights as torch's LSTM draws them, uniform on +-1/sqrt(hidden); each gate's recurrent
        # matrix orthogonal; a forget-gate bias of 1 lets early gradients flow through the cell (Jozefowicz et
        # al., 2015).
        h = self.config.hidden_size
        for name, param in self.lstm.named_parameters():
            if name.startswith("bias_ih"):
                nn.init.zeros_(param)
                param[h:2 * h] = 1.0
            elif name.startswith("bias_hh"):
                nn.init.zeros_(param)
            elif name.startswith("weight_hh"):
                for k in range(4):
                    nn.init.orthogonal_(param[k * h:(k + 1) * h], generator=generator)
            else:
                nn.init.uniform_(param, -h ** -0.5, h ** -0.5, generator=generator)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=1.0, generator=generator)
        nn.init.normal_(self.head.weight, std=0.02, generator=generator)
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
            table = table * self._kept(table[:, :1], self.config.embed_drop)
        return self._dropout(F.embedding(ids, table))

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """(batch, seq) ids -> logits (batch, seq, vocab), new state."""
        if state is None:
            state = self.init_state(ids.shape[0])
        inputs = self.features(ids)
        cfg = self.config
        if self.training and (cfg.weight_drop or (cfg.dropout and cfg.num_layers > 1)):
            out, state = self._layer_by_layer(inputs, state)
        else:
            out, state = self.lstm(inputs, state)
        return self.head(self._dropout(out)), state

    def _layer_by_layer(self, inputs: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The LSTM in training, one fused call per layer, with dropout between layers and DropConnect on each
        hidden-to-hidden matrix (Merity et al. 2017, AWD-LSTM's weight drop: one mask for the whole batch and
        every time step, so the recurrence is regularised and the kernel stays the fused one). One call per
        layer because the multi-layer call would draw its dropout from the process-wide generator."""
        out, hs, cs = inputs, [], []
        for k in range(self.config.num_layers):
            if k:
                out = self._dropout(out)
            weight_hh = getattr(self.lstm, f"weight_hh_l{k}")
            if self.config.weight_drop:
                weight_hh = drop_connect(weight_hh, self.config.weight_drop, self._generator_for(weight_hh))
            weights = [getattr(self.lstm, f"weight_ih_l{k}"), weight_hh,
                       getattr(self.lstm, f"bias_ih_l{k}"), getattr(self.lstm, f"bias_hh_l{k}")]
            out, h, c = torch.lstm(out, (state[0][k:k + 1], state[1][k:k + 1]), weights, True, 1, 0.0, True,
                                   False, True)
            hs.append(h)
            cs.append(c)
        return out, (torch.cat(hs), torch.cat(cs))

    def _generator_for(self, like: torch.Tensor) -> torch.Generator:
        """The generator of dropout masks on like's device (one seeded 0 when the trainer set none)."""
        if self.generator is None or self.generator.device.type != like.device.type:
            self.generator = torch.Generator(like.device).manual_seed(0)
        return self.generator

    def _kept(self, like: torch.Tensor, p: float) -> torch.Tensor:
        """A dropout mask shaped like `like`: 0 with probability p, else 1 / (1 - p)."""
        mask = torch.empty_like(like).bernoulli_(1 - p, generator=self._generator_for(like))
        return mask.div_(1 - p)

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout (config.dropout) in training, as nn.Dropout does, with masks from the run's generator."""
        p = self.config.dropout
        return x * self._kept(x, p) if self.training and p else x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def drop_connect(weight: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """weight with each entry zeroed with probability p and the rest scaled by 1 / (1 - p), as F.dropout does.
    On a CPU the mask comes from 16-bit slices of 64-bit random numbers (p to the nearest 1/65,536): a quarter as
    many draws as F.dropout makes: the mask is 4x cheaper, and the default trains about 5% faster."""
    if weight.device.type != "cpu":
        return weight * torch.empty_like(weight).bernoulli_(1 - p, generator=generator).div_(1 - p)
    n = weight.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, None, generator=generator)   # all 64 bits random
    drawn = bits.view(torch.int16)[:n].view(weight.shape)                         # uniform on [-32768, 32767]
    dropped = min(round(p * 65_536), 65_535)                                        # of every 65,536 draws
    kept = drawn >= -32_768 + dropped
    return weight * kept.to(weight.dtype).mul_(65_536 / (65_536 - dropped))


def detach_state(state: State) -> State:
    """Cut the graph between truncated-BPTT chunks; the values carry on."""
    return (state[0].detach(), state[1].detach())
