"""The server's limits in one place: environment variables, else .streamlit/secrets.toml, else safe defaults."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    max_jobs: int = 2                     # training jobs running at once on this server (all visitors)
    max_corpus_mb: float = 5.0            # corpus size cap, in millions of characters
    max_train_minutes: float = 10.0       # budget cap for one training run (and for each resume)
    max_hidden: int = 512                 # LSTM units per layer, for trained and uploaded models
    max_layers: int = 3                   # LSTM layers, likewise
    abandon_after_s: float = 120.0        # a job whose page stopped polling this long stops itself
    cache_dir: str = "~/.cache/charlm"    # downloaded built-in corpora (shared, read-only data)

    @property
    def max_corpus_chars(self) -> int:
        return int(self.max_corpus_mb * 1_000_000)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()


# Setting name (environment variable and secrets.toml key) -> field.
NAMES = {
    "CHARLM_MAX_JOBS": "max_jobs",
    "CHARLM_MAX_CORPUS_MB": "max_corpus_mb",
    "CHARLM_MAX_TRAIN_MINUTES": "max_train_minutes",
    "CHARLM_MAX_HIDDEN": "max_hidden",
    "CHARLM_MAX_LAYERS": "max_layers",
    "CHARLM_ABANDON_AFTER_S": "abandon_after_s",
    "CHARLM_CACHE_DIR": "cache_dir",
}


def get() -> Settings:
    """Current settings; a value that does not parse, or is not positive, falls back to its default (logged)."""
    defaults = Settings()
    secrets = _secrets()
    values = {}
    for name, attr in NAMES.items():
        raw = os.environ.get(name)
        if raw is None:
            raw = secrets.get(name)
        if raw is None or raw == "":
            continue
        kind = type(getattr(defaults, attr))
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            log.warning("ignoring %s=%r: not a valid %s", name, raw, kind.__name__)
            continue
        if kind is not str and not value > 0:
            log.warning("ignoring %s=%r: must be positive", name, raw)
            continue
        values[attr] = value
    return Settings(**values)


def _secrets() -> dict:
    try:
        if st.secrets.load_if_toml_exists():
            return dict(st.secrets)
    except Exception:   # an unreadable secrets file must not take the app down; env and defaults remain
        log.warning("could not read .streamlit/secrets.toml", exc_info=True)
    return {}


def model_too_big(settings: Settings, hidden_size: int, num_layers: int) -> str | None:
    """A message when a model is over this server's size caps, else None."""
    over = []
    if hidden_size > settings.max_hidden:
        over.append(f"{hidden_size} units per layer (the most is {settings.max_hidden}, CHARLM_MAX_HIDDEN)")
    if num_layers > settings.max_layers:
        over.append(f"{num_layers} layers (the most is {settings.max_layers}, CHARLM_MAX_LAYERS)")
    if not over:
        return None
    return f"This model is larger than this server allows: {' and '.join(over)}."
