"""Learn, part 8: Inside the cell: one LSTM unit's gates, cell and output over a text, the cell drawn at one
character with its numbers, the units that keep their cell longest, and where the gates snap open."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, plain
from app.learn import cell_figures, common, figures
from charlm import workload
from charlm.learn import cell
from charlm.text.corpus import Vocab

TITLE = "Inside the cell"
INTRO = (
    "Each unit of an LSTM carries a **cell c**, a number it keeps from one character to the next, and three "
    "**gates**, each between 0 (shut) and 1 (open), that it sets anew on every character from what it reads and "
    "what it showed last. The **forget gate f** says how much of the old cell to keep; the **input gate i** says "
    "how much of a new **candidate g** (between -1 and 1) to let in: c = f · c before + i · g. The **output "
    "gate o** says how much of tanh(c) to show as the output **h**, which the next layer and the prediction "
    "read. A unit whose forget gate stays near 1 remembers for a long time; one whose input gate opens on a "
    "line break writes something new there. Below: the cell at one character with its numbers, then the same "
    "numbers along the whole text."
)
MAX_CHARS = 1_000          # characters of the text the page reads (cell.gates takes 4,096; the figure grows with it)
WINDOW_MAX_CHARS = 400     # a window model re-reads its window for every character: ~100 times the work
SNAPS = 5                  # a gate's largest jumps listed
KEEPERS = 10               # units in the keepers' table
WINDOW_NOTE = (
    "This model (the 2017 design) has no memory from one character to the next: for every character it re-reads "
    "the {window} characters ending there from an empty cell. What is drawn at each character is the last step "
    "of that re-reading, the one whose output predicts the next character; its cell holds what {window} "
    "characters of reading put there, and 'c before' is the cell one step earlier in the same re-reading."
)


@st.cache_data(show_spinner="Reading the text through the cell…", max_entries=16, hash_funcs=common.ENGINE_HASH)
def traced(engine, chars: tuple[str, ...], text: str, layer: int,
           _should_stop: workload.StopCheck | None = None) -> cell.CellTrace:
    """One layer's gates, cell and output after each character the model reads of `text` (Vocab.read: a character
    outside the vocabulary is skipped, or read as the unknown symbol). _should_stop, here and below: left out of
    the cache's key; True raises workload.Stopped (nothing cached)."""
    ids, _ = Vocab.from_list(list(chars)).read(text)
    return cell.gates(engine, ids, layer, _should_stop)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=common.ENGINE_HASH)
def cell_before(engine, chars: tuple[str, ...], text: str, layer: int, at: int,
                _should_stop: workload.StopCheck | None = None) -> np.ndarray:
    """(hidden,) the layer's cell just before the step that reads character `at` (of those read) as cell.gates
    draws it: the cell after the character before, from an empty one; for a window model past its first window,
    the cell one step before the end of re-reading the window that ends at `at`."""
    ids, _ = Vocab.from_list(list(chars)).read(text)
    window = engine.window
    if window and at >= window:
        if window == 1:
            return np.zeros(engine.hidden_size, dtype=np.float32)
        _, _, c = engine.trace_gates(ids[None, at - window + 1:at], last_only=True, should_stop=_should_stop)
        return c[0, 0, layer]
    if at == 0:
        return np.zeros(engine.hidden_size, dtype=np.float32)
    return traced(engine, chars, text, layer, _should_stop).c[at - 1]


def starting_passage(model, at_hand) -> str:
    """The text the box starts with: a passage with a line break and a quote in it when one of a few has them
    (gates often snap at those), else with a line break, else the first passage."""
    limit = WINDOW_MAX_CHARS if model.window else MAX_CHARS // 2
    passages = [common.passage(model, at_hand, limit, seed) for seed in range(8)]
    for wanted in (("\n", '"'), ("\n",)):
        found = next((p for p in passages if all(mark in p for mark in wanted)), None)
        if found:
            return found
    return passages[0]


