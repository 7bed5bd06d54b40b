"""The models a visitor can write with: the shipped one (loaded once per server), this session's, uploads."""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from charlm import files
from charlm.modelfile import checkpoint
from charlm.engine.arrays import ArrayLSTM
from charlm.text.corpus import Vocab
from charlm.engine.decoding import Engine, engine_for
from charlm.train.jobs import TrainingJob
from charlm.units import LN2

from . import plain, state
from . import settings as settings_mod
from .writing import SHIPPED_LABEL

REPO = Path(__file__).resolve().parent.parent
SHIPPED_PATH = REPO / "checkpoints" / "demo.safetensors"
MODEL_CARD_PATH = REPO / "checkpoints" / "MODEL_CARD.md"
MAX_UPLOADS = 5   # uploaded models a visitor keeps at once (each holds its weights in memory)

_TRAINED = "trained_model"
_UPLOADS = "uploaded_models"
_KEPT_MODELS = "kept_run_models"


@dataclass
class LoadedModel:
    key: str                  # the choice: "shipped", "trained" or "upload:<hash>"
    label: str                # for the model picker
    engine: Engine            # what writes (numpy, on the CPU), built once; "shipped"'s is shared read-only
    vocab: Vocab
    summary: str              # preset, size, validation loss, for people (plain text: escape it in markdown)
    nbytes: int = 0           # memory its engine's arrays hold here
    preset: str = "custom"
    config: dict = field(default_factory=dict)     # ModelConfig fields
    history: list = field(default_factory=list)    # one row per evaluation: step, elapsed_s, losses, sample
    info: dict = field(default_factory=dict)       # corpus name and sha256, characters, device
    window: int | None = None                      # a window model (the 2017 design) re-reads this many
    source: Path | None = None                     # the file it was loaded from (an upload's private copy)
    best_step: int | None = None                   # the step of the evaluation its weights are from

    @property
    def chars(self) -> list[str]:
        return list(self.vocab.chars)


def _from_checkpoint(ckpt: checkpoint.Checkpoint, key: str, label: str, source: Path | None = None) -> LoadedModel:
    # The numpy engine, from the file's weights: one character at a time is latency-bound, the CPU serves it best.
    engine = engine_for(ckpt)
    best = ckpt.best_evaluation()
    best_step = ckpt.history[best].get("step") if best is not None else None
    return LoadedModel(key, label, engine, ckpt.get_vocab(), summary(ckpt), engine.nbytes, preset=ckpt.preset,
                       config=dict(ckpt.model_config), history=list(ckpt.history), info=dict(ckpt.info),
                       window=ckpt.window, source=source,
                       best_step=best_step if isinstance(best_step, int) else None)


def memory_bytes(ckpt: checkpoint.Checkpoint) -> int:
    """What a loaded model will hold (its engine's arrays), known from its config before anything is built."""
    return ArrayLSTM.bytes_for(ckpt.model_config)


def summary(ckpt: checkpoint.Checkpoint) -> str:
    cfg = ckpt.model_config
    parts = [f"preset {ckpt.preset}", f"{cfg['num_layers']} × LSTM({cfg['hidden_size']})",
             f"{ckpt.num_parameters():,} parameters", f"{len(ckpt.vocab)} characters"]
    if ckpt.best_val_loss is not None:
        parts.append(f"validation loss {ckpt.best_val_loss / LN2:.2f} bits/char "
                     f"({ckpt.best_val_loss:.3f} nats)")
    if ckpt.window:
        parts.append(f"reads a {ckpt.window}-character window")
    return " · ".join(parts)


# The models this project ships (checkpoints/), each with its model card: key -> (file, label, card).
_CHECKPOINTS = REPO / "checkpoints"
SHIPPED = {
    "shipped": (SHIPPED_PATH, SHIPPED_LABEL, MODEL_CARD_PATH),
    "shipped:python-docs": (_CHECKPOINTS / "python-docs.safetensors", "Python docs model (shipped)",
                            _CHECKPOINTS / "MODEL_CARD-python-docs.md"),
    "shipped:seed-2017": (_CHECKPOINTS / "seed-2017.safetensors", "The 2017 design (shipped, Nietzsche)",
                          _CHECKPOINTS / "MODEL_CARD-seed-2017.md"),
}


@st.cache_resource(show_spinner="Loading the demo model…")
def shipped(key: str = "shipped") -> LoadedModel:
    """A shipped model in checkpoints/, loaded once per server; raises CheckpointError if it is missing or bad."""
    path, label, _ = SHIPPED[key]
    return _from_checkpoint(checkpoint.load(path), key, label, source=path)


