"""What every Learn page shares: the model being explained, the text it learned from, and how text is shown.

Every part works on the shipped models with nothing trained, on this session's model, and on uploads.
Some parts need the model's training text (baselines, copied spans): it is at hand when a text with
the same sha256 as the one recorded in the model file is here (the session's corpus, Python's own
documentation, or the Nietzsche text once downloaded); otherwise the page says so.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner_utils import script_requests
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from app import links, models, state, visitors
from app.learn import figures, path
from app import settings as settings_mod
from charlm import workload
from charlm.text import datasets
from charlm.engine.arrays import ArrayLSTM
from charlm.text.corpus import Corpus, load_corpus
from charlm.text.read import CorpusError

MODEL_KEY = "learn_model"   # one choice for every Learn page

# A passage for models whose text is not at hand: plain English the Nietzsche models know every character of.
EXAMPLE_TEXT = (
    'He said, "The truth is rarely pure and never simple." Is it so? Perhaps the philosopher (who '
    "doubts everything) must first doubt himself: in 1886 he wrote that every great philosophy has been "
    'the confession of its author. "Beyond good and evil" is not beyond good and bad.\n'
)


@dataclass
class TextAtHand:
    """A model's training text, here: the whole of it, and its split as training used it."""
    corpus: Corpus
    source: str          # for people: where it was found

    @property
    def text(self) -> str:
        return self.corpus.text

    def split_text(self) -> tuple[str, str]:
        """(training part, validation part), cut where training cut it."""
        train_ids, _ = self.corpus.split()
        return self.text[:len(train_ids)], self.text[len(train_ids):]


def learn_models() -> list[models.LoadedModel]:
    """The models a visitor can explore: the shipped ones, this session's runs, uploads."""
    return models.available()


def pick_model(label: str = "Model to explore") -> models.LoadedModel | None:
    """The model picker every Learn page starts with (one choice shared by all of them)."""
    choices = learn_models()
    if not choices:
        st.info("No model yet: train one on the Train page, or upload a model file there.")
        return None
    return models.pick(choices, label, MODEL_KEY)


def page_start(title: str, intro: str) -> models.LoadedModel | None:
    """A Learn page's title, its short text, and the model picker; -> the chosen model."""
    figures.projector_toggle()
    st.title(title)
    path.header(title)
    st.markdown(intro)
    page = links.PATH_OF_TITLE[title]
    linked = links.arrive(page, MODEL_KEY)   # a share link's model and values (app/links.py), once
    model = pick_model()
    if model is not None:
        links.settle(page, linked, model, started=st.session_state.setdefault(_STARTED_FOR, {}))
    return model


@st.cache_resource(show_spinner=False, max_entries=4)
def _python_docs() -> Corpus | None:
    try:
        return load_corpus(datasets.python_docs(), "python-docs.txt")
    except (datasets.DatasetError, CorpusError):
        return None


@st.cache_resource(show_spinner=False, max_entries=2)
def _cached_nietzsche(path: str, mtime_ns: int) -> Corpus | None:
    try:
        return load_corpus(Path(path).read_bytes(), "nietzsche.txt")
    except (OSError, CorpusError):
        return None


_SHAS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # Corpus -> its text's sha256, computed once


def corpus_sha(corpus: Corpus) -> str:
    """The sha256 of a corpus's text (what model files record), computed once per corpus."""
    if corpus not in _SHAS:
        _SHAS[corpus] = hashlib.sha256(corpus.text.encode()).hexdigest()
    return _SHAS[corpus]


def training_text(model: models.LoadedModel) -> tuple[TextAtHand | None, str]:
    """The model's training text if it is here, and a line for people saying where it came from (or why not)."""
    wanted = model.info.get("corpus_sha256")
    name = model.info.get("corpus") or "its training text"
    if not wanted:
        return None, "This model's file does not record which text it learned from, so its text is not at hand."
    candidates = []
    chosen = state.corpus()
    if chosen is not None:
        candidates.append((chosen.corpus, f"this session's text ({chosen.source})"))
    docs = _python_docs()
    if docs is not None:
        candidates.append((docs, "Python's own documentation, built in"))
    cache = settings_mod.get().cache_path / datasets.NIETZSCHE_FILE
    if cache.is_file():
        nietzsche = _cached_nietzsche(str(cache), cache.stat().st_mtime_ns)
        if nietzsche is not None:
            candidates.append((nietzsche, "the Nietzsche text, downloaded on the Corpus page"))
    for corpus, source in candidates:
        if corpus_sha(corpus) == wanted:
            return TextAtHand(corpus, source), f"Its training text is at hand: {source}."
    hint = (" Load it on the Corpus page (Built-in corpora) to use it here." if name == datasets.NIETZSCHE_FILE
            else " Choose the same text on the Corpus page to use it here.")
    return None, f"This model learned from {name}, which is not at hand in this session.{hint}"


_NUMBER = (int, float)
# What each field of a history row holds (charlm/train.py writes them); a row with another kind is left out.
_ROW_KINDS = {"step": int, "epoch": _NUMBER, "chars_seen": int, "elapsed_s": _NUMBER, "train_s": _NUMBER,
              "train_loss": _NUMBER, "val_loss": _NUMBER, "lr": _NUMBER, "sample": str}


