"""Models published to the class: a visitor's own model, read-only on this server under a short link (?model=p-…).

The owner publishes from Generate; anyone with the link can write with it and open every Learn part on it (it
joins their model lists), but never trains over it (the Train page's "Start from" does not offer it) and never
reaches the owner's session. Each published model is the model as this app writes it (weights and checked
metadata, read back through the checked model-file reader), kept in one server folder; the registry is one per
process, guarded by a lock. Caps: models and megabytes per visitor and for the whole server; each expires after
CHARLM_PUBLISH_TTL_S, and its owner can withdraw it sooner.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from charlm.modelfile import checkpoint

from . import models
from . import settings as settings_mod

PREFIX = "p-"              # a published model's key starts so (shipped ones are "shipped…", a session's others)
_OWNER = "publish_owner"   # session_state: this visitor's private owner id (never in an address)
_SEEN = "published_seen"   # session_state: published ids this visitor opened by a link, oldest first
now = time.time            # the clock expiry reads (tests put a fake one here)


@dataclass
class Entry:
    key: str                       # "p-" + the random id: the link's model=
    owner: str                     # the publishing session's owner id
    loaded: models.LoadedModel     # built once, shared read-only by every visitor (as the shipped models are)
    nbytes: int                    # what it holds here: its file and its engine's arrays, the larger
    expires: float                 # `now()` after which it is gone


_lock = threading.Lock()
_entries: dict[str, Entry] = {}
_folder: Path | None = None


def _dir() -> Path:
    global _folder
    if _folder is None or not _folder.is_dir():
        _folder = Path(tempfile.mkdtemp(prefix="charlm-published-"))
    return _folder


def _sweep() -> None:
    """Forget expired models (their files go too); the lock is held."""
    for key in [k for k, e in _entries.items() if e.expires <= now()]:
        _forget(key)


def _forget(key: str) -> None:
    entry = _entries.pop(key, None)
    if entry is not None and entry.loaded.source is not None:
        shutil.rmtree(entry.loaded.source.parent, ignore_errors=True)


def owner() -> str:
    """This visitor's owner id: kept in session state, so it follows the session and nothing else."""
    return st.session_state.setdefault(_OWNER, secrets.token_urlsafe(16))


def is_published(key: str) -> bool:
    return key.startswith(PREFIX)


def publishable(model: models.LoadedModel) -> bool:
    """A visitor's own model (trained here, an earlier run, an upload): not a shipped or a published one."""
    return model.key not in models.SHIPPED and not is_published(model.key) and model.source is not None


def publish(model: models.LoadedModel) -> Entry:
    """Publish a visitor's own model; ValueError with a message for people when a cap or the file says no."""
    settings = settings_mod.get()
    try:
        data = model.source.read_bytes()
    except OSError as err:
        raise ValueError(f"This model's file could not be read ({err.strerror}); it cannot be published.") from None
    try:   # checked like any upload, within this server's caps
        ckpt = checkpoint.load(data, limits=settings.limits())
    except checkpoint.CheckpointError as err:
        raise ValueError(f"This model cannot be published: {err}") from None
    kept = checkpoint.to_bytes(ckpt)
    nbytes = max(len(kept), models.memory_bytes(ckpt))
    me = owner()
    with _lock:
        _sweep()
        _check_caps(settings, me, nbytes)
        key = PREFIX + secrets.token_urlsafe(9)   # 12 url-safe characters: 72 random bits
        path = Path(tempfile.mkdtemp(prefix=key + "-", dir=_dir())) / "model.safetensors"
        try:
            path.write_bytes(kept)
        except OSError as err:
            shutil.rmtree(path.parent, ignore_errors=True)
            raise ValueError(f"This server could not keep the model ({err.strerror}). Try again in a while.") from None
        label = f"Published: {model.label.removeprefix('Published: ')} ({key})"
        loaded = models._from_checkpoint(checkpoint.load(path, limits=settings.limits()), key, label, source=path)
        _entries[key] = Entry(key, me, loaded, nbytes, now() + settings.publish_ttl_s)
        return _entries[key]


