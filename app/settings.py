"""The server's limits in one place: environment variables, else .streamlit/secrets.toml, else safe defaults."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from charlm.config import MAX_VOCAB, Limits, ModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    max_jobs: int = 2                     # training jobs running at once on this server (all visitors)
    max_runs_per_visitor: int = 2         # one visitor's training runs, running and waiting in line together
    max_runs_per_address: int = 4         # likewise for all sessions from one network address
    max_corpus_mb: float = 5.0            # corpus size cap, in millions of characters
    max_train_minutes: float = 10.0       # budget cap for one training run (and for each resume)
    max_hidden: int = 512                 # LSTM units per layer, for trained and uploaded models
    max_layers: int = 3                   # LSTM layers, likewise
    max_embed: int = 256                  # embedding width, likewise
    max_window: int = 512                 # characters a window model (2017) re-reads per character, likewise
    max_batch_chars: int = 16_384         # batch size x sequence length of one training step (its memory)
    max_upload_mb: float = 100.0          # memory all of one visitor's uploaded models may hold
    max_disk_mb: float = 2000.0           # disk all visitors' folders (runs, kept uploads) may hold together
    abandon_after_s: float = 120.0        # a job whose page stopped polling this long stops itself; a closed
                                          # tab's session, folder and jobs are swept this long after it closed
    sweep_every_s: float = 15.0           # how often expired sessions are looked for
    cache_dir: str = "~/.cache/charlm"    # downloaded built-in corpora (shared, read-only data)
    publish_max_per_visitor: int = 3      # models one visitor has published at once (app/published.py)
    publish_visitor_mb: float = 100.0     # what one visitor's published models may hold (files or arrays)
    publish_max_models: int = 20          # published models on this server, all visitors together
    publish_max_mb: float = 500.0         # what all published models may hold together
    publish_ttl_s: float = 86_400.0       # a published model expires this long after it was published
    runs_in: str = "process"              # "process": each run in a worker process of its own; "thread": in the
                                          # server's process (it then shares its random state, threads and fate)
    cluster: str = ""                     # a Dask scheduler's address (tcp://HOST:8786): runs train on its workers

    @property
    def max_corpus_chars(self) -> int:
        return int(self.max_corpus_mb * 1_000_000)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()

    def limits(self) -> Limits:
        """The caps every model on this server must fit: trained here, uploaded, or shipped."""
        return Limits(max_hidden=self.max_hidden, max_layers=self.max_layers, max_embed=self.max_embed,
                      max_vocab=MAX_VOCAB, max_window=self.max_window)


# Setting name (environment variable and secrets.toml key) -> field.
NAMES = {
    "CHARLM_MAX_JOBS": "max_jobs",
    "CHARLM_MAX_RUNS_PER_VISITOR": "max_runs_per_visitor",
    "CHARLM_MAX_RUNS_PER_ADDRESS": "max_runs_per_address",
    "CHARLM_MAX_CORPUS_MB": "max_corpus_mb",
    "CHARLM_MAX_TRAIN_MINUTES": "max_train_minutes",
    "CHARLM_MAX_HIDDEN": "max_hidden",
    "CHARLM_MAX_LAYERS": "max_layers",
    "CHARLM_MAX_EMBED": "max_embed",
    "CHARLM_MAX_WINDOW": "max_window",
    "CHARLM_MAX_BATCH_CHARS": "max_batch_chars",
    "CHARLM_MAX_UPLOAD_MB": "max_upload_mb",
    "CHARLM_MAX_DISK_MB": "max_disk_mb",
    "CHARLM_ABANDON_AFTER_S": "abandon_after_s",
    "CHARLM_SWEEP_EVERY_S": "sweep_every_s",
    "CHARLM_CACHE_DIR": "cache_dir",
    "CHARLM_PUBLISH_MAX_PER_VISITOR": "publish_max_per_visitor",
    "CHARLM_PUBLISH_VISITOR_MB": "publish_visitor_mb",
    "CHARLM_PUBLISH_MAX_MODELS": "publish_max_models",
    "CHARLM_PUBLISH_MAX_MB": "publish_max_mb",
    "CHARLM_PUBLISH_TTL_S": "publish_ttl_s",
    "CHARLM_RUNS_IN": "runs_in",
    "CHARLM_CLUSTER": "cluster",
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


def model_too_big(settings: Settings, config: ModelConfig, window: int | None = None) -> str | None:
    """A message when a model is over this server's size caps, else None."""
    over = settings.limits().problems(config, window)
    if not over:
        return None
    return f"This model is larger than this server allows: {'; '.join(over)}."
