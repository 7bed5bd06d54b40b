"""Guess the next character: Shannon's game, the visitor against the model on the same passage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from app import charts, models, plain
from app.learn import common, figures
from app.writing import char_label
from charlm import workload
from charlm.engine import sampling, scoring
from charlm.learn.guessing import GuessScore, model_rank
from charlm.units import format_fixed

TITLE = "Guess the next character"
INTRO = (
    "In 1951 Claude Shannon measured how predictable English is with a game: show a person a text up to a "
    "point and let them guess the next letter until they get it right. The fewer guesses, the less "
    "information each letter carries. Play it here against the model: guess, see what the model expected, "
    "and compare your bits per character with its own. (Your figure is Shannon's upper bound from how many "
    "guesses you needed; the model's is its real surprise, −log2 of the probability it gave the answer.)"
)
GAME = "guess_game"
PASSAGE_CHARS = 400   # the passage a game plays through
START = 60            # characters shown before the first guess
CONTEXT_CHARS = 500   # the most of the passage shown above the cursor
TOP = 10              # characters drawn in the reveal
FEWEST = 20           # characters to guess worth a game, after START; under this the page plays none


@dataclass
class Reveal:
    char: str
    guesses: int | None                 # None: gave up
    rank: int                           # the model's
    prob: float
    top: list[tuple[str, float]]        # the model's likeliest, best first


@dataclass
class Game:
    model_key: str
    engine_id: int
    passage: str
    ranked: list[list[tuple[str, float]]]   # per position 1..: every character, likeliest first; [] if not scored
    score: GuessScore
    pos: int = START                        # the character being guessed
    ruled_out: list[str] = field(default_factory=list)
    last: Reveal | None = None
    notice: str | None = None               # what the last click did not do, for people

    @property
    def over(self) -> bool:
        return self.pos >= len(self.passage)

    def skip_unscored(self) -> None:
        """Move past characters the model cannot predict (outside its vocabulary)."""
        while not self.over and not self.ranked[self.pos - 1]:
            self.pos += 1


def passage_chars(model: models.LoadedModel) -> int:
    """Characters of a passage: PASSAGE_CHARS, or fewer to score it within the work bound (a line says so);
    0 when not even FEWEST guesses fit (a line says why)."""
    shape = workload.Shape.of(model.engine)
    most = workload.largest_within(lambda n: workload.score_s(shape, n), PASSAGE_CHARS)
    if most >= PASSAGE_CHARS:
        return PASSAGE_CHARS
    if most < START + FEWEST:
        st.warning(common.over_budget(shape, f"the game cannot score a passage of {START + FEWEST} characters",
                                      "try a smaller model"))
        return 0
    st.info(common.over_budget(shape, f"the game plays passages of at most {most} characters, not {PASSAGE_CHARS}",
                               "start a new passage when one ends"))
    return most


def new_game(model: models.LoadedModel, at_hand: common.TextAtHand | None, seed: int, chars: int = PASSAGE_CHARS,
             should_stop: workload.StopCheck | None = None) -> Game:
    """A game on a passage of at most `chars` characters, scored up front; should_stop: as score_text's."""
    passage = common.passage(model, at_hand, chars, seed)[:chars]
    start = min(START, max(1, len(passage) - 1))
    scored = scoring.score_text(model.engine, model.chars, passage, start=1, top=len(model.chars),
                                should_stop=should_stop)
    ranked = [top if not math.isnan(s) else [] for top, s in zip(scored.top, scored.surprise)]
    game = Game(model.key, id(model.engine), passage, ranked, GuessScore(len(model.chars)), pos=start)
    game.skip_unscored()
    return game


def guess(char: str) -> None:
    """A guess (a button's callback): right reveals and advances, wrong is ruled out."""
    game: Game = st.session_state[GAME]
    game.notice = None
    if game.over:
        return
    ranking = game.ranked[game.pos - 1]
    if len(char) != 1:
        game.notice = "Type one character, then press Guess."
        return
    if char not in dict(ranking):
        game.notice = f"The model's text never uses {char_label(char)}: guess a character it knows."
        return
    if char in game.ruled_out:
        game.notice = f"{char_label(char)} is already ruled out."
        return
    if char == game.passage[game.pos]:
        reveal(game, len(game.ruled_out) + 1)
    else:
        game.ruled_out.append(char)


def guess_typed() -> None:
    guess(st.session_state.get("guess_input") or "")


def give_up() -> None:
    game: Game = st.session_state[GAME]
    game.notice = None
    if not game.over:
        reveal(game, None)


def reveal(game: Game, guesses: int | None) -> None:
    """Score the character, keep what the model expected for the page to show, and move on."""
    ranking = game.ranked[game.pos - 1]
    answer = game.passage[game.pos]
    chars = [c for c, _ in ranking]
    probs = np.array([p for _, p in ranking])
    rank = model_rank(probs, chars.index(answer))
    prob = float(probs[chars.index(answer)])
    game.score.add(guesses, rank, prob)
    game.last = Reveal(answer, guesses, rank, prob, ranking[:TOP])
    game.ruled_out = []
    game.pos += 1
    game.skip_unscored()


def new_passage() -> None:
    st.session_state.pop(GAME, None)
    st.session_state["guess_seed"] = sampling.fresh_seed()


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