def _check_caps(settings: settings_mod.Settings, me: str, nbytes: int) -> None:
    mine = [e for e in _entries.values() if e.owner == me]
    if len(mine) >= settings.publish_max_per_visitor:
        raise ValueError(f"You have published {len(mine)} models, as many as a visitor may at once "
                         "(CHARLM_PUBLISH_MAX_PER_VISITOR): withdraw one first.")
    if sum(e.nbytes for e in mine) + nbytes > settings.publish_visitor_mb * 1e6:
        raise ValueError(f"Your published models would hold more than {settings.publish_visitor_mb:,g} MB "
                         "(CHARLM_PUBLISH_VISITOR_MB): withdraw one first, or publish a smaller model.")
    if len(_entries) >= settings.publish_max_models:
        raise ValueError(f"This server holds {len(_entries)} published models, as many as it may "
                         "(CHARLM_PUBLISH_MAX_MODELS): try again when one has expired or been withdrawn.")
    if sum(e.nbytes for e in _entries.values()) + nbytes > settings.publish_max_mb * 1e6:
        raise ValueError(f"Published models would hold more than {settings.publish_max_mb:,g} MB on this server "
                         "(CHARLM_PUBLISH_MAX_MB): try again when one has expired or been withdrawn.")


def withdraw(key: str) -> bool:
    """Withdraw one of this visitor's published models; False when it is not theirs (or already gone)."""
    with _lock:
        entry = _entries.get(key)
        if entry is None or entry.owner != owner():
            return False
        _forget(key)
        return True


def mine() -> list[Entry]:
    """This visitor's published models that have not expired, oldest first."""
    me = owner() if _OWNER in st.session_state else None
    with _lock:
        _sweep()
        return [e for e in _entries.values() if e.owner == me]


def find(key: str) -> models.LoadedModel | None:
    """A published model by its key, if it is still published."""
    with _lock:
        _sweep()
        entry = _entries.get(key)
        return entry.loaded if entry is not None else None


def open_link(key: str) -> bool:
    """A visitor came with a link to a published model: it joins their lists. False when it is not published."""
    if find(key) is None:
        return False
    seen = st.session_state.setdefault(_SEEN, [])
    if key not in seen:
        seen.append(key)
    return True


def seen_models() -> list[models.LoadedModel]:
    """The published models this visitor has opened or published, still published, in the order they came."""
    keys = list(st.session_state.get(_SEEN, [])) + [e.key for e in mine()]
    found = {key: find(key) for key in dict.fromkeys(keys)}
    return [model for model in found.values() if model is not None]


def expires_in(entry: Entry) -> str:
    """How long until it expires, for people."""
    left = max(0.0, entry.expires - now())
    return f"{left / 3600:.1f} hours" if left >= 3600 else f"{max(1, round(left / 60))} minutes"


def clear() -> None:
    """Forget every published model (tests)."""
    with _lock:
        for key in list(_entries):
            _forget(key)


def control(model: models.LoadedModel) -> None:
    """Generate's Publish popover, beside the model picker: publish this model, and withdraw what was published."""
    entries = mine()
    if not publishable(model) and not entries:
        return
    with st.popover("Publish to the class", icon=":material/group:"):
        if publishable(model):
            st.markdown("Publish this model on this server, read-only, under a short link: anyone with the link "
                        "can write with it and open every Learn part on it, never train over it or see your "
                        f"session. It expires after {settings_mod.get().publish_ttl_s / 3600:g} hours.")
            st.button("Publish", type="primary", key="publish_model", on_click=_on_publish, args=(model,))
        problem = st.session_state.pop(_PROBLEM, None)
        if problem:
            st.error(problem)
        for entry in entries:
            st.text(entry.loaded.label)   # from the model file: plain text
            st.caption(f"Expires in {expires_in(entry)}. Choose it on Generate or a Learn part and copy its link.")
            st.button("Withdraw", key=f"withdraw_{entry.key}", icon=":material/delete:", on_click=withdraw,
                      args=(entry.key,))


_PROBLEM = "publish_problem"
PICKER = "gen_model"   # Generate's model picker: a model just published is chosen there, ready to share


def _on_publish(model: models.LoadedModel) -> None:
    # A callback, so the picker (drawn before the button) can still be set before it is drawn again.
    try:
        st.session_state[PICKER] = publish(model).key
    except ValueError as err:
        st.session_state[_PROBLEM] = str(err)