def all_shipped() -> tuple[list[LoadedModel], list[str]]:
    """Every shipped model that loads, and a line for each that does not."""
    loaded, problems = [], []
    for key, (_, label, _) in SHIPPED.items():
        try:
            loaded.append(shipped(key))
        except checkpoint.CheckpointError as err:
            problems.append(f"{label} could not be loaded: {err}")
    return loaded, problems


def model_card(key: str = "shipped") -> str | None:
    """A shipped model's card (markdown written by this project), or None when its file is missing."""
    try:
        return SHIPPED[key][2].read_text(encoding="utf-8")
    except OSError:
        return None


def trained(job: TrainingJob | None) -> LoadedModel | None:
    """This session's model: the job's best checkpoint so far, reloaded only when the file changes."""
    path = job.best_checkpoint() if job is not None else None
    if path is None:
        return None
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = st.session_state.get(_TRAINED)
    if cached is not None and cached[0] == (str(path), mtime):
        return cached[1]
    # Written atomically by the trainer, so never half a file; checked like any other.
    ckpt = checkpoint.load(path, limits=settings_mod.get().limits())
    name = job.corpus.name
    number = state.run_number()
    loaded = _from_checkpoint(ckpt, "trained", f"Trained here: {name}" + (f" (run {number})" if number > 1 else ""),
                              source=path)
    st.session_state[_TRAINED] = ((str(path), mtime), loaded)
    return loaded


def add_upload(name: str, data: bytes) -> LoadedModel:
    """Load an uploaded checkpoint safely, within the server's caps; CheckpointError (or state.DiskFull) says
    what is wrong with it.

    The file's config is checked against the caps before any weight is read, and all of one visitor's
    uploads together hold at most CHARLM_MAX_UPLOAD_MB: the oldest make room for a new one. What is kept in
    the visitor's private folder (its `source`, so a new run can start from it) is the model as this app
    writes it, weights and checked metadata, never the uploaded bytes: padding or anything else the file
    carried beside the model is left behind. It must fit the visitors' disk budget (CHARLM_MAX_DISK_MB).
    """
    settings = settings_mod.get()
    ckpt = checkpoint.load(data, limits=settings.limits())
    need, budget = memory_bytes(ckpt), int(settings.max_upload_mb * 1e6)
    if need > budget:
        raise checkpoint.CheckpointError(
            f"This model would hold about {need / 1e6:,.0f} MB here; a visitor's uploaded models may hold "
            f"{budget / 1e6:,.0f} MB in all on this server (CHARLM_MAX_UPLOAD_MB). Upload a smaller model.")
    kept = checkpoint.to_bytes(ckpt)
    key = "upload:" + hashlib.sha256(kept).hexdigest()[:16]   # the same model, however it was padded
    uploads = st.session_state.setdefault(_UPLOADS, {})
    if key not in uploads:
        while uploads and (len(uploads) >= MAX_UPLOADS or sum(m.nbytes for m in uploads.values()) + need > budget):
            _drop_upload(next(iter(uploads)))   # the oldest goes, its copy too
        make_room(len(kept))
        source = _upload_path(name)
        try:
            files.write_atomically(source, kept)
        except OSError as err:
            shutil.rmtree(source.parent, ignore_errors=True)
            raise checkpoint.CheckpointError(f"This server could not keep a copy of the file ({err.strerror}). "
                                             "Try again in a while.") from None
        uploads[key] = _from_checkpoint(ckpt, key, f"Uploaded: {name}", source=source)
    return uploads[key]


def _drop_upload(key: str) -> None:
    dropped = st.session_state.get(_UPLOADS, {}).pop(key, None)
    if dropped is not None and dropped.source is not None:
        shutil.rmtree(dropped.source.parent, ignore_errors=True)


def make_room(need: int) -> None:
    """Make room for `need` bytes in the visitors' disk budget, the oldest of this visitor's kept uploads and
    earlier runs going first; state.DiskFull (a ValueError, with a message for people) when there is none."""
    def dropper(key: str):
        return lambda: _drop_upload(key)
    kept_uploads = [state.Droppable(model.source.parent, dropper(key))
                    for key, model in st.session_state.get(_UPLOADS, {}).items() if model.source is not None]
    state.make_room(need, kept_uploads + state.droppable_runs())


def _upload_path(name: str) -> Path:
    """A new private file for an upload, named as the visitor named it when that is a plain file name
    (a run started from it records the name), else model.safetensors or model.pt."""
    plain = Path(name).name
    if not re.fullmatch(r"\w[\w .+()-]{0,99}", plain):
        plain = "model.pt" if plain.lower().endswith(".pt") else "model.safetensors"
    return state.new_private_dir("upload-") / plain


