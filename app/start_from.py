"""The Train page's "Start from" choice: a new model, or a new run from a trained one (charlm.train.startfrom).

A run started from a model takes its architecture and recipe from the model; the page gives the budget.
"""

from __future__ import annotations

import streamlit as st

from app import models, plain, state
from app import settings as settings_mod
from app.writing import char_label
from charlm.modelfile import checkpoint
from charlm.config import Limits, TrainConfig
from charlm.errors import UserError
from charlm.text.corpus import Corpus
from charlm.train.startfrom import StartFrom, start_from
from charlm.units import plural

NEW = "new"                                       # the choice of a new model (the preset's)
NEW_LABEL = "Nothing: a new model (the preset's)"
KEY = "train_start_from"                          # the widget's key
_PREPARED = "start_from_prepared"                 # session_state: the last choice's StartFrom (or its error)
SHOWN_CHARS = 60                                  # new characters listed by name; the rest are counted


def choices() -> dict[str, models.LoadedModel | None]:
    """What a run can start from, by key: nothing, the shipped models, this session's model, uploads."""
    shipped, _ = models.all_shipped()   # one that does not load is left out (Generate says why)
    try:
        trained = models.trained(state.job())
    except checkpoint.CheckpointError:   # Generate says why
        trained = None
    found = shipped + ([trained] if trained is not None else []) + models.uploads()
    return {NEW: None} | {model.key: model for model in found if model.source is not None}


def choose(disabled: bool) -> models.LoadedModel | None:
    """The Start-from selector; -> the chosen model, or None for a new model."""
    options = choices()
    if st.session_state.get(KEY) not in options:   # first visit, or the chosen model is gone
        st.session_state[KEY] = NEW
    key = st.selectbox("Start from", list(options), format_func=lambda k: options[k].label if options[k] else NEW_LABEL,
                       key=KEY, persist_state="session", disabled=disabled,
                       help="A new model learns from scratch. A trained model goes on learning from what it knows: "
                            "its architecture and training recipe come with it, and characters of this text it never "
                            "saw are added. (Resume, below a run, continues that run on its own text.)")
    model = options[key]
    if model is not None:
        st.text(model.summary)   # from the model file: plain text, never markdown
        st.caption("Its architecture and training recipe (sequence length, batch size, learning rate) come with it; "
                   "the budget is yours.")
    return model


def prepare(model: models.LoadedModel, corpus: Corpus) -> tuple[StartFrom, TrainConfig]:
    """The new run's start (text, config, weights) and the model's own recipe (its budget for the page to replace);
    UserError (said for people) when this model cannot start on this text. Kept while the choice stays."""
    try:
        version = (model.key, str(model.source), model.source.stat().st_mtime_ns)
    except OSError:
        raise UserError(f"The file of {model.label} is gone; choose another model.") from None
    cached = st.session_state.get(_PREPARED)
    if cached is None or cached[0] != version or cached[1] is not corpus:
        try:
            cached = (version, corpus, _prepared(model, corpus), None)
        except UserError as err:   # said for people, naming the model
            cached = (version, corpus, None, str(err))
        st.session_state[_PREPARED] = cached
    if cached[3] is not None:
        raise UserError(cached[3])
    return cached[2]


def _prepared(model: models.LoadedModel, corpus: Corpus) -> tuple[StartFrom, TrainConfig]:
    settings = settings_mod.get()
    # Shipped models load as models.shipped does; the page then checks them against this server's caps and
    # says so. Files from visitors (and this session's) load within the caps, as they did to be listed.
    limits = Limits() if model.key in models.SHIPPED else settings.limits()
    try:
        ckpt = checkpoint.load(model.source, limits=limits)
        recipe = ckpt.train_cfg()
    except UserError as err:   # CheckpointError, or a recipe out of range
        raise UserError(f"{model.label} cannot start a run: {err}") from None
    start = start_from(ckpt, corpus, file_name(model), max_vocab=settings.limits().max_vocab)
    return start, recipe


def forget() -> None:
    """Drop the prepared start (its weights): the run that took it holds them now."""
    st.session_state.pop(_PREPARED, None)


def file_name(model: models.LoadedModel) -> str:
    """The model's file name as the visitor knows it, which the new run records as where it started."""
    job = state.job()
    if model.key == "trained" and job is not None:
        return models.download_name(job)   # what its download is called
    return model.source.name               # a shipped file's, or an upload's own name


def show_new_chars(start: StartFrom) -> None:
    """Say which characters of the text the model never saw, before Start adds them."""
    new = start.origin.get("new_chars", "")
    if not new:
        st.caption("The model knows every character of this text.")
        return
    names = " ".join(char_label(c) for c in new[:SHOWN_CHARS])
    more = f" and {len(new) - SHOWN_CHARS} more" if len(new) > SHOWN_CHARS else ""
    st.info(f"This text has {plural(len(new), 'character')} the model never saw; Start adds "
            f"{'it' if len(new) == 1 else 'them'}, each beginning as the model's average character: {names}{more}",
            icon=":material/add_circle:")


def origin_line(origin: dict) -> str:
    """Where a run started, for the page (markdown, escaped): "Started from demo.safetensors (cpu-fast, ...)"."""
    trained_on = origin.get("started_from_corpus")
    about = ", ".join(part for part in (origin.get("started_from_preset"),
                                        f"trained on {trained_on}" if trained_on else None) if part)
    new = origin.get("new_chars", "")
    added = f"; {plural(len(new), 'new character')} added" if new else ""
    return plain.escape(f"Started from {origin['started_from']}" + (f" ({about})" if about else "")
                        + added + ".")
