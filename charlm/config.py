"""ModelConfig and the size caps a model may not exceed; plain Python, so files can be checked before torch loads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

MAX_VOCAB = 1_024            # distinct characters a corpus keeps (rarer ones share the unknown symbol)
INPUT_MODES = ("embedding", "scaled_index")


@dataclass(frozen=True)
class Limits:
    """The largest model this process accepts, from any file or form. The hosted app passes smaller ones."""
    max_hidden: int = 4_096      # LSTM units per layer
    max_layers: int = 8          # stacked LSTM layers
    max_embed: int = 1_024       # embedding width
    max_vocab: int = MAX_VOCAB   # characters
    max_window: int = 1_024      # characters a window model (2017) re-reads per step

    def problems(self, cfg: "ModelConfig", window: int | None = None) -> list[str]:
        """What in cfg (and the window) is over these caps, for people; empty when it fits."""
        over = []
        for value, cap, what in ((cfg.hidden_size, self.max_hidden, "units per layer"),
                                 (cfg.num_layers, self.max_layers, "layers"),
                                 (cfg.embed_dim, self.max_embed, "embedding width"),
                                 (cfg.vocab_size, self.max_vocab, "characters in the vocabulary"),
                                 (window or 0, self.max_window, "characters of window")):
            if value > cap:
                over.append(f"{value:,} {what} (the most is {cap:,})")
        return over


def _int(data: dict, name: str, default: int | None = None, low: int = 1) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}; it is {value}")
    return value


def _float(data: dict, name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int                  # number of distinct characters the model reads and writes
    hidden_size: int = 512           # LSTM units per layer
    num_layers: int = 2              # stacked LSTM layers
    embed_dim: int = 64              # width of the character embedding (unused for "scaled_index")
    dropout: float = 0.1             # on the embedding, between layers and before the head
    input_mode: str = "embedding"    # "embedding", or "scaled_index": the 2017 tutorial's id / vocab_size as one float

    def __post_init__(self):
        # Every field is checked for type and sign here, so a config from a file cannot reach a constructor bad.
        ModelConfig.checked(asdict(self))

    @staticmethod
    def checked(data: dict) -> dict:
        """The known fields of data, each checked for type and range; raises ValueError saying which is wrong."""
        if not isinstance(data, dict):
            raise ValueError("the model configuration is not a table of settings")
        out = {"vocab_size": _int(data, "vocab_size", low=2),
               "hidden_size": _int(data, "hidden_size", 512),
               "num_layers": _int(data, "num_layers", 2),
               "embed_dim": _int(data, "embed_dim", 64),
               "dropout": _float(data, "dropout", 0.1),
               "input_mode": data.get("input_mode", "embedding")}
        if not 0.0 <= out["dropout"] < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if out["input_mode"] not in INPUT_MODES:
            raise ValueError(f"unknown input mode {str(out['input_mode'])[:40]!r}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**cls.checked(data))

    @property
    def input_size(self) -> int:
        return self.embed_dim if self.input_mode == "embedding" else 1

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight CharLSTM holds, by its state_dict name: what a model file must contain, exactly."""
        H, V = self.hidden_size, self.vocab_size
        shapes = {"embed.weight": (V, self.embed_dim)} if self.input_mode == "embedding" else {}
        for k in range(self.num_layers):
            shapes[f"lstm.weight_ih_l{k}"] = (4 * H, self.input_size if k == 0 else H)
            shapes[f"lstm.weight_hh_l{k}"] = (4 * H, H)
            shapes[f"lstm.bias_ih_l{k}"] = (4 * H,)
            shapes[f"lstm.bias_hh_l{k}"] = (4 * H,)
        shapes["head.weight"] = (V, H)
        shapes["head.bias"] = (V,)
        return shapes

    def num_parameters(self) -> int:
        return sum(math.prod(shape) for shape in self.weight_shapes().values())


MODEL_FIELDS = tuple(f.name for f in fields(ModelConfig))
