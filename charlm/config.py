"""The configs: ModelConfig, TrainConfig and the size caps; plain Python, so files can be checked before torch loads."""

from __future__ import annotations

import math
import os
from dataclasses import MISSING, asdict, dataclass, fields, replace

from charlm.errors import UserError

MAX_VOCAB = 1_024            # distinct characters a corpus keeps (rarer ones share the unknown symbol)
INPUT_MODES = ("embedding", "scaled_index")
OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "constant")
OBJECTIVES = ("all", "last")
DEVICES = ("auto", "cpu", "cuda", "mps")


def threads_setting() -> int | None:
    """CHARLM_THREADS, the torch threads a run uses; None when unset, 0 or mistyped (a mistyped setting must not
    stop the app: the run takes its share of the cores)."""
    try:
        return int(os.environ.get("CHARLM_THREADS") or 0) or None
    except ValueError:
        return None


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


def _named(name: str, what: str) -> str:
    return f"{name} ({what})" if what else name


def _whole(name: str, value, low: int, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{_named(name, what)} must be a whole number, not {type(value).__name__}")
    if value < low:
        bound = "0 or more" if low == 0 else f"at least {low}"
        raise UserError(f"{_named(name, what)} must be {bound}; it is {value}")
    return value


def _finite(name: str, value, what: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{_named(name, what)} must be a finite number, not {type(value).__name__}")
    if not (-1e308 < value < 1e308):   # also a whole number too large for a float, which a file can hold
        raise UserError(f"{_named(name, what)} must be a finite number; it is {str(value)[:40]}")
    return float(value)


def _real(name: str, value, low: float, above: bool = False, what: str = "") -> float:
    """A finite number of at least `low` (above it, when `above`), as a float."""
    value = _finite(name, value, what)
    if value < low or (above and value == low):
        bound = f"above {low:g}" if above else ("0 or more" if low == 0 else f"at least {low:g}")
        raise UserError(f"{_named(name, what)} must be {bound}; it is {value}")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, not {type(value).__name__}")
    return value


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        shown = repr(value)[:40] if isinstance(value, str) else type(value).__name__
        raise UserError(f"{name} must be one of {', '.join(choices)}; not {shown}")
    return value


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int                  # number of distinct characters the model reads and writes
    hidden_size: int = 512           # LSTM units per layer
    num_layers: int = 2              # stacked LSTM layers
    embed_dim: int = 64              # width of the character embedding (unused for "scaled_index")
    dropout: float = 0.1             # on the embedding, between layers and before the head
    input_mode: str = "embedding"    # "embedding", or "scaled_index": the 2017 tutorial's id / vocab_size as one float
    weight_drop: float = 0.0         # training only: DropConnect on the hidden-to-hidden weights, a new mask each batch
    embed_drop: float = 0.0          # training only: whole characters' embeddings dropped, a new choice each batch

    def __post_init__(self):
        # Every field is checked for type and sign here, so a config from a file cannot reach a constructor bad.
        ModelConfig.checked(asdict(self))

    @staticmethod
    def checked(data: dict) -> dict:
        """The known fields of data, each checked for type and range; raises ValueError saying which is wrong."""
        if not isinstance(data, dict):
            raise UserError("the model configuration is not a table of settings")
        # The dataclass's defaults for fields data lacks; vocab_size has none (None: refused as not a number).
        get = {f.name: data.get(f.name, None if f.default is MISSING else f.default) for f in fields(ModelConfig)}.get
        out = {"vocab_size": _whole("vocab_size", get("vocab_size"), 2),
               "hidden_size": _whole("hidden_size", get("hidden_size"), 1),
               "num_layers": _whole("num_layers", get("num_layers"), 1),
               "embed_dim": _whole("embed_dim", get("embed_dim"), 1),
               "dropout": _finite("dropout", get("dropout")),
               "input_mode": get("input_mode"),
               "weight_drop": _finite("weight_drop", get("weight_drop")),
               "embed_drop": _finite("embed_drop", get("embed_drop"))}
        for name in ("dropout", "weight_drop", "embed_drop"):
            if not 0.0 <= out[name] < 1.0:
                raise UserError(f"{name} must be in [0, 1)")
        if out["input_mode"] not in INPUT_MODES:
            raise UserError(f"unknown input mode {str(out['input_mode'])[:40]!r}")
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


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 128              # characters per truncated-BPTT chunk (the window, for a window model)
    batch_size: int = 64            # parallel streams (or windows) per step
    lr: float = 3e-3                # peak learning rate
    min_lr_ratio: float = 0.05      # the cosine schedule ends at lr * this
    warmup_steps: int = 50          # linear warm-up, in steps
    weight_decay: float = 0.01      # AdamW's decoupled decay on matrices only
    grad_clip: float = 1.0          # max global gradient norm; 0 turns clipping off
    optimizer: str = "adamw"        # "adamw" or "adam" (the 2017 recipe)
    schedule: str = "cosine"        # "cosine" over the budget, or "constant"
    objective: str = "all"          # "all": every position is a target; "last": one target per window (2017)
    stateful: bool = True           # carry LSTM state across consecutive chunks of contiguous streams
    rereads_window: bool = False    # a window model (2017): scored and writing from the seq_len characters before each
    epochs: float | None = None     # budget in passes over the training text ...
    minutes: float | None = None    # ... and/or in wall-clock minutes (whichever ends first); none given = 1 epoch
    max_steps: int | None = None    # ... and/or in optimizer steps
    eval_interval_s: float = 30.0   # seconds of training between evaluations
    eval_chars: int = 100_000       # validation characters scored per evaluation (fixed, so runs compare)
    sample_chars: int = 200         # characters of the sample written at each evaluation; 0 writes none
    seed: int = 0                   # seeds the weights, the batches and the samples
    device: str = "auto"            # "auto", "cpu", "cuda" or "mps"
    amp: bool = True                # bf16 autocast where it pays: on CUDA, and on a CPU with native bf16 when a
                                    # start-up probe finds it faster (charlm.train.precision); False: fp32 throughout
    average_from: float | None = None   # from this fraction of the budget on, evaluate and save an average of the
                                        # weights (an exponential moving average); None: the weights as trained
    average_decay: float = 0.999    # the average's decay per step (its memory is about 1 / (1 - decay) steps)

    def __post_init__(self):
        # Checked (and numbers made floats) here, so a config from a file, a form or a preset is sound everywhere.
        for name, value in TrainConfig.checked(asdict(self)).items():
            object.__setattr__(self, name, value)

    @staticmethod
    def checked(data: dict) -> dict:
        """Every field of data (defaults for those missing), checked for type and range; ValueError says which."""
        if not isinstance(data, dict):
            raise UserError("the training configuration is not a table of settings")
        get = {f.name: data.get(f.name, f.default) for f in fields(TrainConfig)}.get
        out = {"seq_len": _whole("seq_len", get("seq_len"), 1, "the sequence length"),
               "batch_size": _whole("batch_size", get("batch_size"), 1, "the batch size"),
               "lr": _real("lr", get("lr"), 0.0, above=True, what="the learning rate"),
               "min_lr_ratio": _real("min_lr_ratio", get("min_lr_ratio"), 0.0),
               "warmup_steps": _whole("warmup_steps", get("warmup_steps"), 0),
               "weight_decay": _real("weight_decay", get("weight_decay"), 0.0),
               "grad_clip": _real("grad_clip", get("grad_clip"), 0.0),
               "optimizer": _choice("optimizer", get("optimizer"), OPTIMIZERS),
               "schedule": _choice("schedule", get("schedule"), SCHEDULES),
               "objective": _choice("objective", get("objective"), OBJECTIVES),
               "stateful": _flag("stateful", get("stateful")),
               "rereads_window": _flag("rereads_window", get("rereads_window")),
               "epochs": _optional(get("epochs"), _real, "epochs", 0.0, above=True),
               "minutes": _optional(get("minutes"), _real, "minutes", 0.0, above=True),
               "max_steps": _optional(get("max_steps"), _whole, "max_steps", 1),
               "eval_interval_s": _real("eval_interval_s", get("eval_interval_s"), 0.0),
               "eval_chars": _whole("eval_chars", get("eval_chars"), 1),
               "sample_chars": _whole("sample_chars", get("sample_chars"), 0),
               "seed": _whole("seed", get("seed"), 0),
               "device": _choice("device", get("device"), DEVICES),
               "amp": _flag("amp", get("amp")),
               "average_from": _optional(get("average_from"), _real, "average_from", 0.0),
               "average_decay": _real("average_decay", get("average_decay"), 0.0)}
        if out["average_from"] is not None and out["average_from"] >= 1.0:
            raise UserError(f"average_from must be below 1 (a fraction of the budget); it is {out['average_from']}")
        if out["average_decay"] >= 1.0:
            raise UserError(f"average_decay must be below 1; it is {out['average_decay']}")
        if out["min_lr_ratio"] > 1.0:
            raise UserError(f"min_lr_ratio must be at most 1; it is {out['min_lr_ratio']}")
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A config from a file's table; names this version does not know (other versions') are left out."""
        if not isinstance(data, dict):
            raise UserError("the training configuration is not a table of settings")
        return cls(**cls.checked({k: v for k, v in data.items() if k in TRAIN_FIELDS}))

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        """This config with some fields changed (checked again); an unknown name is refused."""
        refuse_unknown(changes, TRAIN_FIELDS, "training")
        return replace(self, **changes)

    @property
    def window(self) -> int | None:
        """Characters a window model reads for each one it predicts: its sequence length; None for the others."""
        return self.seq_len if self.rereads_window else None

    @property
    def has_budget(self) -> bool:
        return any(value is not None for value in (self.epochs, self.minutes, self.max_steps))


TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


def _optional(value, check, name: str, *args, **kwargs):
    return None if value is None else check(name, value, *args, **kwargs)


def refuse_unknown(settings: dict, known: tuple[str, ...], what: str) -> None:
    """ValueError naming any setting that is not one of `known` (a typo must not pass silently)."""
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise UserError(f"unknown {what} setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"the {what} settings are: {', '.join(known)}")
