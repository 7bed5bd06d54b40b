"""Generate page: pick a model, a prime and a strategy; write a whole text as it streams, or one character at a time."""

from __future__ import annotations

import streamlit as st

from app import writing

# A visitor's first view opens with a sample from the shipped model, drawn before anything here
# imports torch (about two seconds on a cold start): see app/writing.py.
st.title("Generate")
controls, canvas = st.columns([2, 3], gap="large")
intro = writing.open_with_a_sample(canvas)

import random  # noqa: E402  (the imports below load torch; they come after the first sample on purpose)
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from app import charts, models, state, training  # noqa: E402
from app.writing import WRITE, WriteState, plain_text  # noqa: E402
from charlm.checkpoint import CheckpointError  # noqa: E402
from charlm.decoding import STRATEGIES, DecodeConfig, StepSession, Stepper, generate  # noqa: E402
from charlm.model import CharLSTM  # noqa: E402

STRATEGY_HELP = {
    "greedy": "Always the single most likely character. Predictable, and prone to loops.",
    "sample": "Draw from the whole distribution, sharpened (temperature < 1) or flattened (> 1).",
    "top-k": "Draw only among the k most likely characters.",
    "top-p": "Draw among the fewest characters that together hold probability p.",
    "min-p": "Draw among characters at least min-p times as likely as the best one.",
    "beam": "Keep the most probable whole continuations, not just the best next character.",
}
STEP = "gen_step_state"   # session_state key of step mode's state
RENDER_EVERY_S = 0.08   # streaming redraws at most this often (each redraw sends the text so far)
CURSOR = "▌"            # step mode: where the next character goes (a trailing space or newline stays visible)


@dataclass
class StepState:
    key: tuple                 # (model choice, prime, seed): a change starts over
    session: StepSession
    model: CharLSTM            # the model the session reads; a newer checkpoint offers a restart
    picks: list = field(default_factory=list)   # per written character: (candidates, char, "the model"/"you")


def button_label(char: str) -> str:
    """A candidate as a button label: visible whitespace, and markdown characters escaped."""
    return charts.escape_markdown(charts.show_char(char))


def available_models() -> list[models.LoadedModel]:
    choices = []
    try:
        choices.append(models.shipped())
    except CheckpointError as err:
        st.warning(f"The shipped demo model could not be loaded: {charts.escape_markdown(str(err))}. "
                   "Train one on the Train page.")
    try:
        trained = models.trained(state.job())
    except CheckpointError as err:
        st.warning(f"This session's model could not be loaded: {charts.escape_markdown(str(err))}")
        trained = None
    if trained is not None:
        choices.append(trained)
    return choices + models.uploads()


def model_panel(choices: list[models.LoadedModel]) -> models.LoadedModel:
    by_key = {m.key: m for m in choices}
    keys = list(by_key)
    job = state.job()
    if "trained" in by_key and st.session_state.get("gen_model_offered") != id(job):
        st.session_state["gen_model_offered"] = id(job)   # a new model of this session is offered once, first
        st.session_state["gen_model"] = "trained"
    elif st.session_state.get("gen_model") not in by_key:   # first visit, or the chosen model is gone
        st.session_state["gen_model"] = keys[0]
    key = st.selectbox("Model", keys, format_func=lambda k: by_key[k].label, key="gen_model",
                       persist_state="session")
    loaded = by_key[key]
    st.text(loaded.summary)   # from the model file: plain text, never markdown
    if key == "trained" and state.is_running(job):
        st.caption("Training is still going on: this is the best checkpoint so far; a better one replaces it "
                   "when it is written.")
    elif job is not None and "trained" not in by_key:
        st.caption("This session's model appears here after its first evaluation.")
    return loaded


def model_card(loaded: models.LoadedModel) -> None:
    with st.container(border=True):
        if loaded.key == "shipped":
            card = models.model_card()
            if card:
                st.markdown(card)
            else:
                st.markdown("**Model card.** The shipped demo model was trained by this project's CLI on the "
                            "Nietzsche text of the 2017 tutorial. Its full card (checkpoints/MODEL_CARD.md) is "
                            "not in this copy of the project.")
        elif loaded.key == "trained":
            st.markdown(f"**Trained in this session** on *{charts.escape_markdown(state.job().corpus.name)}*.")
            st.text(loaded.summary)
        else:
            st.text(loaded.label)
            st.text(loaded.summary)
        st.page_link("app/train_page.py", label="Train your own, or upload a checkpoint",
                     icon=":material/model_training:")


