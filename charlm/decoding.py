"""Decoding: one small pure function per strategy, and a Stepper that writes one character at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .corpus import Vocab
from .model import CharLSTM, FastStepper, select_rows

STRATEGIES = ("greedy", "sample", "top-k", "top-p", "min-p", "beam")


@dataclass(frozen=True)
class DecodeConfig:
    strategy: str = "top-p"    # one of STRATEGIES
    temperature: float = 0.8   # 0 means greedy whatever the strategy
    top_k: int = 20            # top-k: keep the k most likely characters
    top_p: float = 0.9         # top-p: keep the smallest set holding this much probability
    min_p: float = 0.05        # min-p: keep characters at least this fraction of the best one's probability
    beam_width: int = 5        # beam: hypotheses kept

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if self.temperature < 0:
            raise ValueError("temperature must be 0 or more")
        if self.top_k < 1:
            raise ValueError("top-k must be at least 1")
        if not 0 < self.top_p <= 1:
            raise ValueError("top-p must be in (0, 1]")
        if not 0 <= self.min_p <= 1:
            raise ValueError("min-p must be in [0, 1]")
        if self.beam_width < 1:
            raise ValueError("beam width must be at least 1")


# Each filter takes logits (batch, vocab) as a float numpy array and returns them with the excluded
# characters at -inf. They run in numpy because at batch 1 a torch call costs 5-10 microseconds of
# dispatch on a small CPU, and sampling a character takes a dozen calls (bench/run.py, BENCHMARKS.md).

def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep the k most likely characters (and any tied with the k-th)."""
    vocab = logits.shape[-1]
    k = min(k, vocab)
    kth = np.partition(logits, vocab - k, axis=-1)[:, vocab - k:vocab - k + 1]
    return np.where(logits < kth, -np.inf, logits)


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Keep the fewest most likely characters whose probabilities sum to p (the best one always stays)."""
    ranked = np.sort(logits, axis=-1)[:, ::-1]                             # best first
    probs = np.exp(ranked - ranked[:, :1])                                  # unnormalised, best = 1
    mass = np.cumsum(probs, axis=-1)
    # Drop a character when the mass before it already reaches p of the total.
    keep = mass - probs < p * mass[:, -1:]
    lowest_kept = np.where(keep, ranked, np.inf).min(axis=-1, keepdims=True)
    return np.where(logits < lowest_kept, -np.inf, logits)


def min_p_filter(logits: np.ndarray, min_p: float) -> np.ndarray:
    """Keep characters at least min_p times as likely as the best one."""
    if min_p == 0:
        return logits
    floor = logits.max(axis=-1, keepdims=True) + math.log(min_p)
    return np.where(logits < floor, -np.inf, logits)


def _greedy(cfg: DecodeConfig) -> bool:
    return cfg.strategy in ("greedy", "beam") or cfg.temperature == 0


def filtered(logits: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """(batch, vocab) raw logits -> the logits sampling draws from: temperature, then the strategy's filter."""
    if _greedy(cfg):
        # One character per step is the most likely one: all the mass sits there.
        return np.where(logits < logits.max(axis=-1, keepdims=True), -np.inf, logits)
    logits = logits / cfg.temperature
    if cfg.strategy == "top-k":
        return top_k_filter(logits, cfg.top_k)
    if cfg.strategy == "top-p":
        return top_p_filter(logits, cfg.top_p)
    if cfg.strategy == "min-p":
        return min_p_filter(logits, cfg.min_p)
    return logits


def transform(logits: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """Logits after the strategy's temperature and filter: what is sampled from (and what a UI shows)."""
    return torch.from_numpy(filtered(_as_numpy(logits), cfg)).to(logits.device)


def pick(logits: np.ndarray, cfg: DecodeConfig, u: np.ndarray | None) -> np.ndarray:
    """(batch, vocab) raw logits and (batch, 1) uniforms in [0, 1) -> (batch,) ids: the strategy's choice.

    Greedy, beam and temperature 0 take the argmax and need no uniforms.
    """
    if _greedy(cfg):
        return logits.argmax(-1)
    return draw(filtered(logits, cfg), u)


def choose(logits: torch.Tensor, cfg: DecodeConfig, generator: torch.Generator | None) -> torch.Tensor:
    """pick() for tensors: (batch, vocab) raw logits -> (batch,) chosen ids, drawing uniforms from `generator`."""
    if _greedy(cfg):
        return logits.argmax(-1)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device)
    return torch.from_numpy(pick(_as_numpy(logits), cfg, _as_numpy(u))).to(logits.device)