def available(advice: str = "") -> list[LoadedModel]:
    """Every model this visitor can use, in the pickers' order: shipped, this session's, earlier runs, uploads,
    and the published models this visitor opened by a link or published (app/published.py).

    A model that cannot be loaded is left out with a warning (followed by `advice`, what to do instead).
    """
    choices, problems = all_shipped()
    for problem in problems:
        st.warning(f"{plain.escape(problem)}.{advice}")
    try:
        current = trained(state.job())
    except checkpoint.CheckpointError as err:
        st.warning(f"This session's model could not be loaded: {plain.escape(str(err))}")
        current = None
    from . import published   # it builds on this module's LoadedModel
    return choices + ([current] if current is not None else []) + kept() + uploads() + published.seen_models()


def pick(choices: list[LoadedModel], label: str, key: str) -> LoadedModel:
    """The model picker Generate and the Learn parts start with, and the chosen model's summary under it.

    `key` holds the choice for the session. The picker opens on the session's newest model (see newest), and
    moves to a model once, when it first appears (a run's first checkpoint, an upload): a choice the visitor
    makes afterwards stays. A choice no longer offered (a model gone) falls back to the newest."""
    by_key = {m.key: m for m in choices}
    seen_key = f"{key}_seen"   # every model this picker has offered, by identity
    seen = st.session_state.get(seen_key)
    offered = {_identity(m): m for m in choices}
    fresh = newest([m for ident, m in offered.items() if seen is None or ident not in seen])
    if seen is None and st.session_state.get(key) in by_key:
        fresh = None   # a choice made before this picker first drew (a link, a test) stands
    if fresh is not None or st.session_state.get(key) not in by_key:
        st.session_state[key] = (fresh or newest(choices) or choices[0]).key
    st.session_state[seen_key] = set(seen or ()) | set(offered)
    chosen = by_key[st.selectbox(label, list(by_key), format_func=lambda k: by_key[k].label, key=key,
                                 persist_state="session")]
    st.text(chosen.summary)   # from the model file: plain text, never markdown
    return chosen


def newest(choices: list[LoadedModel]) -> LoadedModel | None:
    """The session's newest model among `choices`: the current run's, else the latest kept run's, else the last
    upload; None when all are shipped. (available() lists kept runs newest first, uploads oldest first.)"""
    current = [m for m in choices if m.key == "trained"]
    runs = [m for m in choices if m.key.startswith("run:")]
    added = [m for m in choices if m.key.startswith("upload:")]
    return next(iter(current + runs + added[::-1]), None)


def _identity(model: LoadedModel) -> str:
    """What stays the same for one model however it is listed: the current run is "trained" while it is the
    current one and "run:N" once kept, its later checkpoints are the same model; an upload is its hash."""
    return f"run:{state.run_number()}" if model.key == "trained" else model.key


def kept() -> list[LoadedModel]:
    """The visitor's earlier runs' models, newest first, each loaded once per version of its file."""
    cache = st.session_state.setdefault(_KEPT_MODELS, {})
    loaded, keys = [], set()
    for run in reversed(state.kept_runs()):
        path = run.job.best_checkpoint()
        if path is None:
            continue
        key, version = f"run:{run.number}", (str(path), path.stat().st_mtime_ns)
        keys.add(key)
        if key not in cache or cache[key][0] != version:
            ckpt = checkpoint.load(path, limits=settings_mod.get().limits())
            cache[key] = (version, _from_checkpoint(ckpt, key, run.label))
        loaded.append(cache[key][1])
    for gone in set(cache) - keys:   # a run dropped to make room takes its engine along
        del cache[gone]
    return loaded


def uploads() -> list[LoadedModel]:
    return list(st.session_state.get(_UPLOADS, {}).values())


def download_name(job: TrainingJob) -> str:
    """The file name a run's model downloads as (and is recorded as, when a new run starts from it)."""
    return f"charlm-{Path(job.corpus.name).stem or 'corpus'}-{job.preset}.safetensors"


def download_bytes(path: Path) -> bytes:
    """A checkpoint file's bytes for the download button, read once per version of the file."""
    key = ("download", str(path), path.stat().st_mtime_ns)
    cached = st.session_state.get("download_cache")
    if cached is None or cached[0] != key:
        cached = (key, path.read_bytes())
        st.session_state["download_cache"] = cached
    return cached[1]