def strategy_controls(vocab_size: int) -> tuple[DecodeConfig, int | None]:
    c1, c2 = st.columns(2)
    strategy = c1.selectbox("Strategy", STRATEGIES, index=STRATEGIES.index(writing.DEFAULTS.strategy),
                            format_func=writing.STRATEGY_NAMES.get, key="gen_strategy", persist_state="session")
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
    if write is not None and write.running:   # the run that was writing was interrupted by a click: Stop
        write.running, write.stopped = False, True

    with canvas:
        write_output(loaded, prime, cfg, seed, write, go, stop_slot, length, samples, intro)


def write_output(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None,
                 write: WriteState | None, go: bool, stop_slot, length: int, samples: int, intro) -> None:
    """Write when asked (streaming, with a Stop button), else show the latest text.

    `intro`: the placeholders the first view's sample was drawn in; it is redrawn there, in place.
    """
    status, intro_slots = intro if intro else (st.empty(), None)
    if go:
        seed = seed if seed is not None else random.randrange(2**31)
        prime_ids, _ = Stepper(loaded.model, loaded.vocab, loaded.window).encode_prime(prime)
        write = WriteState(prime=loaded.vocab.decode(prime_ids), texts=[""] * samples,   # the prime as read
                           caption=writing.caption(loaded.label, cfg, seed))
        st.session_state[WRITE] = write
        stop_slot.button("Stop", icon=":material/stop:", key="stop_writing")
        slots = [st.empty() for _ in range(samples)]
        last = [0.0]
        started = time.perf_counter()

        def on_text(texts: list[str]) -> None:
            write.texts = texts   # kept in session_state as it grows: a Stop click keeps it
            now = time.perf_counter()
            if now - last[0] >= RENDER_EVERY_S:
                last[0] = now
                status.caption(f"Writing… {len(texts[0]):,} / {length:,} characters")
                for slot, text in zip(slots, write.texts):
                    plain_text(slot, write.prime + text)

        if cfg.strategy == "beam":
            status.caption("Searching for the most probable continuations…")
        try:
            result = generate(loaded.model, loaded.vocab, prime=prime, length=length, cfg=cfg,
                              num_samples=samples, seed=seed, window=loaded.window, on_text=on_text)
        except ValueError as err:
            write.running = False
            stop_slot.empty()
            st.error(charts.escape_markdown(str(err)))
            return
        write.texts, write.missing, write.scores = result.texts, result.missing, result.scores
        write.running = False
        write.caption += f" · {time.perf_counter() - started:.1f} s"
        stop_slot.empty()
    elif write is None:
        status.caption("Press Write: the model writes one character at a time, each chosen by the strategy.")
        return
    else:
        slots = intro_slots or [st.empty() for _ in write.texts]
    writing.show(write, status, slots)
    if write.scores:
        st.caption("Beam log-probabilities (nats, higher is more probable): "
                   + ", ".join(f"{s:.1f}" for s in write.scores))
    if write.missing:
        st.info("The model never saw these characters of the prime, so they were left out or shown as "
                f"unknown: {' '.join(button_label(c) for c in write.missing)}")


# --- step mode -------------------------------------------------------------------------------------------

def step_state(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None) -> StepState:
    key = (loaded.key, prime, seed)
    step: StepState | None = st.session_state.get(STEP)
    if step is None or step.key != key:
        session_seed = seed if seed is not None else random.randrange(2**31)
        session = StepSession(loaded.model, loaded.vocab, prime, cfg, seed=session_seed, window=loaded.window)
        step = StepState(key, session, loaded.model)
        st.session_state[STEP] = step
    step.session.cfg = cfg   # the strategy may change between steps; the text so far stays
    return step


def _take(char: str | None, who: str) -> None:
    """Add one character (the strategy's pick when char is None); remembered with what it was chosen from."""
    step: StepState = st.session_state[STEP]
    session = step.session
    before = session.candidates(len(session.vocab))
    chosen = session.step(char)
    top = before[:10]
    if all(c != chosen for c, _, _ in top):   # a rare draw, or the person's own character: shown last
        top += [entry for entry in before if entry[0] == chosen]
    step.picks.append((top, chosen, who))