def read_text(model, at_hand) -> str | None:
    """The characters the model reads of the visitor's text, within the caps and the work bound (lines say what
    was cut or skipped); None when there is nothing to read (a line says why)."""
    limit = WINDOW_MAX_CHARS if model.window else MAX_CHARS
    common.start_values(model.key, cell_text=starting_passage(model, at_hand))
    # No max_chars on the box: a browser refuses a longer paste whole, leaving the box empty without a word.
    typed = st.text_area("Text to read (type or paste your own)", height=120, key="cell_text",
                         help=f"The page reads up to {limit:,} characters.")
    if len(typed) > limit:
        st.warning(f"This text has {len(typed):,} characters; the page reads the first {limit:,} (each one is a "
                   f"column of the figure below). Paste a later part on its own to see it.")
    typed = typed[:limit]
    if not typed:
        st.info("Type some text to see the cell read it.")
        return None
    _, positions = model.vocab.read(typed)
    unknown = model.vocab.missing(typed)
    if unknown:
        how = ("read as the unknown symbol" if len(positions) == len(typed) else
               "skipped: the model reads on, and the character numbers below count only what it reads")
        st.caption(f"Characters outside the model's vocabulary ({how}): "
                   + " ".join(plain.escape(charts.show_char(c)) for c in unknown))
    if not len(positions):
        st.info("The model knows none of these characters, so it reads nothing here: type text in the language "
                "it learned.")
        return None
    text = "".join(typed[p] for p in positions)
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.states_s(shape, n), len(text))
    if most < 1:
        st.warning(common.over_budget(shape, "the page cannot read even one character", "try a smaller model"))
        return None
    if most < len(text):
        st.info(common.over_budget(shape, f"the page reads only the first {most:,} characters of this text",
                                   "paste a later part on its own to see it"))
    return text[:most]


