"""Share links: an address that opens Generate or a Learn part as the visitor sees it, in anyone's browser.

A link is the page's address with its model (a shipped one by key, or a published one: app/published.py) and
the values of its widgets as query parameters, named by their widget keys (FIELDS). It holds no session key.
Opened, each value is checked against what its widget takes and put into session state before the widget
is drawn (a Learn part's value marked as started for the linked model, so start_values keeps it), and the
parameters leave the address, so they apply once. A bad value gets a message and the page's default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlsplit

import streamlit as st

from app import models, published, writing
from app.learn import LEARN_PAGES
from charlm.engine.decoding import STRATEGIES
from charlm.learn import neurons

MODEL = "model"       # the query parameter naming the model
TEXT_CAP = 2_000      # characters a text in a link may have: more would not fit an address everywhere
_Bound = float | Callable[[models.LoadedModel], float]


@dataclass(frozen=True)
class Field:
    """One widget a link carries: its key (and parameter name), and what it takes."""
    key: str
    kind: str = "text"               # text, int, float, choice, choices (a multiselect: comma-separated)
    low: _Bound = 0
    high: _Bound = TEXT_CAP          # a text's cap in characters, or a number's largest value
    options: tuple = ()
    state: str = ""                  # its session_state key when not `key`; "{model}" stands for the model's key

    def state_key(self, model: models.LoadedModel) -> str:
        return (self.state or self.key).replace("{model}", model.key)

    def parse(self, raw: str, model: models.LoadedModel):
        """The value a widget can take, from its parameter; ValueError when it is not one."""
        if self.kind == "text":
            if len(raw) > min(_bound(self.high, model), TEXT_CAP):
                raise ValueError(f"longer than the {min(_bound(self.high, model), TEXT_CAP):,} characters it takes")
            return raw
        if self.kind == "choice":
            if raw not in self.options:
                raise ValueError("not one of its choices")
            return raw
        if self.kind == "pick":   # a place in a ranking, or "any" (a unit chosen by number)
            if raw == "any":
                return raw
            if not raw.isdigit() or int(raw) > 1000:
                raise ValueError("not a unit of its ranking")
            return int(raw)
        if self.kind == "choices":
            chosen = raw.split(",") if raw else []
            if any(c not in self.options for c in chosen) or len(set(chosen)) != len(chosen):
                raise ValueError("not a list of its choices")
            return chosen
        value = int(raw) if self.kind == "int" else float(raw)   # ValueError for anything else
        if not math.isfinite(value) or not _bound(self.low, model) <= value <= _bound(self.high, model):
            raise ValueError(f"outside {_bound(self.low, model):g} to {_bound(self.high, model):g}")
        return value


def _bound(bound: _Bound, model: models.LoadedModel) -> float:
    return bound(model) if callable(bound) else bound


def _vocab(model) -> int:
    return len(model.chars)


def _text(key: str, cap: int = TEXT_CAP) -> Field:
    return Field(key, "text", high=cap)


def _num(key: str, low: _Bound, high: _Bound, kind: str = "int") -> Field:
    return Field(key, kind, low, high)


_SEED = 2**63 - 1
FIELDS: dict[str, list[Field]] = {
    "generate": [_text(writing.PRIME), Field("gen_mode", "choice", options=("Write", "Step")),
                 Field("gen_strategy", "choice", options=tuple(STRATEGIES)), _num("gen_seed", 0, _SEED),
                 _num("gen_temperature", 0.0, 2.0, "float"), _num("gen_top_k", 1, lambda m: min(100, _vocab(m))),
                 _num("gen_top_p", 0.05, 1.0, "float"), _num("gen_min_p", 0.0, 1.0, "float"),
                 _num("gen_beam_width", 1, 16), _num("gen_length", 10, 2000), _num("gen_samples", 1, 5)],
    "text-to-numbers": [_text("numbers_text", 300)],
    "windows-and-targets": [_num("windows_length", 10, 200), _num("windows_start", 0, 10**9)],
    "the-model": [_num("model_batch", 1, 256), _num("model_seq", 1, 512)],
    "next-character": [_text("next_prime", 500), _num("next_temperature", 0.0, 2.0, "float"),
                       _num("next_top_k", 1, _vocab), _num("next_top_p", 0.05, 1.0, "float"),
                       _num("next_min_p", 0.0, 1.0, "float"), _num("next_shown", 5, lambda m: min(40, _vocab(m)))],
    "surprise-map": [_text("surprise_text")],
    "neuron-explorer": [Field("neuron_feature", "choice", options=tuple(neurons.FEATURES)),
                        Field("neuron_kind", "choice", options=("h", "c")), Field("neuron_pick", "pick"),
                        _num("neuron_layer", 1, lambda m: m.config.get("num_layers", 1)),
                        _num("neuron_number", 0, lambda m: m.config.get("hidden_size", 1) - 1),
                        Field("neuron_any_kind", "choice", options=("h", "c")), _text("neuron_text"),
                        _text("neuron_prime", 200), _num("neuron_clamp", -1.0, 1.0, "float"),
                        _num("neuron_seed", 0, 2**31 - 1)],
    "looked-back": [_text("lb_text"), _num("lb_at", 1, TEXT_CAP), _num("lb_back", 10, 400)],
    "inside-the-cell": [_text("cell_text"), _num("cell_layer", 1, lambda m: m.config.get("num_layers", 1)),
                        _num("cell_unit", -1, lambda m: m.config.get("hidden_size", 1) - 1),
                        _num("cell_at", 1, TEXT_CAP)],
    "character-map": [Field("cmap_method", "choice", options=("pca", "mds")), _text("cmap_char", 1)],
    "training-over-time": [Field("tot_step", "int", 0, _SEED, state="tot_step:{model}")],
    "2017-vs-today": [],
    "baselines": [Field("bl_source", "choice", options=("Write one with this model", "Paste a text")),
                  _text("bl_paste"), _num("bl_length", 50, 1000), _num("bl_temperature", 0.0, 1.5, "float"),
                  _num("bl_seed", 0, _SEED), _num("bl_sample_seed", 0, _SEED)],
    "decoding-lab": [_text("dl_prime", 500), _num("dl_seed", 0, _SEED), _num("dl_length", 20, 600),
                     Field("dl_strategies", "choices", options=tuple(STRATEGIES)),
                     _num("dl_temperature", 0.05, 2.0, "float"), _num("dl_top_k", 1, lambda m: min(100, _vocab(m))),
                     _num("dl_top_p", 0.05, 1.0, "float"), _num("dl_min_p", 0.0, 1.0, "float"),
                     _num("dl_beam_width", 1, 16)],
    "guess": [_num("guess_seed", 0, _SEED)],
}
PATH_OF_TITLE = {title: path for _, title, path, _ in LEARN_PAGES}


def arrive(page: str, model_key: str) -> dict[str, str]:
    """Before the model picker: take a link's parameters off the address (once), choose its model, and hand
    back the widget values still to check against that model (an empty dict when no link came)."""
    params = {name: st.query_params.get(name) for name in [MODEL] + [f.key for f in FIELDS[page]]}
    params = {name: value for name, value in params.items() if value is not None}
    for name in params:
        del st.query_params[name]
    wanted = params.pop(MODEL, None)
    if wanted is not None:
        if _model_offered(wanted):
            st.session_state[model_key] = wanted
        else:
            st.warning("This link's model is not on this server (a published model is withdrawn by its owner "
                       "or expires): the page opens on another model, with its own defaults.")
            return {}
    return params


def _model_offered(key: str) -> bool:
    if published.is_published(key):
        return published.open_link(key)
    return key in models.SHIPPED


def settle(page: str, pending: dict[str, str], model: models.LoadedModel, started: dict | None = None) -> None:
    """After the model picker: put the link's checked values in place (marked as started for this model in
    `started`, start_values' record), say which were refused, and draw the Copy link control."""
    refused = []
    for field in FIELDS[page]:
        if field.key not in pending:
            continue
        try:
            value = field.parse(pending[field.key], model)
        except ValueError as err:
            refused.append(f"{field.key} ({err})")
            continue
        st.session_state[field.state_key(model)] = value
        if started is not None:
            started[field.state_key(model)] = model.key
    if "neuron_pick" in pending:   # the Neuron explorer starts each new ranking at its best unit: this is the one
        st.session_state["neuron_pick_for"] = (model.key, st.session_state.get("neuron_feature"),
                                               st.session_state.get("neuron_kind"))
    if refused:
        st.warning("This link holds values this page does not take, so they are left at their defaults: "
                   + "; ".join(refused) + ".")
    control(page, model, started)