def _row_is_sound(row: dict) -> bool:
    if not isinstance(row.get("step"), int) or isinstance(row["step"], bool):
        return False
    return all(row.get(name) is None or (isinstance(row[name], kind) and not isinstance(row[name], bool))
               for name, kind in _ROW_KINDS.items())


def history(model: models.LoadedModel) -> tuple[list[dict], int]:
    """The model's evaluation rows whose fields hold what charlm writes there, and how many others were left out.

    A model file is anyone's: a loss written as text or a sample as a list would break the charts and pages
    that read them, so such a row is skipped as a whole."""
    rows = [row for row in model.history if _row_is_sound(row)]
    return rows, len(model.history) - len(rows)


def skipped_note(skipped: int) -> None:
    """A line saying how many rows of a model's history were left out, when any were."""
    if skipped:
        st.caption(f"{skipped:,} {'row' if skipped == 1 else 'rows'} of this model's training record "
                   f"{'was' if skipped == 1 else 'were'} left out: {'its' if skipped == 1 else 'their'} "
                   "values are not numbers and text where charlm writes them.")


def passage(model: models.LoadedModel, at_hand: TextAtHand | None, length: int = 600, seed: int = 0) -> str:
    """A passage to start from: a stretch of the model's validation text when it is here, else an example."""
    if at_hand is None:
        return EXAMPLE_TEXT if not model.vocab.missing(EXAMPLE_TEXT) else _known_text(model, length, seed)
    _, val = at_hand.split_text()
    start = np.random.default_rng(seed).integers(0, max(1, len(val) - length))
    # Begin at a line start when there is one nearby, so the passage reads naturally.
    newline = val.find("\n", int(start), int(start) + 200)
    start = newline + 1 if newline >= 0 else int(start)
    return val[start:start + length]


def _known_text(model: models.LoadedModel, length: int, seed: int) -> str:
    """The model's own samples from training, else its most common characters: text it can read."""
    samples = [row["sample"] for row in history(model)[0] if row.get("sample")]
    if samples:
        return samples[-1][:length]
    return "".join(model.chars[: min(len(model.chars), 40)])


def engine_fingerprint(engine: ArrayLSTM) -> str:
    """A short digest of an engine's weights: st.cache_data's key for it (hash_funcs), so a page's cache
    never serves one model's numbers for another, even a newer checkpoint under the same key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((engine.window, engine.table.shape, len(engine.w_hh))).encode())
    for part in (engine.head_b, engine.head_w[:, 0], engine.table[0], engine.w_hh[-1][0]):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


ENGINE_HASH = {ArrayLSTM: engine_fingerprint}   # hash_funcs for st.cache_data functions that take an engine
_STARTED_FOR = "learn_widgets_started_for"      # widget key -> the model its value was started for


def start_values(model_key: str, **defaults) -> None:
    """Widgets whose first value comes from the model (its passage, its window, its vocabulary's size): set
    them in session_state on the first view and again whenever another model is chosen, so a value never
    belongs to the last model (a top-k above this vocabulary, that model's passage). Create the widgets
    with these keys and no `value`."""
    started = st.session_state.setdefault(_STARTED_FOR, {})
    for key, value in defaults.items():
        if started.get(key) != model_key or key not in st.session_state:
            st.session_state[key] = value
            started[key] = model_key



def should_stop() -> workload.StopCheck:
    """For this script run's long loops: True once the visitor's page has closed (their browser's session is no
    longer connected), or Streamlit has asked this run to stop or to give way to a new one (the visitor
    changed something). The work is then of no use to anyone, and the loop ends within a few characters."""
    ctx = get_script_run_ctx()
    if ctx is None:                                     # outside a page (a script): nothing to watch
        return lambda: False
    session_id, requests = ctx.session_id, ctx.script_requests
    watched = visitors.is_browser_session(session_id)   # False under AppTest, which has no connection to lose
    return lambda: (watched and not visitors.is_browser_session(session_id)) or _run_ends(requests)


def _run_ends(requests) -> bool:
    """Whether Streamlit's pending request ends the script run at its next st call: a stop, or a rerun that
    is not only a fragment's (those wait for the run). Read from Streamlit's ScriptRequests (pinned version;
    tests/test_app_learn_writing.py holds it), which offers no public way to peek."""
    state = getattr(requests, "_state", None)
    if state == script_requests.ScriptRequestType.STOP:
        return True
    if state != script_requests.ScriptRequestType.RERUN:
        return False
    data = requests._rerun_data
    return not script_requests._fragment_run_should_not_preempt_script(data.fragment_id_queue,
                                                                       data.is_fragment_scoped_rerun)


def over_budget(shape: workload.Shape, what: str, lower: str) -> str:
    """The line for work shrunk or refused by the bound: what the model is, what fits, and what to lower."""
    return (f"With this model ({shape.describe()}) {what} here, to keep each click within about "
            f"{workload.BUDGET_S:g} seconds of the server's time; {lower}.")
