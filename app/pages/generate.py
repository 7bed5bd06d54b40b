"""Generate page: pick a model, a prime and a strategy; Write a whole text as it streams (Step: app/step_mode.py)."""

from __future__ import annotations

import time

import streamlit as st

from app import charts, links, models, plain, published, state, writing
from app.step_mode import step_mode
from app.writing import WRITE, WriteState, note_missing, plain_text
from charlm.engine import sampling
from charlm.engine.decoding import STRATEGIES, DecodeConfig, encode_prime, generate
from charlm.errors import UserError

STRATEGY_HELP = {
    "greedy": "Always the single most likely character. Predictable, and prone to loops.",
    "sample": "Draw from the whole distribution, sharpened (temperature < 1) or flattened (> 1).",
    "top-k": "Draw only among the k most likely characters.",
    "top-p": "Draw among the fewest characters that together hold probability p.",
    "min-p": "Draw among characters at least min-p times as likely as the best one.",
    "beam": "Keep the most probable whole continuations, not just the best next character.",
}
RENDER_EVERY_S = 0.08   # streaming redraws at most this often (each redraw sends the text so far)


def available_models() -> list[models.LoadedModel]:
    return models.available(advice=" Train one on the Train page.")


def model_panel(choices: list[models.LoadedModel]) -> models.LoadedModel:
    job = state.job()
    offered = any(m.key == "trained" for m in choices)
    if offered and st.session_state.get("gen_model_offered") != id(job):
        st.session_state["gen_model_offered"] = id(job)   # a new model of this session is offered once, first
        st.session_state["gen_model"] = "trained"
    loaded = models.pick(choices, "Model", "gen_model")
    if loaded.key == "trained" and state.is_running(job):
        st.caption("Training is still going on: this is the best checkpoint so far; a better one replaces it "
                   "when it is written.")
    elif job is not None and not offered:
        st.caption("This session's model appears here after its first evaluation.")
    return loaded


def model_card(loaded: models.LoadedModel) -> None:
    with st.container(border=True):
        if loaded.key in models.SHIPPED:
            card = models.model_card(loaded.key)
            if card:
                st.markdown(card)
            else:
                st.markdown("**Model card.** This model ships with charlm, trained by its command line; its card "
                            "is not in this copy of the project.")
                st.text(loaded.summary)
        elif loaded.key == "trained":
            st.markdown(f"**Trained in this session** on *{plain.escape(state.job().corpus.name)}*.")
            st.text(loaded.summary)
        else:
            st.text(loaded.label)
            st.text(loaded.summary)
        st.page_link("app/pages/train.py", label="Train your own, or upload a checkpoint",
                     icon=":material/model_training:")


# A seed the app draws has up to ten digits, and all must show: the Seed box takes the wider column and goes
# without its - and + buttons, which it does not need (a seed one higher is no nearer a text than any other).
SEED_BOX_STYLE = ("<style>.st-key-gen_seed [data-testid='stNumberInputStepDown'], "
                  ".st-key-gen_seed [data-testid='stNumberInputStepUp'] {display: none;}</style>")


def strategy_controls(vocab_size: int) -> tuple[DecodeConfig, int | None]:
    st.html(SEED_BOX_STYLE)
    c1, c2 = st.columns([4, 5])
    strategy = c1.selectbox("Strategy", STRATEGIES, index=STRATEGIES.index(writing.DEFAULTS.strategy),
                            format_func=writing.STRATEGY_NAMES.get, key="gen_strategy", persist_state="session")
    if strategy in writing.SEEDLESS:   # nothing is drawn at random: no Seed box (the value stays for later)
        seed = st.session_state.get("gen_seed")
    else:
        seed = c2.number_input("Seed", min_value=0, value=None, step=1, placeholder="random", key="gen_seed",
                               persist_state="session",
                               help="The same seed, model, prime and settings give the same text.")
    knobs = {}
    c1, c2 = st.columns(2)
    if strategy in ("sample", "top-k", "top-p", "min-p"):
        knobs["temperature"] = c1.slider("Temperature", 0.0, 2.0, writing.DEFAULTS.temperature, 0.05,
                                         key="gen_temperature", persist_state="session",
                                         help="Below 1 sharpens the distribution, above 1 flattens it; 0 is greedy.")
    if strategy == "top-k":
        knobs["top_k"] = c2.slider("k", 1, min(100, vocab_size), min(20, vocab_size), key="gen_top_k",
                                   persist_state="session")
    elif strategy == "top-p":
        knobs["top_p"] = c2.slider("p", 0.05, 1.0, writing.DEFAULTS.top_p, 0.05, key="gen_top_p",
                                   persist_state="session")
    elif strategy == "min-p":
        knobs["min_p"] = c2.slider("min-p", 0.0, 1.0, 0.05, 0.01, key="gen_min_p", persist_state="session")
    elif strategy == "beam":
        knobs["beam_width"] = c1.slider("Beam width", 1, 16, 5, key="gen_beam_width", persist_state="session")
    st.caption(STRATEGY_HELP[strategy])
    return DecodeConfig(strategy, **knobs), (None if seed is None else int(seed))


