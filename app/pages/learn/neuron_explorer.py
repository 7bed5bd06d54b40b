"""Learn, part 6: Neuron explorer: one LSTM unit's value along a text, the units that follow a feature, and
writing with a unit held."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import plain
from app.learn import common, draw, figures
from charlm import workload
from charlm.learn import neurons
from charlm.engine.decoding import encode_prime, start_ids
from charlm.engine.sampling import DecodeConfig
from charlm.text.corpus import Vocab

TITLE = "Neuron explorer"
INTRO = (
    "The LSTM's memory is a few hundred numbers, its **units**, updated at every character. Each unit has an "
    "output **h** (between -1 and 1, what the next layer and the head read) and a **cell c** (its longer-lived "
    "memory). Nobody tells a unit what to track, yet some end up following something a reader would notice: "
    "whether we are inside quotes, how far along the line we are. Below, units are ranked by how closely they "
    "follow a feature; pick one to watch it along a text (blue below zero, red above), then hold it at a value "
    "and see how the writing changes."
)
RANK_CHARS = 20_000          # characters ranking reads (of the model's validation text, when at hand)
SHOW_CHARS = 2_000           # characters of the coloured text
WINDOW_RANK_CHARS = 400     # a window model re-reads its window for every character: ~100 times the work
WINDOW_SHOW_CHARS = 400
WINDOW_WRITE_CHARS = 100
PART_S = workload.BUDGET_S / 3   # a first view ranks, colours and writes: each gets a third of a click's time
FEWEST_RANK = 100            # characters worth ranking units over; under this the page ranks none
FEWEST_SHOW = 20             # characters worth colouring
SHARED = "the ranking, the coloured text and the writing below share that time"
RANKING = (FEWEST_RANK, "the page cannot rank units over", "the units are ranked over")
KIND_NAMES = {"h": "h: the unit's output", "c": "c: its cell (memory)"}
WRITING = DecodeConfig()     # the Generate page's default: top-p 0.9, temperature 0.8


@st.cache_data(show_spinner="Ranking the units…", max_entries=16, hash_funcs=common.ENGINE_HASH)
def ranked(engine, chars: tuple[str, ...], text: str, kind: str,
           _should_stop: workload.StopCheck | None = None) -> dict[str, list[neurons.RankedUnit]]:
    """Each feature that changes over the text -> its best units, from one reading of the text.
    _should_stop, here and below: left out of the cache's key; True raises workload.Stopped (nothing cached)."""
    return neurons.rank_features(engine, list(chars), text, kind=kind, top=10, should_stop=_should_stop)


@st.cache_data(show_spinner="Reading the text…", max_entries=8, hash_funcs=common.ENGINE_HASH)
def values_along(engine, chars: tuple[str, ...], text: str, kind: str,
                 _should_stop: workload.StopCheck | None = None) -> np.ndarray:
    """(len(text), layers, hidden): every unit's value after each character; NaN where the model reads nothing."""
    ids, positions = Vocab.from_list(list(chars)).read(text)
    acts = neurons.activations(engine, ids, kind, _should_stop)
    out = np.full((len(text),) + acts.shape[1:], np.nan, dtype=np.float32)
    out[positions] = acts
    return out


@st.cache_data(show_spinner="Writing…", max_entries=32, hash_funcs=common.ENGINE_HASH)
def written(engine, chars: tuple[str, ...], prime_ids: tuple[int, ...], length: int, seed: int,
            clamp: tuple[tuple[int, int, float], ...], _should_stop: workload.StopCheck | None = None) -> str:
    ids = neurons.clamped_write(engine, list(prime_ids), length, WRITING, np.random.default_rng(seed),
                                {(layer, unit): value for layer, unit, value in clamp}, _should_stop)
    return "".join(chars[i] for i in ids)


def unit_label(unit: neurons.RankedUnit) -> str:
    return f"{unit.kind} · layer {unit.layer + 1} · unit {unit.unit} · r = {unit.correlation:+.2f}"


