"""Step mode of the Generate page: one character per click, the candidates charted, the person's own picks, undo;
the transcript saved or reused as the prime."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from app import charts, models
from app.writing import char_label, note_missing, plain_text, text_actions
from charlm.engine import sampling
from charlm.engine.decoding import DecodeConfig, Engine, StepSession
from charlm.units import plural
from charlm.errors import UserError

STEP = "gen_step_state"   # session_state key of step mode's state
CURSOR = "▌"              # where the next character goes (a trailing space or newline stays visible)
BUTTONS_PER_ROW = 4       # candidate buttons sit in a fixed grid, so a click never moves the one under the mouse
Candidate = tuple[str, float, float]   # (character, probability before, after the strategy)


@dataclass
class StepState:
    key: tuple                 # (model choice, prime, seed): a change starts over
    session: StepSession
    engine: Engine             # the engine the session reads; a newer checkpoint offers a restart
    picks: list = field(default_factory=list)   # per written character: (candidates, char, "the model"/"you")


def step_state(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None) -> StepState:
    key = (loaded.key, prime, seed)
    step: StepState | None = st.session_state.get(STEP)
    if step is None or step.key != key:
        session_seed = seed if seed is not None else sampling.fresh_seed()
        session = StepSession(loaded.engine, loaded.vocab, prime, cfg, seed=session_seed)
        step = StepState(key, session, loaded.engine)
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
            raise UserError("Type exactly one character (\\n for a new line, \\t for a tab).")
        _take(char, "you")
        st.session_state.pop("step_error", None)
    except UserError as err:   # a character outside the model's vocabulary
        st.session_state["step_error"] = str(err)


def on_undo() -> None:
    step: StepState = st.session_state[STEP]
    if step.session.undo():
        step.picks.pop()


def on_restart() -> None:
    st.session_state.pop(STEP, None)


def step_mode(loaded: models.LoadedModel, prime: str, cfg: DecodeConfig, seed: int | None) -> None:
    """The text so far with its cursor, the step buttons, the candidates to choose from, and the last step."""
    step = step_state(loaded, prime, cfg, seed)
    session = step.session
    if cfg.strategy == "beam":
        st.info("Beam search weighs whole continuations; one step at a time it takes the most likely character.")
    if step.engine is not loaded.engine:
        st.caption("A newer checkpoint of this model is ready: Start over to use it.")

    plain_text(st, session.prime + session.text + CURSOR)
    st.caption(f"{plural(len(session.chosen), 'character')} written after the prime." if session.chosen
               else "Nothing written yet: take the model's pick, or choose a candidate below.")
    note_missing(session.missing)
    text_actions(session.prime + session.text, "charlm-step.txt", download_key="step_download",
                 prime_key="step_use_as_prime")

    row = st.container(horizontal=True)
    row.button("Next (model's pick)", type="primary", on_click=on_next, key="step_next", icon=":material/redo:")
    row.button("10 more", on_click=on_next, args=(10,), key="step_ten")
    row.button("Undo", on_click=on_undo, key="step_undo", icon=":material/undo:", disabled=not session.chosen)
    row.button("Start over", on_click=on_restart, key="step_restart", icon=":material/restart_alt:")

    candidate_buttons(session.candidates(10))
    last_step(step.picks[-1] if step.picks else None)


def candidate_buttons(candidates: list[Candidate]) -> None:
    """The next character's candidates as a chart and as buttons, and a box for a character of one's own.

    The chart ranks them by probability; the buttons keep character order in a fixed grid, so the ranking
    changing after a click does not shuffle the buttons under the mouse. Keys follow the rank (cand_0: likeliest).
    """
    st.markdown("**Candidates for the next character**")
    st.altair_chart(charts.candidates_chart(candidates), width="stretch", height=300)
    st.caption("Grey: the model's probabilities. Blue: after the strategy (what it draws from). The buttons, in "
               "character order, show both: the model's → after the strategy. Click one to write it instead of the "
               "model's pick.")
    in_character_order = sorted(enumerate(candidates), key=lambda ranked: ord(ranked[1][0]))
    for start in range(0, len(in_character_order), BUTTONS_PER_ROW):
        row = st.columns(BUTTONS_PER_ROW, gap="small")
        for column, (rank, (char, before, after)) in zip(row, in_character_order[start:start + BUTTONS_PER_ROW]):
            column.button(f"{char_label(char)}  {before:.0%}→{after:.0%}", key=f"cand_{rank}", on_click=on_pick,
                          args=(char,), width="stretch",
                          help=f"Write {charts.show_char(char)!r}: the model gives it {before:.1%}, "
                               f"{after:.1%} after the strategy.")
    with st.form("own_char_form", clear_on_submit=True, border=False):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Or type your own character", max_chars=2, key="own_char", placeholder="x, or \\n")
        c2.form_submit_button("Add", on_click=on_own)
    if st.session_state.get("step_error"):
        st.error(charts.escape_markdown(charts.as_sentence(st.session_state.pop("step_error"))))


def last_step(pick: tuple[list[Candidate], str, str] | None) -> None:
    """What the last character was chosen from, the chosen one marked."""
    if pick is None:
        st.caption("After each step, the candidates that character was chosen from appear here, the chosen one "
                   "marked. Undo takes a step back.")
        return
    top, chosen, who = pick
    p_before, p_after = next((before, after) for c, before, after in top if c == chosen)
    st.markdown(f"**Last step:** {who} chose **{char_label(chosen)}** "
                f"(probability {p_before:.1%}; after the strategy, {p_after:.1%}) from these candidates")
    st.altair_chart(charts.candidates_chart(top, chosen=chosen), width="stretch", height=300)
