"""Write mode's record of a text and how it is shown (with its download and use-as-prime buttons), and the
sample a visitor's first view opens with.

Nothing here imports torch: on a cold start torch takes about two seconds to import, so the first
sample is written by numpy from the shipped model file (checkpoints/demo.safetensors, read by
charlm.modelfile.format) and is on the page while the rest of it loads.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from app import charts
from charlm.modelfile import format as modelfile
from charlm.engine import sampling
from charlm.engine.arrays import ArrayLSTM
from charlm.engine.sampling import DecodeConfig
from charlm.units import LN2, plural

SHIPPED_FILE = Path(__file__).resolve().parent.parent / "checkpoints" / "demo.safetensors"
SHIPPED_LABEL = "Demo model (shipped, Nietzsche)"
WRITE = "gen_write_state"    # session_state key of the latest Write
PRIME = "gen_prime"          # session_state key of the prime box
PRIME_MAX_CHARS = 2000       # what the prime box holds
DEFAULT_PRIME = "The "
DEFAULT_LENGTH = 500
DEFAULTS = DecodeConfig()    # the page's initial strategy and knobs: top-p 0.9, temperature 0.8
_LOG = logging.getLogger(__name__)

STRATEGY_NAMES = {
    "greedy": "greedy",
    "sample": "temperature",
    "top-k": "top-k",
    "top-p": "top-p (nucleus)",
    "min-p": "min-p",
    "beam": "beam search",
}
SEEDLESS = ("greedy", "beam")   # strategies that draw nothing at random: a seed changes nothing


@dataclass
class WriteState:
    """The latest Write run, kept so a Stop click (which interrupts the run) keeps what was written.

    A Stop click starts the next script run at once (Streamlit's fastReruns) while the interrupted run goes on
    writing until its next st call. The lock makes the stop final: once the next run has marked the Write
    stopped and shown its texts, the interrupted run can no longer change them.
    """
    prime: str
    texts: list[str]
    caption: str
    running: bool = True
    stopped: bool = False
    missing: list[str] = field(default_factory=list)
    scores: list[float] | None = None
    first_view: bool = False   # the shipped model's sample a first view opens with
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def grow(self, texts: list[str]) -> bool:
        """The writing run's texts so far; False once the Write was stopped (they are then left as shown)."""
        with self._lock:
            if self.running:
                self.texts = texts
            return self.running

    def stop(self) -> None:
        """A later run found this Write still running: a Stop click interrupted it. What it holds is final."""
        with self._lock:
            if self.running:
                self.running, self.stopped = False, True

    def finish(self, texts: list[str], scores: list[float] | None) -> bool:
        """The writing run's whole texts; False (nothing changed) when the Write was stopped meanwhile."""
        with self._lock:
            if not self.running:
                return False
            self.running, self.texts, self.scores = False, texts, scores
            return True


def describe_cfg(cfg: DecodeConfig) -> str:
    knob = {"top-k": f", k {cfg.top_k}", "top-p": f", p {cfg.top_p:g}", "min-p": f", min-p {cfg.min_p:g}",
            "beam": f", width {cfg.beam_width}"}.get(cfg.strategy, "")
    temperature = "" if cfg.strategy in ("greedy", "beam") else f", temperature {cfg.temperature:g}"
    return f"{STRATEGY_NAMES[cfg.strategy]}{knob}{temperature}"


def caption(label: str, cfg: DecodeConfig, seed: int) -> str:
    seed_part = "" if cfg.strategy in SEEDLESS else f" · seed {seed}"
    return f"{charts.escape_markdown(label)} · {describe_cfg(cfg)}{seed_part}"


def plain_text(slot, text: str) -> None:
    """Text exactly as written: a code block, so markdown never touches it (st.code drops one newline each end)."""
    slot.code("\n" + text + "\n", language=None, wrap_lines=True)


def show(write: WriteState, status, slots, actions: bool = False) -> None:
    """The caption line and the texts of a finished (or stopped) Write; beam's each with its log-probability.

    actions: each text's download and use-as-prime buttons (drawn once per run: the first view's sample is
    drawn early without them, then again with them).
    """
    done = len(write.texts[0]) if write.texts else 0
    note = f" · stopped after {plural(done, 'character')}" if write.stopped else f" · {plural(done, 'character')}"
    status.caption(write.caption + note)
    for i, (slot, text) in enumerate(zip(slots, write.texts)):
        with slot.container():
            if write.scores:
                st.caption(beam_label(i, len(write.texts), write.scores[i], len(text)))
            plain_text(st, write.prime + text)
            if actions:
                text_actions(write.prime + text, f"charlm-text-{i + 1}.txt", download_key=f"download_text_{i}",
                             prime_key=f"use_as_prime_{i}")


def beam_label(i: int, beams: int, nats: float, chars: int) -> str:
    """What a beam text's score is: its total log-probability, in bits with nats beside, and per character."""
    best = " (the most probable)" if i == 0 and beams > 1 else ""
    per_char = -nats / max(1, chars) / LN2
    return (f"Beam {i + 1} of {beams}{best}: log-probability −{-nats / LN2:.1f} bits (−{-nats:.1f} nats) for its "
            f"{plural(chars, 'character')}, {per_char:.2f} bits/char; closer to 0 is more probable.")


def as_prime(text: str) -> str:
    """A text for the prime box: its last PRIME_MAX_CHARS characters (the end is what the model continues)."""
    return text[-PRIME_MAX_CHARS:]


def _use_as_prime(text: str) -> None:
    st.session_state[PRIME] = as_prime(text)


def text_actions(text: str, file_name: str, download_key: str, prime_key: str) -> None:
    """Save a text (UTF-8 .txt), or put it into the prime box to continue it."""
    row = st.container(horizontal=True)
    row.download_button("Download the text (.txt)", data=text.encode("utf-8"), file_name=file_name,
                        mime="text/plain", on_click="ignore", icon=":material/download:", key=download_key)
    row.button("Use as prime", on_click=_use_as_prime, args=(text,), icon=":material/input:", key=prime_key,
               help=f"Put this text into the prime box (the last {PRIME_MAX_CHARS:,} characters of a longer one), "
                    "to continue it or step through it.")


def char_label(char: str) -> str:
    """A character for a label or a note: visible whitespace, and markdown characters escaped."""
    return charts.escape_markdown(charts.show_char(char))


def note_missing(missing: list[str]) -> None:
    """Say which characters of the prime the model never saw (Write and Step both read the prime so)."""
    if missing:
        st.info("The model never saw these characters of the prime, so they were left out or shown as "
                f"unknown: {' '.join(char_label(c) for c in missing)}")


@st.cache_resource(show_spinner=False)
def shipped_engine() -> tuple[ArrayLSTM, list[str]] | None:
    """The shipped model's engine and characters, loaded once per server; None if the file is missing or bad."""
    try:
        read = modelfile.read(SHIPPED_FILE)
    except modelfile.ModelFileError:
        return None
    return ArrayLSTM.from_weights(read.config.to_dict(), read.weights, read.window), read.vocab


def first_sample(seed: int | None = None) -> WriteState | None:
    """What Write with the page's defaults gives on the shipped model, written without torch.

    The same seed, prime and settings give the same text as the Write button (tested).
    """
    loaded = shipped_engine()
    if loaded is None:
        return None
    engine, chars = loaded
    index = {c: i for i, c in enumerate(chars)}
    if any(c not in index for c in DEFAULT_PRIME):
        return None
    seed = seed if seed is not None else sampling.fresh_seed()
    started = time.perf_counter()
    prime_ids = [index[c] for c in DEFAULT_PRIME]
    ids = sampling.write(engine, prime_ids, DEFAULT_LENGTH, DEFAULTS, np.random.default_rng(seed))[0]
    text = "".join(chars[i] for i in ids)
    return WriteState(prime=DEFAULT_PRIME, texts=[text], running=False, first_view=True,
                      caption=caption(SHIPPED_LABEL, DEFAULTS, seed) + f" · {time.perf_counter() - started:.1f} s"
                      + " · written as the page opened")


def open_with_a_sample(canvas) -> tuple | None:
    """On a visitor's first view of Write: a sample from the shipped model, drawn into the canvas at once.

    -> the (status, [text]) placeholders it was drawn in, for the page to redraw in place; None when
    nothing was drawn (not a first view, or no usable shipped model).
    """
    if WRITE in st.session_state or st.session_state.get("gen_mode", "Write") != "Write":
        return None
    try:
        write = first_sample()
    except Exception:   # a nicety, never a reason for the page to fail: it opens without a sample
        _LOG.exception("the first view's sample could not be written")
        return None
    if write is None:
        return None
    st.session_state[WRITE] = write
    with canvas:
        placeholders = (st.empty(), [st.empty()])
    show(write, *placeholders)
    return placeholders