def on_next(count: int = 1) -> None:
    for _ in range(count):
        _take(None, "the model")


def on_pick(char: str) -> None:
    _take(char, "you")


def on_own() -> None:
    typed = st.session_state.get("own_char", "")
    char = {"\\n": "\n", "\\t": "\t"}.get(typed, typed)
    try:
        if len(char) != 1:
            raise ValueError("Type exactly one character (\\n for a new line, \\t for a tab).")
        _take(char, "you")
        st.session_state.pop("step_error", None)
    except ValueError as err:   # a character outside the model's vocabulary
        st.session_state["step_error"] = str(err)


def on_undo() -> None:
    step: StepState = st.session_state[STEP]
    if step.session.undo():
        step.picks.pop()


def on_restart() -> None:
    st.session_state.pop(STEP, None)


def step_mode(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None) -> None:
    step = step_state(loaded, prime, cfg, seed)
    session = step.session
    if cfg.strategy == "beam":
        st.info("Beam search weighs whole continuations; one step at a time it takes the most likely character.")
    if step.model is not loaded.model:
        st.caption("A newer checkpoint of this model is ready: Start over to use it.")

    plain_text(st, session.prime + session.text + CURSOR)
    st.caption(f"{len(session.chosen):,} characters written after the prime." if session.chosen
               else "Nothing written yet: take the model's pick, or choose a candidate below.")
    if session.missing:
        st.info("The model never saw these characters of the prime, so they were left out or shown as unknown: "
                + " ".join(button_label(c) for c in session.missing))

    row = st.container(horizontal=True)
    row.button("Next (model's pick)", type="primary", on_click=on_next, key="step_next", icon=":material/redo:")
    row.button("10 more", on_click=on_next, args=(10,), key="step_ten")
    row.button("Undo", on_click=on_undo, key="step_undo", icon=":material/undo:", disabled=not session.chosen)
    row.button("Start over", on_click=on_restart, key="step_restart", icon=":material/restart_alt:")

    candidates = session.candidates(10)
    st.markdown("**Candidates for the next character**")
    st.altair_chart(charts.candidates_chart(candidates), width="stretch", height=300)
    st.caption("Grey: the model's probabilities. Blue: after the strategy (what it draws from). "
               "Click a candidate to write it instead of the model's pick.")
    grid = st.container(horizontal=True)
    for i, (char, _, after) in enumerate(candidates):
        grid.button(f"{button_label(char)}  {after:.0%}", key=f"cand_{i}", on_click=on_pick, args=(char,),
                    help=f"Write {charts.show_char(char)!r}")
    with st.form("own_char_form", clear_on_submit=True, border=False):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Or type your own character", max_chars=2, key="own_char", placeholder="x, or \\n")
        c2.form_submit_button("Add", on_click=on_own)
    if st.session_state.get("step_error"):
        st.error(charts.escape_markdown(st.session_state.pop("step_error")))

    if step.picks:
        top, chosen, who = step.picks[-1]
        p_after = next(after for c, _, after in top if c == chosen)
        st.markdown(f"**Last step:** {who} chose **{button_label(chosen)}** "
                    f"({p_after:.1%} after the strategy) from these candidates")
        st.altair_chart(charts.candidates_chart(top, chosen=chosen), width="stretch", height=300)
    else:
        st.caption("After each step, the candidates that character was chosen from appear here, the chosen one "
                   "marked. Undo takes a step back.")


training.share_cores()
choices = available_models()
first_view = st.session_state.get(WRITE)
if first_view is not None and first_view.first_view and not any(m.key == "shipped" for m in choices):
    # The sample came from the shipped model file read by numpy, but torch could not load the model.
    st.session_state.pop(WRITE)
    if intro:
        intro[0].empty()
        intro[1][0].empty()
        intro = None
if not choices:
    st.info("No model yet: train one on the Train page or upload a checkpoint there.")
    st.page_link("app/train_page.py", label="Go to Train", icon=":material/model_training:")
    training.sidebar_badge()
    st.stop()

with controls:
    loaded = model_panel(choices)
    prime = st.text_area("Prime text (the model reads it, then continues)", value=writing.DEFAULT_PRIME,
                         height=68, key="gen_prime", persist_state="session", max_chars=2000)
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
training.sidebar_badge()