def address(page: str, values: dict) -> str:
    """The link: this server's address for the page, with the values as query parameters; ValueError (naming
    the cap) when a text is too long for an address."""
    for name, value in values.items():
        if isinstance(value, str) and len(value) > TEXT_CAP:
            raise ValueError(f"This text is {len(value):,} characters long; a link holds at most {TEXT_CAP:,}. "
                             "Shorten it to share it.")
    parts = urlsplit(st.context.url or "")
    # The host as the visitor's browser named it; anything but a host's characters and the link stays relative.
    host_ok = parts.scheme in ("http", "https") and re.fullmatch(r"[\w.:\[\]-]+", parts.netloc or "")
    base = f"{parts.scheme}://{parts.netloc}" if host_ok else ""
    path = "" if page == "generate" else page
    return f"{base}/{path}?" + urlencode({k: _as_param(v) for k, v in values.items()})


def _as_param(value) -> str:
    if isinstance(value, list):
        return ",".join(value)
    return repr(value) if isinstance(value, float) else str(value)


def current_values(page: str, model: models.LoadedModel, started: dict | None = None) -> dict:
    """The model and the page's widget values as they stand, leaving out a value about to be reset for
    another model (start_values')."""
    values = {MODEL: model.key}
    for field in FIELDS[page]:
        key = field.state_key(model)
        value = st.session_state.get(key)
        if value is None or (started is not None and started.get(key, model.key) != model.key):
            continue
        values[field.key] = value
    return values


def control(page: str, model: models.LoadedModel, started: dict | None = None) -> None:
    """The Copy link popover, in the sidebar (beside Start afresh): the address of this view, or why there is none."""
    with st.sidebar.popover("Copy link", icon=":material/link:", width="stretch"):
        if model.key not in models.SHIPPED and not published.is_published(model.key):
            st.markdown("This model lives in your session only, which a link never carries. Publish it on "
                        "the Generate page (next to the model picker), then copy the link.")
            return
        try:
            link = address(page, current_values(page, model, started))
        except ValueError as err:   # said where the link would be: the page itself is fine
            st.info(str(err))
            return
        st.caption("Anyone who opens this address sees this page with this model and these settings "
                   "(not your session: your text, models and runs stay yours).")
        # A fenced block in markdown has a copy button, as st.code does, and is not taken for the page's own
        # text blocks. The link is all address characters (its values percent-encoded): no fence can close.
        st.markdown(f"```text\n{link}\n```")
