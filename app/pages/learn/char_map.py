"""Learn, part 9: Character map: every character's learned vector, squeezed onto a page, coloured by its class,
with a chosen character's nearest neighbours."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, plain
from app.learn import common, figures
from charlm.learn import charmap

TITLE = "Character map"
INTRO = (
    "Each character enters the model as a vector of numbers it learned: its **embedding**, shown here as the "
    "LSTM's first layer takes it in (through that layer's input weights). The 2017 design reads a character as "
    "one number and learns no embedding, so its map shows instead the row of the output layer that predicts "
    "each character. Characters the model uses alike end up with vectors alike. A map squeezes those vectors, "
    "hundreds of numbers each, onto a page: **PCA** keeps the two directions along which they spread most (each "
    "axis says what share of the whole spread it keeps: the rest is lost, so two characters close on the map may "
    "be far apart in full); the **cosine map** keeps instead which characters point the same way. Nearest "
    "neighbours are measured in the full space, never on the map."
)
METHOD_NAMES = {"pca": "PCA (greatest spread)", "mds": "Cosine map (keeps which are alike)"}
NEIGHBOURS = 8           # a chosen character's neighbours: in the table and joined to it on the map
TIP_NEIGHBOURS = 3       # each character's nearest, in its tooltip
FEWEST = 3               # characters worth a map: with two, every projection is one line
# One colour per class, the same on every model, so a class that sits together reads as one patch.
COLOURS = {"lower": "#1f77b4", "upper": "#d62728", "digit": "#2ca02c", "punctuation": "#ff7f0e",
           "space": "#7f7f7f", "other": "#9467bd"}
FONT, CHOSEN_FONT = 15, 24
WIDTH, HEIGHT = 540, 440   # beside the table, within the column even in large type


@st.cache_data(show_spinner="Mapping the characters…", max_entries=16, hash_funcs=common.ENGINE_HASH)
def drawn(engine, chars: tuple[str, ...], method: str) -> tuple[charmap.CharVectors, charmap.CharMap, list[list[str]]]:
    """-> (the model's character vectors, their map by `method`, each character's TIP_NEIGHBOURS nearest, most
    similar first). A tuple: st.cache_data pickles what it keeps, and a page's own classes cannot be pickled.
    Raises ValueError when the vectors give nothing to map (every character alike)."""
    vectors = charmap.engine_vectors(engine, list(chars))
    made = charmap.char_map(vectors, method)
    similarity = charmap.cosine_similarities(vectors.vectors)
    np.fill_diagonal(similarity, -np.inf)             # a character is not its own neighbour
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :TIP_NEIGHBOURS]
    return vectors, made, [[chars[j] for j in row] for row in order]


def axis_title(made: charmap.CharMap, axis: int) -> str:
    """An axis's title, with the share of the spread it keeps (of the variance for PCA, of the squared cosine
    distances' for the cosine map); kept short, as a side axis's title must fit the chart's height in large type."""
    share = f"keeps {made.explained[axis]:.0%} of the spread"
    return (f"direction {axis + 1} of greatest spread ({share})" if made.method == "pca"
            else f"cosine map, axis {axis + 1} ({share})")


