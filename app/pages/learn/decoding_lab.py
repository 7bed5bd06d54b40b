"""Decoding lab: one prime and one seed through several decoding strategies, side by side, each text measured."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import models, plain
from app.learn import common, lab
from app.writing import STRATEGY_NAMES, describe_cfg, note_missing
from charlm import workload
from charlm.engine import sampling
from charlm.engine import scoring
from charlm.learn import textstats
from charlm.learn.copying import Copy
from charlm.engine.decoding import STRATEGIES, DecodeConfig, beam_search, encode_prime, start_ids
from charlm.units import LN2

TITLE = "Decoding lab"
INTRO = (
    "The model gives a probability to every possible next character; a **decoding strategy** decides which "
    "one to write. **Greedy** always takes the likeliest, **temperature** sharpens or flattens the "
    "distribution before drawing, **top-k**, **top-p** and **min-p** draw only among the likelier "
    "characters, and **beam search** keeps several whole continuations and returns the most probable. "
    "Here one prime and one seed go through each strategy you pick. Under each text: how probable the model "
    "finds it (mean log-probability per character; closer to 0 is more probable), how much it repeats "
    "itself, and, when the training text is here, the longest span it copies from it."
)
RESULTS = "dl_results"   # session_state: the latest run's inputs and texts, so a rerun does not write again
FEWEST = 10              # characters per strategy worth showing; under this the lab writes nothing


@dataclass
class Written:
    cfg: DecodeConfig
    text: str                 # what the strategy wrote after the prime
    mean_nats: float          # mean -ln p per character of text, under the model, after the prime
    repeated: float           # share of 4-grams seen before in the text
    distinct: float           # distinct 2-grams / all 2-grams
    copy: Copy | None         # longest span found in the training text (None: none, or the text is not here)


def controls(vocab_size: int, window: int | None) -> tuple[str, int, int, list[DecodeConfig]]:
    """The prime, seed, length and the chosen strategies with their knobs."""
    c1, c2, c3 = st.columns([3, 1, 2])
    prime = c1.text_input("Prime (the model reads it, then continues)", value="The ", max_chars=500, key="dl_prime")
    seed = int(c2.number_input("Seed", min_value=0, value=0, step=1, key="dl_seed",
                               help="Every sampling strategy draws with the same random numbers."))
    length = c3.slider("Length (characters)", 20, 600, 200, 10, key="dl_length")
    # A window model re-reads its window for every beam at every character: seconds, not a fraction of one.
    default = [s for s in STRATEGIES if not (window and s == "beam")]
    chosen = st.multiselect("Strategies", STRATEGIES, default=default, format_func=STRATEGY_NAMES.get,
                            key="dl_strategies")
    if window and "beam" in chosen:
        st.caption(f"Beam search with this model takes a few seconds: it re-reads {window} characters for each "
                   "beam at every step.")
    with st.expander("Knobs", expanded=False):
        k1, k2, k3, k4, k5 = st.columns(5)
        temperature = k1.slider("Temperature", 0.05, 2.0, 0.8, 0.05, key="dl_temperature",
                                help="For temperature, top-k, top-p and min-p.")
        top_k = k2.slider("k (top-k)", 1, min(100, vocab_size), min(20, vocab_size), key="dl_top_k")
        top_p = k3.slider("p (top-p)", 0.05, 1.0, 0.9, 0.05, key="dl_top_p")
        min_p = k4.slider("min-p", 0.0, 1.0, 0.05, 0.01, key="dl_min_p")
        width = k5.slider("Beam width", 1, 16, 5, key="dl_beam_width")
    cfgs = [DecodeConfig(strategy, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, beam_width=width)
            for strategy in STRATEGIES if strategy in chosen]
    return prime, seed, length, cfgs


def cost_s(shape: workload.Shape, prime: int, length: int, cfgs: list[DecodeConfig]) -> float:
    """What write_all will cost (seconds of one core, estimated): each strategy writes, then its text is scored."""
    writing = sum(workload.beam_s(shape, prime, length, cfg.beam_width) if cfg.strategy == "beam"
                  else workload.write_s(shape, prime, length) for cfg in cfgs)
    return writing + len(cfgs) * workload.score_s(shape, prime + length, length)


def bounded_length(model: models.LoadedModel, prime: int, length: int, cfgs: list[DecodeConfig]) -> int:
    """The characters per strategy the lab writes: the length asked, or fewer to stay within the budget (a line
    says so); 0 when not even FEWEST fit (a line says what to lower)."""
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: cost_s(shape, prime, n, cfgs), length)
    if most >= length:
        return length
    lower = "shorten the prime or the length, or pick fewer strategies" + \
        (" (beam search re-reads the window for every beam)" if shape.window and any(
            cfg.strategy == "beam" for cfg in cfgs) else "")
    if most < FEWEST:
        st.warning(common.over_budget(shape, f"the lab cannot write {FEWEST} characters per strategy with this "
                                             "prime and these strategies", lower))
        return 0
    st.info(common.over_budget(shape, f"the lab writes at most {most} characters per strategy with this prime "
                                      "and these strategies", lower))
    return most


def write_all(model: models.LoadedModel, prime_ids: list[int], seed: int, length: int,
              cfgs: list[DecodeConfig], at_hand: common.TextAtHand | None,
              should_stop: workload.StopCheck | None = None) -> list[Written]:
    """Each strategy's text from the same prime, scored by the model and searched for in the training text.
    should_stop: asked every few characters; True raises workload.Stopped."""
    index = lab.copy_index(at_hand.text, model.info.get("corpus_sha256") or common.corpus_sha(at_hand.corpus)) \
        if at_hand is not None else None
    prime = model.vocab.decode(prime_ids)
    out = []
    for cfg in cfgs:
        if cfg.strategy == "beam":
            ids = beam_search(model.engine, prime_ids, length, cfg.beam_width, should_stop=should_stop)[0][0]
        else:
            ids = sampling.write(model.engine, prime_ids, length, cfg, np.random.default_rng(seed),
                                 should_stop=should_stop)[0]
        text = model.vocab.decode(ids)
        scored = scoring.score_text(model.engine, model.chars, prime + text, start=len(prime), top=0,
                                    should_stop=should_stop) if text else None
        out.append(Written(cfg, text, scored.mean_nats if scored else math.nan, textstats.repetition_rate(text, 4),
                           textstats.distinct_ngrams(text, 2), index.longest(text) if index else None))
    return out


def percent(share: float) -> str:
    return "–" if math.isnan(share) else f"{share:.0%}"


def show(prime: str, results: list[Written], copies_checked: bool) -> None:
    for start in range(0, len(results), 3):
        for column, written in zip(st.columns(3, gap="medium"), results[start:start + 3]):
            with column:
                st.markdown(f"**{STRATEGY_NAMES[written.cfg.strategy]}**")
                knobs = describe_cfg(written.cfg).removeprefix(STRATEGY_NAMES[written.cfg.strategy]).lstrip(", ")
                if knobs:
                    st.caption(plain.escape(knobs))
                plain.block(prime + written.text)
                st.caption(f"log-probability {-written.mean_nats / LN2:.3f} bits/char ({-written.mean_nats:.3f} "
                           f"nats) · repeated 4-grams {percent(written.repeated)} · distinct 2-grams "
                           f"{percent(written.distinct)}")
                if copies_checked:
                    copy = written.copy
                    if copy is None:
                        st.caption("No character of it is in the training text.")
                    else:
                        st.caption(f"Longest span copied from the training text: {copy.length} characters")
                        st.code(written.text[copy.start:copy.end], language=None, wrap_lines=True)
    rows = [{"strategy": describe_cfg(w.cfg), "log-probability (bits/char)": -w.mean_nats / LN2,
             "repeated 4-grams": w.repeated, "distinct 2-grams": w.distinct}
            | ({"longest copy (chars)": w.copy.length if w.copy else 0} if copies_checked else {})
            for w in results]
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"log-probability (bits/char)": st.column_config.NumberColumn(format="%.3f"),
                                "repeated 4-grams": st.column_config.NumberColumn(format="percent"),
                                "distinct 2-grams": st.column_config.NumberColumn(format="percent")})
    findings = lab.decoding_findings([(STRATEGY_NAMES[w.cfg.strategy], -w.mean_nats / LN2, w.repeated, w.distinct)
                                      for w in results])
    # Said from this run's numbers: a fixed lesson ("greedy loops") is false for many a model and prime.
    st.caption(plain.escape(" ".join(findings)) if findings else
               "Pick two or more strategies to compare them in the table.")


def lab_page(model: models.LoadedModel) -> None:
    at_hand, line = common.training_text(model)
    prime, seed, length, cfgs = controls(len(model.vocab), model.window)
    if not cfgs:
        st.info("Pick at least one strategy.")
        return
    ids, missing = encode_prime(model.vocab, prime)
    note_missing(missing)
    prime_ids = start_ids(model.vocab, ids)
    length = bounded_length(model, len(prime_ids), length, cfgs)
    if not length:
        return
    key = (model.key, id(model.engine), tuple(prime_ids), seed, length, tuple(cfgs), at_hand is not None)
    kept = st.session_state.get(RESULTS)
    if kept is None or kept[0] != key:
        slow = " (this model re-reads its window for every character: a few seconds)" if model.window else ""
        with st.spinner(f"Writing with {len(cfgs)} strateg{'y' if len(cfgs) == 1 else 'ies'}{slow}…"):
            try:
                kept = (key, write_all(model, prime_ids, seed, length, cfgs, at_hand, common.should_stop()))
            except workload.Stopped:   # the visitor left or asked for something else: keep nothing
                return
        st.session_state[RESULTS] = kept
    show(model.vocab.decode(ids), kept[1], at_hand is not None)
    if at_hand is None:
        st.caption(f"{plain.escape(line)} Copied spans are looked for when it is.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    lab_page(model)
