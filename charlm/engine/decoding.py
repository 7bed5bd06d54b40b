"""Writing with a trained model: the engine it runs on, whole texts, beam search, scores, step-by-step sessions.

One engine per loaded model does all the stepping: on the CPU the numpy LSTM of arrays.py (float32),
elsewhere (CUDA, MPS) torch's own CharLSTM through charlm.nn.engine.TorchEngine. Both take numpy ids and give numpy
logits, so the strategies (sampling.py) and everything here run the same on every device. A window
model (the 2017 preset) re-reads its last `window` characters for every new one, inside the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from charlm.engine.arrays import ArrayLSTM
from charlm.modelfile.checkpoint import Checkpoint
from charlm.text.corpus import Vocab
from charlm.engine.sampling import STRATEGIES, DecodeConfig, filtered, log_softmax, pick, write  # noqa: F401  (STRATEGIES: callers)
from charlm.errors import UserError
from charlm.workload import StopCheck, check


class Engine(Protocol):
    """What writing and reading step: arrays.ArrayLSTM on the CPU, or charlm.nn.engine.TorchEngine on a GPU.
    Both take numpy ids and give numpy logits; the state is the engine's own."""

    window: int | None

    @property
    def vocab_size(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    def init_state(self, batch: int): ...
    def step(self, ids: np.ndarray, state, clamp=None) -> tuple[np.ndarray, object]: ...
    def read(self, ids: list[int], batch: int = 1) -> tuple[np.ndarray, object]: ...
    def select(self, state, rows: np.ndarray): ...


def engine_for(model, window: int | None = None) -> Engine:
    """The engine that writes with a model, built once: numpy for a checkpoint's weights or a CPU float32
    CharLSTM, TorchEngine otherwise. `window`: a window model's (a checkpoint brings its own).
    A checkpoint never loads torch; a torch model builds its own (CharLSTM.engine, charlm.nn.engine)."""
    if isinstance(model, Checkpoint):
        return ArrayLSTM.from_weights(model.model_config, model.numpy_weights(),
                                      model.window if window is None else window)
    return model.engine(window)


def _engine(model, window: int | None) -> Engine:
    """An engine as given, or one built for a torch model (the CLI's, the trainer's)."""
    if not _is_engine(model):
        return engine_for(model, window)
    if window is not None and window != model.window:
        raise ValueError(f"this engine reads a window of {model.window}; build one with engine_for(model, {window})")
    return model


def _is_engine(model) -> bool:
    return all(callable(getattr(model, name, None)) for name in ("read", "step", "select", "init_state"))


def encode_prime(vocab: Vocab, prime: str) -> tuple[list[int], list[str]]:
    """-> (ids, characters the model never saw). Unseen characters become the unknown symbol or are skipped."""
    return vocab.read(prime)[0].tolist(), vocab.missing(prime)


def start_ids(vocab: Vocab, prime_ids: list[int]) -> list[int]:
    """What the model reads before writing: the prime, or a new line when there is none."""
    return prime_ids or [vocab.chars.index("\n") if "\n" in vocab.chars else 0]


@dataclass
class Generation:
    texts: list[str]                      # one per sample, without the prime
    missing: list[str] = field(default_factory=list)   # prime characters outside the vocabulary
    scores: list[float] | None = None     # beam: total log-probability of each text (nats)


def generate(model, vocab: Vocab, prime: str = "", length: int = 200,
             cfg: DecodeConfig = DecodeConfig(), num_samples: int = 1, seed: int | None = None,
             window: int | None = None, on_text=None, on_new_text=None) -> Generation:
    """Write `length` characters after `prime`, `num_samples` times, with an engine (or a CharLSTM: one is built).

    Streaming, every 32 characters: on_text(texts) gets the full texts so far, one str per sample (for a page
    that redraws them); on_new_text(pieces) gets only what each text gained since the last call (for output
    that appends: handing over full texts copies them every time, quadratic in the length). Either one
    returning False stops early.
    """
    if length < 0 or num_samples < 1:
        raise UserError("length must be 0 or more and the number of samples at least 1")
    if seed is not None and seed < 0:
        raise UserError("the seed must be 0 or more")
    engine = _engine(model, window)
    prime_ids, missing = encode_prime(vocab, prime)
    if cfg.strategy == "beam":
        # The best n texts need at least n beams.
        ids, scores = beam_search(engine, start_ids(vocab, prime_ids), length, max(cfg.beam_width, num_samples),
                                  num_samples)
        return Generation([vocab.decode(row) for row in ids], missing, scores)
    on_ids = None if on_text is None and on_new_text is None else _streamer(vocab, on_text, on_new_text)
    out = write(engine, start_ids(vocab, prime_ids), length, cfg, np.random.default_rng(seed), num_samples, on_ids)
    return Generation([vocab.decode(row) for row in out], missing)


def _streamer(vocab: Vocab, on_text, on_new_text):
    """write_ids' on_ids for generate's two callbacks. It decodes only the ids added since the last call:
    decoding every id on every call made streaming quadratic in the length."""
    texts: list[str] = []
    decoded = 0   # ids per row decoded so far (the rows grow together)

    def on_ids(out: list[list[int]]):
        nonlocal texts, decoded
        pieces = [vocab.decode(row[decoded:]) for row in out]
        decoded = len(out[0])
        if on_new_text is not None and on_new_text(pieces) is False:
            return False
        if on_text is not None:
            # A new list each time: a caller may keep the one it was given (the app does).
            texts = [text + piece for text, piece in zip(texts, pieces)] if texts else pieces
            return on_text(texts)
    return on_ids


def beam_search(engine: Engine, prime_ids: list[int], length: int, width: int,
                num_results: int = 1, should_stop: StopCheck | None = None) -> tuple[list[list[int]], list[float]]:
    """Keep the `width` continuations of highest total log-probability; -> the best `num_results`, best first:
    (ids of each, its log-probability in nats).

    Each step stores only which beam each survivor extends and the character it adds; the texts are
    read back along those pointers at the end, so the work is linear in the length. should_stop() is asked
    before every step; True raises workload.Stopped.
    """
    if length == 0:
        return [[] for _ in range(num_results)], [0.0] * num_results
    logits, state = engine.read(prime_ids, 1)
    scores = np.zeros(1)
    parents, chars = [], []                                          # per step: (beams,) each
    for i in range(length):
        check(should_stop)
        total = (scores[:, None] + log_softmax(logits)).ravel()     # (beams * vocab,)
        best = _best(total, width)
        beams, char = np.divmod(best, logits.shape[1])
        scores = total[best]
        parents.append(beams)
        chars.append(char)
        if i + 1 < length:
            logits, state = engine.step(char, engine.select(state, beams))
    n = min(num_results, len(scores))
    ids = np.empty((n, length), dtype=np.int64)
    beam = np.arange(n)
    for t in range(length - 1, -1, -1):
        ids[:, t] = chars[t][beam]
        beam = parents[t][beam]
    return ids.tolist(), scores[:n].tolist()


def _best(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first."""
    if k < values.size:
        values_k = np.argpartition(-values, k - 1)[:k]
        return values_k[np.argsort(-values[values_k], kind="stable")]
    return np.argsort(-values, kind="stable")


def sequence_log_prob(model, vocab: Vocab, prime: str, text: str,
                      window: int | None = None) -> float:
    """Total log-probability (nats) the model gives `text` after `prime`; used to compare decoders."""
    engine = _engine(model, window)
    logits, state = engine.read(start_ids(vocab, encode_prime(vocab, prime)[0]), 1)
    ids = [int(i) for i in vocab.encode(text)]
    total = 0.0
    for i, c in enumerate(ids):
        total += float(log_softmax(logits)[0, c])
        if i + 1 < len(ids):
            logits, state = engine.step(np.array([c]), state)
    return total if math.isfinite(total) else float("-inf")


class StepSession:
    """Step-by-step writing for a person: see the candidates, take the model's pick or your own, undo."""

    def __init__(self, model, vocab: Vocab, prime: str = "", cfg: DecodeConfig = DecodeConfig(),
                 seed: int = 0, window: int | None = None):
        self.vocab, self.cfg = vocab, cfg
        self.engine = _engine(model, window)
        prime_ids, self.missing = encode_prime(vocab, prime)
        self.prime = vocab.decode(prime_ids)
        self.rng = np.random.default_rng(seed)
        self.chosen: list[int] = []
        logits, state = self.engine.read(start_ids(vocab, prime_ids), 1)
        # One entry per character written, and the start: what undo goes back to.
        self._stack = [(logits, state, self.rng.bit_generator.state)]

    @property
    def text(self) -> str:
        """What has been written after the prime."""
        return self.vocab.decode(self.chosen)

    def candidates(self, k: int = 10) -> list[tuple[str, float, float]]:
        """The k most likely next characters: (character, probability before, probability after the strategy)."""
        logits = self._stack[-1][0]                                   # (1, vocab)
        raw = np.exp(log_softmax(logits))[0]
        after = np.exp(log_softmax(filtered(logits, self.cfg)))[0]
        top = np.argsort(-raw, kind="stable")[:k]
        return [(self.vocab.chars[i], float(raw[i]), float(after[i])) for i in top]

    def step(self, char: str | None = None) -> str:
        """Add one character: the strategy's choice, or `char` if given (it must be in the vocabulary)."""
        logits, state, _ = self._stack[-1]
        if char is None:
            # One uniform per step, as sampling.uniforms hands them to a whole text: the same seed writes the same.
            chosen = int(pick(logits, self.cfg, None if self.cfg.greedy else self.rng.random((1, 1)))[0])
        elif len(char) != 1 or char not in self.vocab.chars:
            raise UserError(f"the model does not know the character {char!r}; pick one from its vocabulary")
        else:
            chosen = self.vocab.chars.index(char)
        self.chosen.append(chosen)
        logits, state = self.engine.step(np.array([chosen]), state)
        self._stack.append((logits, state, self.rng.bit_generator.state))
        return self.vocab.chars[chosen]

    def undo(self) -> bool:
        """Take back the last character; False when there is nothing to undo."""
        if not self.chosen:
            return False
        self._stack.pop()
        self.chosen.pop()
        self.rng.bit_generator.state = self._stack[-1][2]
        return True
