"""Decoding with a torch model: the Stepper that carries its state, whole texts, beam search, step sessions.

The strategies themselves are small numpy functions in sampling.py."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .corpus import Vocab
from .model import CharLSTM, FastStepper, select_rows
from .sampling import STRATEGIES, DecodeConfig, filtered, pick, write_ids  # noqa: F401  (STRATEGIES: for callers)


def transform(logits: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """Logits after the strategy's temperature and filter: what is sampled from (and what a UI shows)."""
    return torch.from_numpy(filtered(_as_numpy(logits), cfg)).to(logits.device)


def choose(logits: torch.Tensor, cfg: DecodeConfig, rng: np.random.Generator) -> torch.Tensor:
    """pick() for tensors: (batch, vocab) raw logits -> (batch,) chosen ids, drawing uniforms from `rng`."""
    if cfg.greedy:
        return logits.argmax(-1)
    u = rng.random((logits.shape[0], 1))
    return torch.from_numpy(pick(_as_numpy(logits), cfg, u)).to(logits.device)


def _as_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float32 (or int) CPU view of a tensor: no copy for a CPU tensor; an array passes through."""
    if isinstance(t, np.ndarray):
        return t
    t = t.detach()
    if t.is_floating_point() and t.dtype != torch.float32:
        t = t.float()
    return t.cpu().numpy()


class Stepper:
    """Carries the LSTM state forward one character at a time, for any number of parallel samples.

    A window model (the 2017 preset) instead re-reads its last `window` characters from a zero state
    for every step, as the tutorial did.
    """

    def __init__(self, model: CharLSTM, vocab: Vocab, window: int | None = None):
        self.model = model.eval()
        self.vocab = vocab
        self.window = window
        self.device = next(model.parameters()).device
        self.fast = FastStepper(model)

    def encode_prime(self, prime: str) -> tuple[list[int], list[str]]:
        """-> (ids, characters the model never saw). Unseen characters become the unknown symbol or are skipped."""
        missing = self.vocab.missing(prime)
        if missing and self.vocab.unknown_id is None:
            prime = "".join(ch for ch in prime if ch not in set(missing))
        return [int(i) for i in self.vocab.encode(prime)], missing

    @torch.no_grad()
    def start(self, prime_ids: list[int], batch: int = 1):
        """Read the prime; -> (logits (batch, vocab) for the next character, state)."""
        if self.window:
            return self._window_logits([list(prime_ids)] * batch), None
        if self.fast.arrays is not None:
            logits, state = self.start_arrays(prime_ids, batch)
            return torch.from_numpy(logits), [(torch.from_numpy(h), torch.from_numpy(c)) for h, c in state]
        state = self.model.init_state(batch)
        ids = torch.tensor([prime_ids or [self._default_start()]] * batch, device=self.device)
        if ids.shape[1] > 1:
            _, state = self.model(ids[:, :-1], state)
        return self.fast.step(ids[:, -1], state)

    def start_arrays(self, prime_ids: list[int], batch: int = 1):
        """start() on the CPU's numpy arrays: the prime is read one character at a time, as generation
        steps, so every CPU path (whole text, step mode, the app's first sample) computes the same numbers."""
        return self.fast.arrays.read(prime_ids or [self._default_start()], batch)

    @torch.no_grad()
    def advance(self, chosen: torch.Tensor, state, history: list[list[int]] | None = None):
        """Feed the chosen ids (batch,); -> (logits for the next character, new state)."""
        if self.window:
            return self._window_logits(history), None
        return self.fast.step(chosen.to(self.device), state)

    def _window_logits(self, history: list[list[int]]) -> torch.Tensor:
        rows = [h[-self.window:] or [self._default_start()] for h in history]
        width = max(len(r) for r in rows)
        # Left-pad short rows by repeating their first id; the tutorial always had full windows.
        ids = torch.tensor([[r[0]] * (width - len(r)) + r for r in rows], device=self.device)
        logits, _ = self.model(ids)
        return logits[:, -1]

    def _default_start(self) -> int:
        chars = self.vocab.chars
        return chars.index("\n") if "\n" in chars else 0


@dataclass
class Generation:
    texts: list[str]                      # one per sample, without the prime
    missing: list[str] = field(default_factory=list)   # prime characters outside the vocabulary
    scores: list[float] | None = None     # beam: total log-probability of each text (nats)


@torch.no_grad()
def generate(model: CharLSTM, vocab: Vocab, prime: str = "", length: int = 200, cfg: DecodeConfig = DecodeConfig(),
             num_samples: int = 1, seed: int | None = None, window: int | None = None, on_text=None,
             on_new_text=None) -> Generation:
    """Write `length` characters after `prime`, `num_samples` times.

    Streaming, every 32 characters: on_text(texts) gets the full texts so far, one str per sample (for a page
    that redraws them); on_new_text(pieces) gets only what each text gained since the last call (for output
    that appends: handing over full texts copies them every time, quadratic in the length). Either one
    returning False stops early.
    """
    if length < 0 or num_samples < 1:
        raise ValueError("length must be 0 or more and the number of samples at least 1")
    if seed is not None and seed < 0:
        raise ValueError("the seed must be 0 or more")
    stepper = Stepper(model, vocab, window)
    prime_ids, missing = stepper.encode_prime(prime)
    if cfg.strategy == "beam":
        # The best n texts need at least n beams.
        texts, scores = beam_search(stepper, prime_ids, length, max(cfg.beam_width, num_samples), num_samples)
        return Generation(texts, missing, scores)
    rng = np.random.default_rng(seed)
    if stepper.window is None and stepper.fast.arrays is not None:
        # On the CPU the loop runs on numpy arrays end to end: a tensor made per character would
        # double the cost of a character at batch 1.
        logits, state = stepper.start_arrays(prime_ids, num_samples)
        step = stepper.fast.arrays.step
    else:
        logits, state = stepper.start(prime_ids, num_samples)
        logits = _as_numpy(logits)
        history = [list(prime_ids) for _ in range(num_samples)]

        def step(chosen: np.ndarray, state):
            if stepper.window:
                for h, c in zip(history, chosen.tolist()):
                    h.append(c)
            logits, state = stepper.advance(torch.from_numpy(chosen), state, history)
            return _as_numpy(logits), state

    on_ids = None if on_text is None and on_new_text is None else _streamer(vocab, on_text, on_new_text)
    out = write_ids(step, logits, state, length, cfg, rng, on_ids)
    return Generation([vocab.decode(r) for r in out], missing)


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


@torch.no_grad()
def beam_search(stepper: Stepper, prime_ids: list[int], length: int, width: int,
                num_results: int = 1) -> tuple[list[str], list[float]]:
    """Keep the `width` most probable continuations; -> the best `num_results` texts and their log-probabilities."""
    vocab = stepper.vocab
    logits, state = stepper.start(prime_ids, 1)
    seqs = [[]]
    scores = torch.zeros(1, device=stepper.device)
    histories = [list(prime_ids)]
    for i in range(length):
        logp = F.log_softmax(logits.float(), -1)                     # (beams, vocab)
        total = (scores[:, None] + logp).flatten()
        top = torch.topk(total, min(width, total.numel()))
        beam_idx = torch.div(top.indices, logp.shape[1], rounding_mode="floor")
        char_idx = top.indices % logp.shape[1]
        scores = top.values
        beam_list, char_list = beam_idx.tolist(), char_idx.tolist()
        seqs = [seqs[b] + [c] for b, c in zip(beam_list, char_list)]
        if i + 1 == length:
            break
        if stepper.window:
            histories = [histories[b] + [c] for b, c in zip(beam_list, char_list)]
            logits, state = stepper.advance(char_idx, None, histories)
        else:
            state = select_rows(state, beam_idx)
            logits, state = stepper.advance(char_idx, state)
    if length == 0:
        return [""] * num_results, [0.0] * num_results
    n = min(num_results, len(seqs))
    return [vocab.decode(s) for s in seqs[:n]], [float(s) for s in scores[:n]]


def sequence_log_prob(model: CharLSTM, vocab: Vocab, prime: str, text: str) -> float:
    """Total log-probability (nats) the model gives `text` after `prime`; used to compare decoders."""
    stepper = Stepper(model, vocab)
    prime_ids, _ = stepper.encode_prime(prime)
    ids = [int(i) for i in vocab.encode(text)]
    logits, state = stepper.start(prime_ids, 1)
    total = 0.0
    for i, c in enumerate(ids):
        total += float(F.log_softmax(logits.float(), -1)[0, c])
        if i + 1 < len(ids):
            logits, state = stepper.advance(torch.tensor([c]), state)
    return total if math.isfinite(total) else float("-inf")


class StepSession:
    """Step-by-step writing for a person: see the candidates, take the model's pick or your own, undo."""

    def __init__(self, model: CharLSTM, vocab: Vocab, prime: str = "", cfg: DecodeConfig = DecodeConfig(),
                 seed: int = 0, window: int | None = None):
        self.vocab, self.cfg = vocab, cfg
        self.stepper = Stepper(model, vocab, window)
        prime_ids, self.missing = self.stepper.encode_prime(prime)
        self.prime = vocab.decode(prime_ids)
        self.rng = np.random.default_rng(seed)
        self.history = list(prime_ids)
        self.chosen: list[int] = []
        logits, state = self.stepper.start(prime_ids, 1)
        self._stack = [(logits, state, self.rng.bit_generator.state)]

    @property
    def text(self) -> str:
        """What has been written after the prime."""
        return self.vocab.decode(self.chosen)

    def candidates(self, k: int = 10) -> list[tuple[str, float, float]]:
        """The k most likely next characters: (character, probability before, probability after the strategy)."""
        logits = self._stack[-1][0][0].float()
        raw = logits.softmax(-1)
        after = transform(logits[None], self.cfg)[0].softmax(-1)
        top = torch.topk(raw, min(k, raw.numel())).indices.tolist()
        return [(self.vocab.chars[i], float(raw[i]), float(after[i])) for i in top]

    def step(self, char: str | None = None) -> str:
        """Add one character: the strategy's choice, or `char` if given (it must be in the vocabulary)."""
        logits, state, _ = self._stack[-1]
        if char is None:
            chosen = choose(logits, self.cfg, self.rng)
        else:
            if len(char) != 1 or char not in self.vocab.chars:
                raise ValueError(f"the model does not know the character {char!r}; pick one from its vocabulary")
            chosen = torch.tensor([self.vocab.chars.index(char)], device=self.stepper.device)
        self.chosen.append(int(chosen[0]))
        self.history.append(int(chosen[0]))
        logits, state = self.stepper.advance(chosen, state, [self.history])
        self._stack.append((logits, state, self.rng.bit_generator.state))
        return self.vocab.chars[self.chosen[-1]]

    def undo(self) -> bool:
        """Take back the last character; False when there is nothing to undo."""
        if not self.chosen:
            return False
        self._stack.pop()
        self.chosen.pop()
        self.history.pop()
        self.rng.bit_generator.state = self._stack[-1][2]
        return True
