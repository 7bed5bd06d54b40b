"""Named presets: a model shape and the training recipe that suits it; the one place a preset becomes configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from charlm.config import MODEL_FIELDS, ModelConfig, TrainConfig, refuse_unknown
from charlm.errors import UserError

_SHAPE_FIELDS = tuple(name for name in MODEL_FIELDS if name != "vocab_size")   # the corpus gives the vocabulary


@dataclass(frozen=True)
class Preset:
    name: str                                        # what --preset and the app's list call it
    description: str                                 # one line for people
    model: Mapping = field(default_factory=dict)     # ModelConfig fields but vocab_size; the rest are its defaults
    train: TrainConfig = field(default_factory=TrainConfig)   # the recipe, budget left to the run

    def __post_init__(self):
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))   # read-only, like the rest of it
        self.model_config(vocab_size=2)   # a mistyped or out-of-range model field fails at import, not at Start

    def model_config(self, vocab_size: int, **overrides) -> ModelConfig:
        """The preset's model for a text of vocab_size distinct characters, with overrides; unknown names are refused."""
        refuse_unknown(overrides, _SHAPE_FIELDS, "model")
        return ModelConfig(vocab_size=vocab_size, **{**self.model, **overrides})

    def train_config(self, **overrides) -> TrainConfig:
        """The preset's training recipe with overrides (a budget, a seed, a device...); unknown names are refused."""
        return self.train.replace(**overrides)

    def takes(self, knob: Knob) -> bool:
        """Whether a run of this preset can change knob: the 2017 design reads each character as one number, so
        it has no embedding to size."""
        return not knob.embedding or self.model.get("input_mode", "embedding") == "embedding"

@dataclass(frozen=True)
class Knob:
    """One setting a run may change from its preset: the same option on the command line and the Train page."""
    field: str                  # the ModelConfig field (shape) or TrainConfig field (recipe) it sets
    shape: bool                 # a ModelConfig field: --init and --resume keep the model's own
    kind: type                  # int or float
    flag: str                   # the train command's --FLAG (its argparse dest; dashes for underscores)
    label: str                  # the Train page's label
    key: str                    # the Train page's widget key (+ "_PRESET": each preset keeps its own values)
    cell: tuple[int, int]       # (row, column) in the Train page's grid of three columns
    minimum: float              # the page's lowest value; sliders also get maximum, below 1
    step: float
    help: str | None = None     # the option's help; None: listed with the run's options, not the preset's
    maximum: float | None = None
    slider: bool = False
    format: str | None = None   # the page's number format
    tip: str | None = None      # the page's help
    embedding: bool = False     # sizes the embedding, which only models that embed characters have
    from_preset: bool = True    # starts at the preset's value (the seed is the run's own)


KNOBS: tuple[Knob, ...] = (   # in the train command's order
    Knob("seed", False, int, "seed", "Seed", "seed", (2, 0), 0, 1, from_preset=False),
    Knob("num_layers", True, int, "layers", "Layers", "layers", (0, 0), 1, 1, "LSTM layers"),
    Knob("hidden_size", True, int, "hidden", "Hidden size (units per layer)", "hidden", (0, 1), 4, 32,
         "units per LSTM layer"),
    Knob("embed_dim", True, int, "embed", "Embedding width (numbers per character)", "embed", (2, 1), 1, 16,
         "embedding width (numbers per character)", embedding=True),
    Knob("dropout", True, float, "dropout", "Dropout", "dropout", (0, 2), 0.0, 0.05,
         "dropout between layers and before the head, 0 to below 1", maximum=0.9, slider=True),
    Knob("weight_drop", True, float, "weight_drop", "Weight drop (inside the recurrence)", "weight_drop", (2, 2),
         0.0, 0.05, "DropConnect on the hidden-to-hidden weights (a new mask each batch), 0 to below 1",
         maximum=0.9, slider=True,
         tip="While training, each batch drops this share of the weights from the LSTM's state to its next step "
             "(DropConnect), a new choice each batch: the model cannot lean on any one connection, and memorises "
             "its text less."),
    Knob("seq_len", False, int, "seq_len", "Sequence length (characters)", "seq", (1, 0), 2, 16,
         "characters per training sequence"),
    Knob("batch_size", False, int, "batch_size", "Batch size", "batch", (1, 1), 1, 8, "sequences per step"),
    Knob("lr", False, float, "lr", "Learning rate", "lr", (1, 2), 1e-5, 5e-4, "peak learning rate", maximum=1.0,
         format="%.4f"),
)


def split(values: Mapping) -> tuple[dict, dict]:
    """Knob values by field name -> (model overrides, training overrides), for model_config and train_config."""
    shape = {k.field: values[k.field] for k in KNOBS if k.shape and k.field in values}
    recipe = {k.field: values[k.field] for k in KNOBS if not k.shape and k.field in values}
    return shape, recipe


PRESETS: dict[str, Preset] = {p.name: p for p in [
    # Tuned on Nietzsche for 5 minutes on 2 CPU cores (bench/tuning.jsonl, BENCHMARKS.md): one wide layer,
    # small batches (many updates) and a high learning rate. Regularised inside the recurrence (weight drop)
    # rather than around it: dropout on the inputs and outputs cost more than it gave once weight drop was
    # on; with it, weight decay is best at 0.2 (0.1 before). The saved model is the average of the weights over
    # the second half of the run.
    Preset("cpu-fast", "Default: the best validation loss per minute on a laptop CPU (1 x 384 units).",
           model=dict(hidden_size=384, num_layers=1, embed_dim=64, dropout=0.05, weight_drop=0.15),
           train=TrainConfig(seq_len=64, batch_size=32, lr=8e-3, warmup_steps=10, weight_decay=0.2, grad_clip=5.0,
                             average_from=0.5, average_decay=0.998)),
    Preset("tiny", "Seconds to train; for the hosted demo and classroom walk-throughs.",
           model=dict(hidden_size=128, num_layers=1, embed_dim=32, dropout=0.0),
           train=TrainConfig(seq_len=64, batch_size=32, lr=1e-2, warmup_steps=20, weight_decay=0.0)),
    Preset("gpu-medium", "A GPU model: 3 x 512 units, long sequences, big batches.",
           model=dict(hidden_size=512, num_layers=3, embed_dim=128, dropout=0.2),
           train=TrainConfig(seq_len=256, batch_size=128, lr=2e-3, warmup_steps=200, weight_decay=0.05)),
    Preset("gpu-large", "The largest: 3 x 1024 units; wants a GPU and a corpus of several MB.",
           model=dict(hidden_size=1024, num_layers=3, embed_dim=128, dropout=0.3),
           train=TrainConfig(seq_len=256, batch_size=128, lr=1.5e-3, warmup_steps=300, weight_decay=0.1)),
    Preset("seed-2017", "The 2017 tutorial, faithfully: 100-char windows, the index / vocab size as one "
           "float feature, LSTM(256), Dropout(0.2), one target per window, Adam 1e-3, batch 128, "
           "greedy generation re-reading the window.",
           model=dict(hidden_size=256, num_layers=1, dropout=0.2, input_mode="scaled_index"),
           train=TrainConfig(seq_len=100, batch_size=128, lr=1e-3, objective="last", optimizer="adam",
                             schedule="constant", warmup_steps=0, weight_decay=0.0, grad_clip=0.0, stateful=False,
                             rereads_window=True)),
]}

DEFAULT_PRESET = "cpu-fast"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