def within_part(model, text: str, fewest: int, cannot: str, doing: str) -> str:
    """The text, or its start that neurons.states reads within PART_S (a line says so); '' when not even
    `fewest` characters fit (a line says why). cannot and doing say what the page does with the text, for
    people: 'the page cannot rank units over' (100 characters), 'the units are ranked over' (only the first …)."""
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.states_s(shape, n), len(text), PART_S)
    if most >= len(text):
        return text
    if most < fewest:
        st.warning(common.over_budget(shape, f"{cannot} {fewest} characters", SHARED))
        return ""
    st.info(common.over_budget(shape, f"{doing} only the first {most:,} characters", SHARED))
    return text[:most]


def rank_text(model, at_hand) -> tuple[str, str]:
    """The text units are ranked on ('' when the work bound allows too little), and a line saying what it is."""
    limit = WINDOW_RANK_CHARS if model.window else RANK_CHARS
    if at_hand is not None:
        text = within_part(model, at_hand.split_text()[1][:limit], *RANKING)
        return text, f"Ranked over {len(text):,} characters of the model's validation text."
    text = within_part(model, common.passage(model, None, limit), *RANKING)
    return text, (f"Ranked over a {len(text):,}-character passage (the model's own text is not at hand, and a "
                  "longer text ranks more reliably).")


def shown_passage(model, at_hand) -> str:
    """The passage the unit is first watched along (watch() starts the text box with it)."""
    return common.passage(model, at_hand, WINDOW_SHOW_CHARS if model.window else SHOW_CHARS)


def choose_unit(model, at_hand) -> tuple[int, int, str]:
    """The feature, the ranking and the visitor's pick: -> (layer, unit, kind)."""
    text, line = rank_text(model, at_hand)
    kind = st.session_state.get("neuron_kind", "h")
    by_feature = ranked(model.engine, tuple(model.chars), text, kind, common.should_stop()) if text else {}
    # The page opens on the feature whose best unit follows it most closely here, among those the passage
    # below shows (a feature it never shows could not be seen along it).
    common.start_values(model.key, neuron_feature=neurons.clearest_feature(by_feature, shown_passage(model, at_hand))
                        or next(iter(neurons.FEATURES)))
    c1, c2 = st.columns(2)
    feature = c1.selectbox("Feature of the text", list(neurons.FEATURES), key="neuron_feature")
    c2.radio("Rank units by", list(KIND_NAMES), format_func=KIND_NAMES.get, horizontal=True, key="neuron_kind")
    st.caption(neurons.FEATURES[feature])
    if model.window:
        line += f" This model re-reads a {model.window}-character window for every character, so it reads less."
    units = by_feature.get(feature, [])
    if text and not units:
        st.info(f"'{feature}' does not change over the text units are ranked on, so no unit can follow it here; "
                "choose another feature.")
    if units:
        import pandas as pd

        st.dataframe(pd.DataFrame({"unit": [unit_label(u) for u in units],
                                   "follows the feature": [abs(u.correlation) for u in units]}),
                     hide_index=True, key="neuron_ranked",
                     column_config={"follows the feature": st.column_config.ProgressColumn(
                         "how closely (|r|)", min_value=0.0, max_value=1.0, format="%.2f")})
        st.caption(line + " r is the correlation between the unit's value and the feature: +1 or -1 when it "
                          "follows it exactly, 0 when not at all.")
    layers, hidden = len(model.engine.w_hh), model.engine.hidden_size
    options = list(range(len(units))) + ["any"]
    ranking = (model.key, feature, kind)
    if st.session_state.get("neuron_pick_for") != ranking or st.session_state.get("neuron_pick") not in options:
        st.session_state["neuron_pick"] = options[0]   # a new ranking starts at its best unit
        st.session_state["neuron_pick_for"] = ranking
    pick = st.selectbox("Unit to watch", options, key="neuron_pick",
                        format_func=lambda i: "Another unit, by number…" if i == "any" else unit_label(units[i]))
    if pick != "any":
        unit = units[pick]
        return unit.layer, unit.unit, unit.kind
    c1, c2, c3 = st.columns(3)
    common.start_values(model.key, neuron_layer=1, neuron_number=0)
    layer = c1.number_input("Layer", 1, layers, key="neuron_layer") - 1
    number = c2.number_input("Unit", 0, hidden - 1, key="neuron_number")
    which = c3.radio("Value", list(KIND_NAMES), format_func=KIND_NAMES.get, key="neuron_any_kind")
    return int(layer), int(number), which