def choose(model, text: str) -> tuple[int, cell.CellTrace, int, int]:
    """The layer, its trace, the unit (or cell_figures.AVERAGE) and the position (from 0) the visitor picks."""
    layers, hidden = len(model.engine.w_hh), model.engine.hidden_size
    c1, c2, c3 = st.columns(3)
    common.start_values(model.key, cell_layer=1)
    layer = int(c1.number_input("Layer", 1, layers, key="cell_layer")) - 1
    trace = traced(model.engine, tuple(model.chars), text, layer, common.should_stop())
    ranked = cell.keepers(trace)
    rank = {k.unit: place for place, k in enumerate(ranked[:KEEPERS], start=1)}
    # The page opens on the unit that keeps its cell longest on the starting passage: a long memory to watch.
    common.start_values(model.key, cell_unit=ranked[0].unit,
                        cell_at=text.find("\n") + 1 or text.find('"') + 1 or (len(text) + 1) // 2)
    unit = c2.selectbox("Unit", [cell_figures.AVERAGE] + list(range(hidden)), key="cell_unit",
                        format_func=lambda u: "The layer's average" if u == cell_figures.AVERAGE else
                        f"unit {u}" + (f" (keeps its cell {'longest' if rank[u] == 1 else f'#{rank[u]}'})"
                                       if u in rank else ""))
    st.session_state["cell_at"] = min(max(1, int(st.session_state["cell_at"])), len(text))
    at = int(c3.number_input("Character number", 1, len(text), key="cell_at",
                             help=f"1 to {len(text):,}: the character the diagram shows the cell reading; "
                                  "outlined in the figure below.")) - 1
    return layer, trace, int(unit), at


def show_cell(model, text: str, layer: int, trace: cell.CellTrace, unit: int, at: int) -> None:
    before = cell_before(model.engine, tuple(model.chars), text, layer, at, common.should_stop())
    step = cell_figures.step(trace, before, at, unit, text[at])
    st.graphviz_chart(cell_figures.diagram(step, cell_figures.unit_name(unit, layer), len(text)))
    st.caption(
        "Blue gates are open (near 1), white ones shut (near 0). Along the top, the cell: kept × forget gate, plus "
        "candidate × input gate, gives the new cell; squashed by tanh and multiplied by the output gate, it is the "
        "output h." + (" For the average, each number is the mean over the layer's units, the products too, so "
                       "the sum still holds." if unit == cell_figures.AVERAGE else ""))
    st.subheader("The gates along the text")
    figures.show(cell_figures.gates_chart(text, cell_figures.along(trace, unit), at), key="cell_gates",
                 name="inside-the-cell")
    st.caption(f"{cell_figures.unit_name(unit, layer).capitalize()} after reading each character: the three gates "
               "from white (shut) to blue (open), the cell and the output blue below zero and red above. The cell "
               "c here is the one the Neuron explorer colours a text by.")


def before_snap(text: str, position: int, shown: int = 24) -> str:
    """The text up to and with the character at `position`, its last `shown` characters, whitespace made visible."""
    return "".join(charts.show_char(c) for c in text[max(0, position + 1 - shown):position + 1])


def show_snaps(text: str, trace: cell.CellTrace) -> None:
    import pandas as pd

    st.subheader("Where the gates snap open")
    found = {gate: cell.snaps(trace, text, gate, top=SNAPS) for gate in ("i", "f")}
    for gate, snaps in found.items():
        counts: dict[str, int] = {}
        for snap in snaps:
            counts[charts.show_char(snap.char)] = counts.get(charts.show_char(snap.char), 0) + 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])   # stable: the largest jump first among ties
        if ranked:
            read = ", ".join(f"{char} ({n} of its {len(snaps)} largest jumps)" if place == 0 else f"{char} ({n})"
                             for place, (char, n) in enumerate(ranked))
            st.markdown(f"Averaged over the layer's units, the **{cell.GATES[gate]}** jumps open most on reading "
                        + plain.escape(read) + ".")
    rows = [{"gate": cell.GATES[s.gate], "reading": charts.show_char(s.char), "character number": s.position + 1,
             "the text up to it": before_snap(text, s.position), "jump": round(s.jump, 3),
             "opened to": round(s.level, 3)} for snaps in found.values() for s in snaps]
    if not rows:
        st.info("Neither gate opens further anywhere in this text (the layer's average never rises): try a "
                "longer text.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="cell_snaps")
    st.caption(f"The {SNAPS} largest rises of each gate's average over the layer's units from one character to the "
               "next. A rise of the input gate is where the layer writes something new into its cells; a rise of "
               "the forget gate, where it holds on to what it has.")


def show_keepers(trace: cell.CellTrace, layer: int) -> None:
    import pandas as pd

    st.subheader("The units that keep their cell longest")
    ranked = cell.keepers(trace, top=KEEPERS)
    st.dataframe(pd.DataFrame({
        "unit": [k.unit for k in ranked],
        "forget gate (mean)": [round(k.forget, 4) for k in ranked],
        "half its cell is left after": ["never (f = 1)" if k.half_life == float("inf") else
                                        f"{k.half_life:,.1f} characters" for k in ranked]}),
        hide_index=True, key="cell_keepers")
    st.caption(f"Layer {layer + 1}'s units ranked by their forget gate's mean over this text, nearest 1 first. "
               "With its typical forget gate f, a unit's cell keeps f of itself at each character, so after n "
               "characters f to the power n of it is left (if nothing new came in): the half-life is the n where "
               "that is one half. Choose one as the unit above to watch its cell.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    at_hand, where = common.training_text(model)
    st.caption(plain.escape(where))
    if model.window:
        st.caption(WINDOW_NOTE.format(window=model.window))
    text = read_text(model, at_hand)
    if text is not None:
        try:
            layer, trace, unit, at = choose(model, text)
            show_cell(model, text, layer, trace, unit, at)
            show_snaps(text, trace)
            show_keepers(trace, layer)
        except workload.Stopped:   # the visitor left or changed something: the next run draws the page
            pass
