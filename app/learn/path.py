"""The guided path through Learn: each part's place in the order, its neighbours, and one thing to try there."""

from __future__ import annotations

import streamlit as st

from app.learn import LEARN_PAGES

# One concrete thing to do on each part, by module: something the page as it is lets a visitor see for themselves.
TRY_THIS = {
    "text_to_numbers": "Type your name in the sentence box and find each of its letters' indices in the "
                       "vocabulary table.",
    "windows_targets": "Drag the window length from 100 down to 10 and watch the 2017 design's count of training "
                       "examples and its memory change, while today's stay the same.",
    "the_model": "Double the batch B and see which shapes in the table grow with it and which (the weights) do not.",
    "next_character": "End the prime halfway through a word, then right after a full stop and a space, and "
                      "compare how widely the model spreads its bets in the two.",
    "surprise_map": "Hover over the darkest cells: what did the model expect instead? Then type a sentence with a "
                    "spelling mistake and find it by its colour.",
    "neuron_explorer": "Pick the unit at the top of the ranking, hold it at -1 and then at +1, and see where the "
                       "two texts part.",
    "looked_back": "Put the position on a line break and find, on the curve, the bump where the line before it "
                   "ended: the model measures its lines.",
    "inside_cell": "The page opens on the unit that keeps its cell longest: find where its forget gate drops "
                   "(a white cell in the figure) and put the character number there. What did it just read?",
    "char_map": "Choose the letter a and read its nearest neighbours, then find where the digits sit on the map.",
    "training_over_time": "Drag the slider from the first evaluation to the last and read when the samples first "
                          "make words.",
    "then_and_now": "Train both for a minute each and compare their losses at the same time on the chart.",
    "baselines_page": "Compare the LSTM's bits per character with the best n-gram's: how many bits does the "
                      "network save on each character?",
    "decoding_lab": "Set the temperature to 0 and then to 1.5 with the same seed, and read what greedy and "
                    "wild sampling do to the same prime.",
    "guess_game": "Play ten characters, then compare your bits per character with the model's on the same "
                  "ones.",
}
FILES = {title: module for module, title, _, _ in LEARN_PAGES}   # a page's title -> its module


def page_file(module: str) -> str:
    """The script of a Learn part, as st.navigation registered it."""
    return f"app/pages/learn/{module}.py"


def neighbours(module: str) -> tuple[int, tuple[str, str] | None, tuple[str, str] | None]:
    """-> (the part's number from 1, (module, title) of the part before it or None, the one after it or None)."""
    order = [(m, title) for m, title, _, _ in LEARN_PAGES]
    at = [m for m, _ in order].index(module)
    return at + 1, (order[at - 1] if at > 0 else None), (order[at + 1] if at + 1 < len(order) else None)


def header(title: str) -> None:
    """Where this part sits on the path: "Part N of 14", links to the parts before and after it, and a line
    to try. Drawn at the top, under the title: a part's work (ranking units, scoring a text) can take a few
    seconds or stop early with a message, and the way on should show from the start whatever happens below."""
    module = FILES.get(title)
    if module is None:   # not one of the parts (a test's page): no place on the path
        return
    number, before, after = neighbours(module)
    left, middle, right = st.columns([2, 3, 2], vertical_alignment="center")
    if before is not None:
        left.page_link(page_file(before[0]), label=f"Previous: {before[1]}", icon=":material/arrow_back:")
    middle.caption(f"Part {number} of {len(LEARN_PAGES)}")
    if after is not None:
        right.page_link(page_file(after[0]), label=f"Next: {after[1]}", icon=":material/arrow_forward:")
    st.markdown(f"**Try this:** {TRY_THIS[module]}")