def watch(model, at_hand, layer: int, unit: int, kind: str) -> None:
    limit = WINDOW_SHOW_CHARS if model.window else SHOW_CHARS
    common.start_values(model.key, neuron_text=shown_passage(model, at_hand))
    typed = st.text_area("Text to read (type or paste your own)", height=120, max_chars=SHOW_CHARS,
                         key="neuron_text")[:limit]
    if not typed:
        st.info("Type some text to watch the unit along it.")
        return
    text = within_part(model, typed, FEWEST_SHOW, "the page cannot show the unit along", "the unit is shown along")
    if not text:
        return
    values = values_along(model.engine, tuple(model.chars), text, kind, common.should_stop())[:, layer, unit]
    finite = values[np.isfinite(values)]
    reach = 1.0 if kind == "h" else max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    figures.show(draw.char_grid(text, values, "value", diverging=True, domain=(-reach, reach)),
                 key="neuron_grid", name="neuron-explorer")
    st.caption(f"{kind} of unit {unit} in layer {layer + 1} after reading each character"
               + (f" (the first {limit:,} characters: this model re-reads a window for each)." if model.window
                  else "."))


def hold(model, at_hand, layer: int, unit: int) -> None:
    st.subheader("Hold the unit and write")
    st.caption(f"The model writes twice from the same prime and the same seed: once as it is, once with unit {unit} "
               f"of layer {layer + 1} held at a value (its output h, at every character, prime included).")
    most = WINDOW_WRITE_CHARS if model.window else 400
    common.start_values(model.key, neuron_prime=common.passage(model, at_hand, 200)[:30], neuron_length=min(200, most))
    c1, c2, c3 = st.columns([3, 2, 1])
    prime = c1.text_input("Prime", max_chars=200, key="neuron_prime")
    value = c2.slider("Hold h at", -1.0, 1.0, 1.0, 0.05, key="neuron_clamp")
    seed = int(c3.number_input("Seed", 0, 2**31 - 1, 0, key="neuron_seed"))
    length = st.slider("Characters to write", 20, most, step=10, key="neuron_length")
    prime_ids, _ = encode_prime(model.vocab, prime)
    ids = tuple(start_ids(model.vocab, prime_ids))
    shape = workload.Shape.of(model.engine)    # it writes twice: as it is, and with the unit held
    fits = workload.largest_within(lambda n: 2 * workload.write_s(shape, len(ids), n), length, PART_S)
    if fits < length:
        st.info(common.over_budget(shape, f"it writes at most {fits} characters after this prime",
                                   "shorten the prime or the length"))
        if not fits:
            return
        length = fits
    chars = tuple(model.chars)
    free = written(model.engine, chars, ids, length, seed, (), common.should_stop())
    held = written(model.engine, chars, ids, length, seed, ((layer, unit, value),), common.should_stop())
    read = model.vocab.decode(prime_ids)
    left, right = st.columns(2, gap="large")
    left.markdown("**As it writes**")
    plain.block(read + free, left)
    right.markdown(f"**With the unit held at {value:+.2f}**")
    plain.block(read + held, right)
    same = next((i for i, (a, b) in enumerate(zip(free, held)) if a != b), None)
    st.caption("The two texts are the same: this unit, at this value, does not change the choices here."
               if same is None else f"They part at character {same + 1} of the {length} written.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    st.caption(plain.escape(where))
    try:
        layer, unit, kind = choose_unit(model, at_hand)
        watch(model, at_hand, layer, unit, kind)
        hold(model, at_hand, layer, unit)
    except workload.Stopped:   # the visitor left or changed something: the next run draws the page
        pass