BOUND = ("Your bits/char, and the model's counted as guesses, is Shannon's upper bound from guess counts: −Σ qᵢ log2 qᵢ, where qᵢ is the share of "
         "characters that took i guesses. It is the entropy of how often each count came up, not of how large the "
         "counts are: with the guesser's own ranking the counts alone spell the text, so a guesser who always "
         "needs 7 guesses is as predictable as one who always needs 1, and both score 0 bits. Two players with "
         "different guesses per character can therefore get equal figures, above all early on (one character "
         "played always gives 0.00); the bound settles over hundreds of characters. Guesses per character, "
         "above, says who guessed better.")


def equal_note(score: GuessScore) -> str | None:
    """A line when the visitor's and the model's bounds read the same though their guesses per character differ."""
    you, it = score.visitor_mean_guesses, score.model_mean_guesses
    if not score.count or format_fixed(score.visitor_bits) != format_fixed(score.model_rank_bits) or \
            format_fixed(you) == format_fixed(it):
        return None
    return (f"Your bound and the model's read the same though you needed {format_fixed(you)} guesses per "
            f"character and the model {format_fixed(it)}: the bound counts how often each number of guesses came "
            "up, not how many guesses they were.")


def scoreboard(score: GuessScore) -> None:
    cols = st.columns(4)
    first_time = sum(g == 1 for g in score.visitor_guesses)
    cols[0].metric("Characters played", f"{score.count}",
                   help=f"Right first time: {first_time}; gave up: {score.gave_up}.")
    cols[1].metric("You (bits/char)", format_fixed(score.visitor_bits),
                   help="Shannon's upper bound from how many guesses you needed (a give-up counts as needing "
                        "them all): the entropy of your guess counts, explained below the scores.")
    cols[2].metric("Model (bits/char)", format_fixed(score.model_bits),
                   help="The model's mean surprise at the same characters, -log2 of the probability it gave each.")
    cols[3].metric("Model, counted as guesses", format_fixed(score.model_rank_bits),
                   help="The same bound as yours, from the model's rank of each answer: a fair race with you.")
    if score.count:
        model_first = sum(rank == 1 for rank in score.model_ranks)
        st.caption(f"Right first time: you {first_time} of {score.count}, the model {model_first} · guesses per "
                   f"character: you {score.visitor_mean_guesses:.2f}, the model {score.model_mean_guesses:.2f} "
                   f"(its rank of the answer) · gave up: {score.gave_up}")
        if note := equal_note(score):
            st.caption(note)
        st.caption(BOUND)


def show_reveal(last: Reveal) -> None:
    you = (f"you needed {last.guesses} guess{'es' if last.guesses > 1 else ''}" if last.guesses
           else "you gave up")
    st.markdown(f"It was **{char_label(last.char)}**: {you}; the model ranked it **{ordinal(last.rank)}** "
                f"({last.prob:.1%}).")
    figures.show(charts.top_chars_chart(last.top, last.char), key="guess_chart", name="guess", width="stretch",
                 height=220)


def play(model: models.LoadedModel) -> None:
    at_hand, _ = common.training_text(model)
    if at_hand is None:
        st.caption("This model's training text is not here, so the game plays an example passage; with the text "
                   "at hand (the Corpus page) each new passage is a fresh stretch of its held-out part.")
    chars = passage_chars(model)
    if not chars:
        return
    game: Game | None = st.session_state.get(GAME)
    if game is None or game.model_key != model.key or game.engine_id != id(model.engine):
        try:
            game = new_game(model, at_hand, st.session_state.setdefault("guess_seed", 0), chars,
                            common.should_stop())
        except workload.Stopped:   # the visitor left or asked for another passage: keep nothing
            return
        st.session_state[GAME] = game
    scoreboard(game.score)
    board, reveal_col = st.columns([3, 2], gap="large")
    with board:
        shown = game.passage[max(0, game.pos - CONTEXT_CHARS):game.pos]
        if game.over:
            plain.block(shown)
            st.success("End of the passage. Start a new one to play on.")
        else:
            st.caption("The passage so far; ▮ is the character to guess.")
            plain.block(shown + "▮")
            with st.form("guess_form", clear_on_submit=True, border=False):
                c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
                c1.text_input("Your guess: the next character", max_chars=1, key="guess_input")
                c2.form_submit_button("Guess", type="primary", on_click=guess_typed)
            buttons = st.container(horizontal=True)
            buttons.button("␣ space", on_click=guess, args=(" ",), key="guess_space")
            buttons.button("⏎ new line", on_click=guess, args=("\n",), key="guess_newline")
            buttons.button("Give up", on_click=give_up, key="guess_give_up", icon=":material/flag:")
            if game.notice:
                st.warning(game.notice)
            if game.ruled_out:
                st.markdown("**Ruled out:** " + " ".join(char_label(c) for c in game.ruled_out))
        st.button("New passage", on_click=new_passage, key="guess_new", icon=":material/refresh:")
    with reveal_col:
        if game.last is not None:
            show_reveal(game.last)
        else:
            st.caption("After each character, the model's guesses appear here: its likeliest next characters "
                       "and where it ranked the right one.")


model = common.page_start(TITLE, INTRO)
if model is not None:
    play(model)