def write_mode(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None,
               controls, canvas, intro) -> None:
    """Settings and the Write / Stop buttons in the controls column; the text streams into the canvas."""
    with controls:
        c1, c2 = st.columns(2)
        length = c1.slider("Length (characters)", 10, 2000, writing.DEFAULT_LENGTH, 10, key="gen_length",
                           persist_state="session")
        samples = int(c2.number_input("Samples", 1, 5, 1, key="gen_samples", persist_state="session",
                                      help="Several texts from the same prime, written in one batch "
                                           "(beam search: its most probable ones)."))
        buttons = st.container(horizontal=True)
        go = buttons.button("Write", type="primary", icon=":material/edit:", key="write")
        stop_slot = buttons.empty()

    write: WriteState | None = st.session_state.get(WRITE)
    if write is not None:   # still running: the run that was writing was interrupted by a click (Stop)
        write.stop()

    with canvas:
        write_output(loaded, prime, cfg, seed, write, go, stop_slot, length, samples, intro)


def write_output(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None,
                 write: WriteState | None, go: bool, stop_slot, length: int, samples: int, intro) -> None:
    """Write when asked (streaming, with a Stop button), else show the latest text.

    `intro`: the placeholders the first view's sample was drawn in; it is redrawn there, in place.
    """
    status, intro_slots = intro if intro else (st.empty(), None)
    if go:
        slots = [st.empty() for _ in range(samples)]
        write = write_now(loaded, prime, cfg, seed, length, samples, status, slots, stop_slot)
        if write is None:
            return
    elif write is None:
        status.caption("Press Write: the model writes one character at a time, each chosen by the strategy.")
        return
    else:
        slots = intro_slots or [st.empty() for _ in write.texts]
    writing.show(write, status, slots, actions=True)
    note_missing(write.missing)


def write_now(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None, length: int,
              samples: int, status, slots, stop_slot) -> WriteState | None:
    """Write with the model's engine, redrawing the texts as they grow; -> the finished Write, None on an error
    or when a Stop click ended it.

    The texts so far are kept in session_state as they grow: a Stop click interrupts this run, and the next run
    shows what was kept (write_mode marks it stopped, and from then on this run can change nothing).
    """
    seed = seed if seed is not None else sampling.fresh_seed()
    prime_ids, missing = encode_prime(loaded.vocab, prime)
    write = WriteState(prime=loaded.vocab.decode(prime_ids), texts=[""] * samples,   # the prime as read
                       caption=writing.caption(loaded.label, cfg, seed), missing=missing)
    st.session_state[WRITE] = write
    stop_slot.button("Stop", icon=":material/stop:", key="stop_writing")
    last = [0.0]
    started = time.perf_counter()

    def on_text(texts: list[str]) -> bool:
        if not write.grow(texts):
            return False   # stopped: this run was interrupted and the next one has shown the texts
        now = time.perf_counter()
        if now - last[0] >= RENDER_EVERY_S:
            last[0] = now
            status.caption(f"Writing… {len(texts[0]):,} / {length:,} characters")
            for slot, text in zip(slots, texts):
                plain_text(slot, write.prime + text)
        return True

    if cfg.strategy == "beam":
        status.caption("Searching for the most probable continuations…")
    try:
        result = generate(loaded.engine, loaded.vocab, prime=prime, length=length, cfg=cfg,
                          num_samples=samples, seed=seed, on_text=on_text)
    except UserError as err:
        write.running = False
        stop_slot.empty()
        st.error(plain.escape(charts.as_sentence(str(err))))
        return None
    # Not in a `finally`: a Stop click ends this run by an exception, and `running` must stay True
    # for the next run to see the Write was stopped.
    if not write.finish(result.texts, result.scores):
        return None   # stopped meanwhile: the texts stay as the next run showed them
    stop_slot.empty()
    write.caption += f" · {time.perf_counter() - started:.1f} s"
    return write


# A visitor's first view opens with a sample from the shipped model file, drawn before the models load: see
# app/writing.py.
st.title("Generate")
controls, canvas = st.columns([2, 3], gap="large")
intro = writing.open_with_a_sample(canvas)
linked = links.arrive("generate", "gen_model")   # a share link's model and values (app/links.py), once
choices = available_models()
first_view = st.session_state.get(WRITE)
if first_view is not None and first_view.first_view and not any(m.key == "shipped" for m in choices):
    # The sample came from the shipped model file as it was read then, but the model now does not load.
    st.session_state.pop(WRITE)
    if intro:
        intro[0].empty()
        intro[1][0].empty()
        intro = None
if not choices:
    st.info("No model yet: train one on the Train page or upload a checkpoint there.")
    st.page_link("app/pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

with controls:
    loaded = model_panel(choices)
    links.settle("generate", linked, loaded)
    published.control(loaded)
    prime = st.text_area("Prime text (the model reads it, then continues)", value=writing.DEFAULT_PRIME,
                         height=68, key=writing.PRIME, persist_state="session", max_chars=writing.PRIME_MAX_CHARS)
    mode = st.segmented_control("Mode", ["Write", "Step"], default="Write", required=True, key="gen_mode",
                                persist_state="session",
                                help="Write: a whole text at once, as it is generated. Step: one character "
                                     "per click, with the candidates and their probabilities.")
    cfg, seed = strategy_controls(len(loaded.vocab))
if mode == "Step":
    with canvas:
        step_mode(loaded, prime, cfg, seed)
else:
    write_mode(loaded, prime, cfg, seed, controls, canvas, intro)
with controls:
    model_card(loaded)