def uniforms(generator: torch.Generator, rows: int, block: int = 256):
    """Yield (rows, 1) uniforms forever, drawn `block` steps at a time.

    On the CPU the numbers come out in the same order as one torch.rand((rows, 1)) per step, so a
    whole text and a step-by-step session with the same seed write the same characters.
    """
    while True:
        yield from _as_numpy(torch.rand((block, rows, 1), generator=generator, device=generator.device))


def draw(logits: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(batch, vocab) logits and (batch, 1) uniforms in [0, 1) -> (batch,) ids drawn from softmax(logits).

    Inverts the cumulative sum: the id is how many cumulative masses lie at or below u x total.
    A character filtered to -inf has zero width and is never drawn; since u < 1 and the sums are in
    float64, u x total stays below the total, so the draw never runs past the last allowed character.
    """
    weights = np.exp((logits - logits.max(axis=-1, keepdims=True)).astype(np.float64))
    cdf = np.cumsum(weights, axis=-1)
    return (cdf <= u * cdf[:, -1:]).sum(axis=-1)


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
        state = self.model.init_state(batch)
        if not prime_ids:
            prime_ids = [self._default_start()]
        ids = torch.tensor([prime_ids] * batch, device=self.device)
        if len(prime_ids) > 1:
            _, state = self.model(ids[:, :-1], state)
        return self.fast.step(ids[:, -1], state)

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
             num_samples: int = 1, seed: int | None = None, window: int | None = None, on_text=None) -> Generation:
    """Write `length` characters after `prime`, `num_samples` times. on_text(list_of_texts) streams progress."""
    if length < 0 or num_samples < 1:
        raise ValueError("length must be 0 or more and the number of samples at least 1")
    stepper = Stepper(model, vocab, window)
    prime_ids, missing = stepper.encode_prime(prime)
    if cfg.strategy == "beam":
        # The best n texts need at least n beams.
        texts, scores = beam_search(stepper, prime_ids, length, max(cfg.beam_width, num_samples), num_samples)
        return Generation(texts, missing, scores)
    generator = torch.Generator(device=stepper.device)
    generator.manual_seed(seed if seed is not None else torch.seed())
    us = None if _greedy(cfg) else uniforms(generator, num_samples)
    logits, state = stepper.start(prime_ids, num_samples)
    # On the CPU the loop runs on numpy arrays end to end: at batch 1 a character costs about as much
    # as the Python calls it makes, and a tensor made per character would double that.
    on_arrays = stepper.window is None and stepper.fast.on_cpu
    if on_arrays:
        state = [(h.numpy(), c.numpy()) for h, c in state]
    history = [list(prime_ids) for _ in range(num_samples)]
    out = [[] for _ in range(num_samples)]
    for i in range(length):
        chosen = pick(_as_numpy(logits), cfg, None if us is None else next(us))      # (batch,)
        for row, c in zip(out, chosen.tolist()):
            row.append(c)
        if i + 1 < length:
            if on_arrays:
                logits, state = stepper.fast.step_arrays(chosen, state)
            else:
                if stepper.window:
                    for h, c in zip(history, chosen.tolist()):
                        h.append(c)
                logits, state = stepper.advance(torch.from_numpy(chosen), state, history)
        if on_text is not None and ((i + 1) % 32 == 0 or i + 1 == length):
            if on_text([vocab.decode(r) for r in out]) is False:
                break
    return Generation([vocab.decode(r) for r in out], missing)


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
        self.generator = torch.Generator(device=self.stepper.device)
        self.generator.manual_seed(seed)
        self.history = list(prime_ids)
        self.chosen: list[int] = []
        logits, state = self.stepper.start(prime_ids, 1)
        self._stack = [(logits, state, self.generator.get_state())]

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
            chosen = choose(logits, self.cfg, self.generator)
        else:
            if len(char) != 1 or char not in self.vocab.chars:
                raise ValueError(f"the model does not know the character {char!r}; pick one from its vocabulary")
            chosen = torch.tensor([self.vocab.chars.index(char)], device=self.stepper.device)
        self.chosen.append(int(chosen[0]))
        self.history.append(int(chosen[0]))
        logits, state = self.stepper.advance(chosen, state, [self.history])
        self._stack.append((logits, state, self.generator.get_state()))
        return self.vocab.chars[self.chosen[-1]]

    def undo(self) -> bool:
        """Take back the last character; False when there is nothing to undo."""
        if not self.chosen:
            return False
        self._stack.pop()
        self.chosen.pop()
        self.history.pop()
        self.generator.set_state(self._stack[-1][2])
        return True