def figure(made: charmap.CharMap, nearest: list[list[str]], chosen: str, near: list[charmap.Neighbour]):
    """Every character as its glyph, coloured by class; the chosen one ringed and joined to its neighbours."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame({
        "character": [charts.show_char(p.char) for p in made.points], "class": [p.kind for p in made.points],
        "x": [p.x for p in made.points], "y": [p.y for p in made.points],
        "nearest": [", ".join(charts.show_char(c) for c in row) for row in nearest],
        "chosen": [p.char == chosen for p in made.points]})
    at = {p.char: (p.x, p.y) for p in made.points}
    here = at[chosen]
    links = pd.DataFrame({"x": here[0], "y": here[1], "x2": [at[n.char][0] for n in near],
                          "y2": [at[n.char][1] for n in near]})
    x = alt.X("x:Q", title=axis_title(made, 0), axis=alt.Axis(labels=False, ticks=False))
    y = alt.Y("y:Q", title=axis_title(made, 1), axis=alt.Axis(labels=False, ticks=False))
    lines = alt.Chart(links).mark_rule(color="#999999", strokeWidth=1.5, opacity=0.7).encode(x=x, y=y, x2="x2",
                                                                                            y2="y2")
    ring = alt.Chart(pd.DataFrame({"x": [here[0]], "y": [here[1]]})).mark_point(
        shape="circle", size=figures.font_px(CHOSEN_FONT) ** 2 * 2.2, color="black", strokeWidth=2).encode(x=x, y=y)
    colour = alt.Color("class:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
                       legend=alt.Legend(title=None, orient="top", direction="horizontal"))
    glyphs = alt.Chart(frame).mark_text(fontSize=figures.font_px(FONT)).encode(
        x=x, y=y, text="character:N", color=colour,
        size=alt.Size("chosen:N", scale=alt.Scale(domain=[False, True],
                                                   range=[figures.font_px(FONT), figures.font_px(CHOSEN_FONT)]),
                      legend=None),
        tooltip=[alt.Tooltip("character:N"), alt.Tooltip("class:N"),
                 alt.Tooltip("nearest:N", title="nearest neighbours")])
    return (lines + ring + glyphs).properties(width=WIDTH, height=HEIGHT)


def neighbour_table(near: list[charmap.Neighbour]) -> None:
    import pandas as pd

    st.dataframe(pd.DataFrame({"character": [charts.show_char(n.char) for n in near],
                               "class": [charmap.char_class(n.char) for n in near],
                               "similarity": [n.similarity for n in near]}),
                 hide_index=True, key="cmap_neighbours",
                 column_config={"similarity": st.column_config.NumberColumn(format="%.3f")})
    st.caption("Similarity: the cosine of the angle between two characters' vectors, 1 when they point the same "
               "way, 0 when unrelated, -1 when opposite.")


def digit_line(vectors: charmap.CharVectors) -> str | None:
    """Digits to digits against digits to letters, when the model has two digits and a letter; else None."""
    kinds = [charmap.char_class(c) for c in vectors.chars]
    digits = [i for i, k in enumerate(kinds) if k == "digit"]
    letters = [i for i, k in enumerate(kinds) if k in ("lower", "upper")]
    if len(digits) < 2 or not letters:
        return None
    within = charmap.mean_cosine_distance(vectors.vectors, digits, digits)
    across = charmap.mean_cosine_distance(vectors.vectors, digits, letters)
    verdict = ("digits are nearer each other than to letters" if within < across else
               "digits are no nearer each other than to letters")
    return (f"Digits: mean cosine distance {within:.3f} between two digits, {across:.3f} from a digit to a letter "
            f"({len(digits)} digits, {len(letters)} letters): {verdict}. (Cosine distance is 1 minus the "
            "similarity: 0 for the same direction.)")


def case_line(vectors: charmap.CharVectors) -> str | None:
    """How often a capital's nearest lower-case letter is its own, when the model has a pair; else None."""
    chars = vectors.chars
    lower = [i for i, c in enumerate(chars) if charmap.char_class(c) == "lower"]
    pairs = [(i, chars.index(c.lower())) for i, c in enumerate(chars)
             if charmap.char_class(c) == "upper" and c.lower() in chars and chars.index(c.lower()) in lower]
    if not pairs:
        return None
    similarity = charmap.cosine_similarities(vectors.vectors)
    own = sum(lower[int(np.argmax(similarity[i, lower]))] == j for i, j in pairs)
    return (f"Upper and lower case: for {own} of the {len(pairs)} capitals whose small letter the model has, "
            f"the nearest small letter is its own (by chance: about 1 in {len(lower)}).")


def choose(model) -> tuple[str, str]:
    """The projection and the character to inspect."""
    chars = model.chars
    first = "a" if "a" in chars else chars[0]
    common.start_values(model.key, cmap_char=first)
    wanted = st.session_state.get("cmap_char")
    if wanted not in chars:   # a link's character this model does not have
        st.info(plain.escape(f"This model does not have the character {charts.show_char(str(wanted))!r}: the page "
                             f"shows {charts.show_char(first)!r} instead."))
        st.session_state["cmap_char"] = first
    left, right = st.columns([3, 2])
    method = left.radio("Projection", list(METHOD_NAMES), format_func=METHOD_NAMES.get, horizontal=True,
                        key="cmap_method")
    char = right.selectbox("Character to inspect", chars, format_func=charts.show_char, key="cmap_char")
    return method, char


def show(model) -> None:
    if len(model.chars) < FEWEST:
        st.info(f"This model knows {len(model.chars)} characters: too few for a map (with two, every map is one "
                "line between them). Train a model on a text with more kinds of characters.")
        return
    method, chosen = choose(model)
    try:
        vectors, made, nearest = drawn(model.engine, tuple(model.chars), method)
    except ValueError as error:
        st.warning(charts.as_sentence(str(error)) + ".")
        return
    near = charmap.neighbours(vectors, chosen, NEIGHBOURS)
    left, right = st.columns([5, 2], gap="medium")
    with left:
        figures.show(figure(made, nearest, chosen, near), key="cmap_scatter", name="character-map")
    with right:
        st.markdown(f"**Nearest to {plain.escape(charts.show_char(chosen))}**")
        neighbour_table(near)
    kept = sum(made.explained)
    st.caption(f"The two axes keep {kept:.0%} of the spread; the lines join the chosen character to its "
               f"{len(near)} nearest neighbours in the full space. Hover over a character for its own nearest.")
    for line in (digit_line(vectors), case_line(vectors)):
        if line is not None:
            st.caption(line)   # numbers and words of ours: no model text


model = common.page_start(TITLE, INTRO)
if model is not None:
    show(model)
