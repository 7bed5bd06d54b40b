"""A character model's anatomy in plain numbers: its vocabulary, text as ids, two ways to cut training data, its layers.

Pure arithmetic for the Learn pages "Text to numbers", "Windows and targets" and "The model"; no torch here.
Parameter counts come from ModelConfig.weight_shapes(), the same table a model file is checked against.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from charlm.config import ModelConfig

FLOAT32_BYTES = 4
KERAS_WINDOW = 100   # the 2017 tutorial's window: 100 characters in, the 101st is the target


# --- text to numbers --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VocabEntry:
    index: int            # the id the model reads and writes for this character
    char: str
    count: int | None     # how often it occurs in the text at hand; None when no text is given


def vocabulary_table(chars: list[str], text: str | None = None) -> list[VocabEntry]:
    """One entry per character of the vocabulary, in id order, with its count in text when there is one."""
    counts = Counter(text) if text is not None else None
    return [VocabEntry(i, char, None if counts is None else counts.get(char, 0)) for i, char in enumerate(chars)]


def outside_vocabulary(chars: list[str], text: str) -> dict[str, int]:
    """Characters of text the vocabulary lacks, each with how often it occurs (most frequent first)."""
    known = set(chars)
    outside = Counter(char for char in text if char not in known)
    return dict(outside.most_common())


def as_indices(chars: list[str], text: str) -> list[tuple[str, int | None]]:
    """Each character of text with its id; None for a character outside the vocabulary."""
    index = {char: i for i, char in enumerate(chars)}
    return [(char, index.get(char)) for char in text]


def id_bytes(vocab_size: int) -> int:
    """Bytes one stored id takes: the smallest unsigned integer holding vocab_size - 1 (as corpus.Vocab.dtype)."""
    return np.min_scalar_type(max(0, vocab_size - 1)).itemsize


# --- windows and targets ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DataDesign:
    """How a text of n characters becomes training examples, and the memory they take."""
    name: str
    examples: int       # targets the model learns from in one pass
    input_bytes: int    # what the inputs take in memory
    target_bytes: int   # what the targets take (0 when they are a view of the inputs)

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.target_bytes


def window_design(n_chars: int, vocab_size: int, window: int = KERAS_WINDOW) -> DataDesign:
    """The 2017 tutorial's design: every `window` characters in a row make one example, the next one its target.

    As Keras held it: each window copied out as `window` float32 inputs (id / vocab_size), each target as a
    one-hot row of vocab_size float32s.
    """
    _check_sizes(n_chars, vocab_size, window)
    examples = max(0, n_chars - window)
    return DataDesign("2017: one target per window", examples,
                      input_bytes=examples * window * FLOAT32_BYTES,
                      target_bytes=examples * vocab_size * FLOAT32_BYTES)


def stream_design(n_chars: int, vocab_size: int) -> DataDesign:
    """Today's design: the text stays one array of ids; every character but the first is a target.

    Inputs and targets are the same array read one position apart, so the text is stored once.
    """
    _check_sizes(n_chars, vocab_size, 1)
    return DataDesign("today: every position a target", max(0, n_chars - 1),
                      input_bytes=n_chars * id_bytes(vocab_size), target_bytes=0)


def window_example(ids: list[int], vocab_size: int, start: int, window: int) -> tuple[list[int], list[float], int]:
    """The 2017 example at `start`: (the window's ids, the floats the model reads, id / vocab_size; the target id)."""
    if not 0 <= start <= len(ids) - window - 1:
        raise ValueError(f"a window of {window} and its target need {window + 1} characters from position {start}; "
                         f"the text has {len(ids)}")
    inputs = list(ids[start:start + window])
    return inputs, [i / vocab_size for i in inputs], ids[start + window]


def _check_sizes(n_chars: int, vocab_size: int, window: int) -> None:
    if n_chars < 0 or vocab_size < 1 or window < 1:
        raise ValueError(f"need a text of 0 or more characters, a vocabulary of at least 1 and a window of at "
                         f"least 1; got {n_chars}, {vocab_size} and {window}")


# --- the model --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    name: str                              # "Embedding", "LSTM layer 1", ...
    does: str                              # one line for people
    dims: tuple[str, ...]                  # its output's axes by letter: B batch, T sequence, E, H, V
    output_shape: tuple[int, ...]          # the same for the batch and sequence length asked for
    weights: dict[str, tuple[int, ...]]    # its weights by state_dict name, with their shapes

    @property
    def parameters(self) -> int:
        return sum(math.prod(shape) for shape in self.weights.values())


def layer_table(config: ModelConfig, batch: int, seq_len: int) -> list[Layer]:
    """The layers in the order a character goes through them, with shapes for (batch, seq_len) ids.

    The weights are ModelConfig.weight_shapes() grouped by layer, so the parameters add up to
    config.num_parameters().
    """
    if batch < 1 or seq_len < 1:
        raise ValueError(f"batch and sequence length must be at least 1; got {batch} and {seq_len}")
    shapes = config.weight_shapes()
    B, T, H, V = batch, seq_len, config.hidden_size, config.vocab_size
    layers = [Layer("Input ids", f"{B} rows of {T} character ids, whole numbers in [0, {V})", ("B", "T"), (B, T), {})]
    if config.input_mode == "embedding":
        layers.append(Layer("Embedding", f"each id picks its row of {config.embed_dim} learned numbers",
                            ("B", "T", "E"), (B, T, config.embed_dim), {"embed.weight": shapes["embed.weight"]}))
        layers.append(_dropout(config.dropout, ("B", "T", "E"), (B, T, config.embed_dim)))
    else:
        layers.append(Layer("Scaled index", f"each id becomes one number, id / {V}; nothing learned",
                            ("B", "T", "1"), (B, T, 1), {}))
    for k in range(config.num_layers):
        if k > 0:
            layers.append(_dropout(config.dropout, ("B", "T", "H"), (B, T, H)))
        names = [f"lstm.{part}_l{k}" for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        layers.append(Layer(f"LSTM layer {k + 1}",
                            f"{H} units; four gates read the input and the previous step's output, "
                            "a cell carries memory along the sequence",
                            ("B", "T", "H"), (B, T, H), {name: shapes[name] for name in names}))
    layers.append(_dropout(config.dropout, ("B", "T", "H"), (B, T, H)))
    layers.append(Layer("Linear head", f"one score (logit) per character of the vocabulary, {V} in all",
                        ("B", "T", "V"), (B, T, V), {name: shapes[name] for name in ("head.weight", "head.bias")}))
    layers.append(Layer("Softmax", "scores become probabilities that sum to 1 at each position", ("B", "T", "V"),
                        (B, T, V), {}))
    return layers


def _dropout(rate: float, dims: tuple[str, ...], shape: tuple[int, ...]) -> Layer:
    does = (f"in training, zeroes {rate:.0%} of the numbers at random (and scales up the rest); off when writing"
            if rate > 0 else "a dropout rate of 0: passes everything through")
    return Layer("Dropout", does, dims, shape, {})
