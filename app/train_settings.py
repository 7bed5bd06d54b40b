"""What a run on the Train page will be: the budget, the preset, the Advanced settings, and what this server refuses.

Each function draws its widgets and turns them into configs; the page (app/pages/train.py) starts the run and
shows it. `settings` is the server's limits, read once per page run (app/settings.py).
"""

from __future__ import annotations

import streamlit as st

from app import charts, models, start_from
from app import settings as settings_mod
from charlm.config import ModelConfig, TrainConfig
from charlm.errors import UserError
from charlm.presets import DEFAULT_PRESET, KNOBS, PRESETS, Knob, Preset, split
from charlm.train.startfrom import StartFrom
from charlm.units import plural

# The budget the Train page offers first: on a shared server (one thread a job) the default preset is at
# 1.17-1.24 nats/char on the Python documentation after it, writing words (BENCHMARKS.md, bench/hosted_minute.py).
DEFAULT_MINUTES = 1.0


def eval_interval_s(minutes: float) -> float:
    """Evaluations (a loss point, a sample, a checkpoint) about six times a run, every 10 to 30 seconds: the
    first comes once the model writes words, and scoring does not eat a short run's budget."""
    return min(30.0, max(10.0, minutes * 60 / 6))


def preset_label(settings: settings_mod.Settings, name: str, vocab_size: int) -> str:
    preset = PRESETS[name]
    model = preset.model_config(vocab_size)
    big = settings_mod.model_too_big(settings, model, preset.train.window)
    return f"{name} ({model.num_layers} × {model.hidden_size}){'  — over this server’s limits' if big else ''}"


def choose_preset(settings: settings_mod.Settings, vocab_size: int, disabled: bool) -> str:
    """The preset selector and its description; -> the preset's name."""
    names = list(PRESETS)
    preset = st.selectbox("Preset", names, index=names.index(DEFAULT_PRESET),
                          format_func=lambda name: preset_label(settings, name, vocab_size),
                          key="train_preset", persist_state="session", disabled=disabled)
    st.caption(PRESETS[preset].description)
    return preset


def choose_budget(settings: settings_mod.Settings, disabled: bool) -> tuple[float, float | None, list[str]]:
    """The budget, in minutes or epochs; -> (minutes, epochs or None, errors). Epochs still stop at the time cap."""
    cap = settings.max_train_minutes
    left, right = st.columns([1, 2])
    budget_kind = left.radio("Budget", ["minutes", "epochs"], horizontal=True, key="budget_kind",
                             persist_state="session", disabled=disabled,
                             help="Train for a time, or for passes over the training text "
                                  f"(always at most {cap:g} minutes on this server).")
    if budget_kind == "epochs":
        epochs = right.number_input("Epochs (passes over the training text)", min_value=0.01, value=1.0,
                                    step=0.5, key="budget_epochs", persist_state="session", disabled=disabled)
        return cap, float(epochs), []
    minutes = float(right.number_input("Minutes of training", min_value=0.05, value=min(DEFAULT_MINUTES, cap), step=0.5,
                                       key="budget_minutes", persist_state="session", disabled=disabled))
    if minutes > cap:
        return minutes, None, [f"A run may last at most {plural(cap, 'minute')} on this server "
                               f"(CHARLM_MAX_TRAIN_MINUTES); you asked for {minutes:g}."]
    return minutes, None, []


def choose_knobs(settings: settings_mod.Settings, preset: Preset, vocab_size: int,
                 disabled: bool) -> tuple[dict, dict]:
    """The advanced knobs, each starting at the preset's value; -> (model overrides, training overrides)."""
    model, recipe = preset.model_config(vocab_size), preset.train
    values = {}
    with st.expander("Advanced settings", expanded=False):
        columns = st.columns(3)
        for knob in sorted(KNOBS, key=lambda knob: knob.cell):   # row by row, as the grid reads
            if preset.takes(knob):
                start = knob.kind(getattr(model if knob.shape else recipe, knob.field))
                values[knob.field] = knob.kind(_knob_widget(columns[knob.cell[1]], knob, start, preset, disabled))
        st.caption(f"Caps on this server: {plural(settings.max_layers, 'layer')}, "
                   f"{plural(settings.max_hidden, 'unit')} per layer, an embedding of {settings.max_embed:,}, "
                   f"{plural(settings.max_batch_chars, 'character')} per step (batch × sequence), "
                   f"{plural(settings.max_train_minutes, 'minute')} per run.")
    return split(values)


def _knob_widget(column, knob: Knob, start, preset: Preset, disabled: bool):
    """One knob's widget, starting at start; each preset keeps its own values (the key ends in its name)."""
    common = dict(key=f"{knob.key}_{preset.name}", persist_state="session", disabled=disabled, help=knob.tip)
    if knob.slider:
        return column.slider(knob.label, knob.minimum, knob.maximum, start, knob.step, **common)
    return column.number_input(knob.label, min_value=knob.minimum, max_value=knob.maximum, value=start,
                               step=knob.step, format=knob.format, **common)


def choose_settings(settings: settings_mod.Settings, name: str, train_chars: int, vocab_size: int, disabled: bool):
    """The budget and knobs as configs; -> (ModelConfig or None, TrainConfig or None, errors for people)."""
    preset = PRESETS[name]
    minutes, epochs, errors = choose_budget(settings, disabled)
    model_changes, train_changes = choose_knobs(settings, preset, vocab_size, disabled)
    try:
        model_cfg = preset.model_config(vocab_size, **model_changes)
        train_cfg = preset.train_config(minutes=minutes, epochs=epochs, eval_interval_s=eval_interval_s(minutes),
                                        **train_changes)
    except UserError as err:
        return None, None, [charts.as_sentence(str(err)).rstrip(".") + "."] + errors
    return model_cfg, train_cfg, problems(settings, model_cfg, train_cfg, train_chars) + errors


def problems(settings: settings_mod.Settings, model_cfg: ModelConfig, train_cfg: TrainConfig, train_chars: int,
             remedy: str | None = None) -> list[str]:
    """What in these settings this server or this text cannot take, each with what to do (`remedy` instead of
    the Advanced settings, for a run whose settings come from a model)."""
    errors = []
    too_big = settings_mod.model_too_big(settings, model_cfg, train_cfg.window)
    if too_big:
        errors.append(too_big + " " + (remedy or "Lower it under Advanced settings, or pick a smaller preset."))
    step_chars = train_cfg.batch_size * train_cfg.seq_len
    if step_chars > settings.max_batch_chars:
        errors.append(f"Batch size × sequence length is {step_chars:,}; this server allows "
                      f"{settings.max_batch_chars:,} characters per step (CHARLM_MAX_BATCH_CHARS). "
                      + (remedy or "Lower one of them under Advanced settings."))
    if train_cfg.seq_len + 2 > train_chars:
        errors.append(f"The sequence length ({train_cfg.seq_len}) must be shorter than the training text "
                      f"({train_chars:,} characters). " + (remedy or "Lower it under Advanced settings."))
    return errors


def start_settings(settings: settings_mod.Settings, model: models.LoadedModel, corpus, train_chars: int,
                   disabled: bool) -> tuple[StartFrom | None, TrainConfig | None, list[str]]:
    """A run from a trained model: its architecture and recipe, this page's budget;
    -> (StartFrom or None, TrainConfig or None, errors for people)."""
    if disabled:   # a run is going on: nothing to start now (and its start is not kept twice)
        choose_budget(settings, disabled)
        return None, None, []
    try:
        start, recipe = start_from.prepare(model, corpus)
    except UserError as err:   # it cannot start on this text, or its file cannot be read
        start = recipe = None
        problem = charts.escape_markdown(str(err))
    else:
        start_from.show_new_chars(start)
    minutes, epochs, errors = choose_budget(settings, disabled)
    if start is None:
        return None, None, [problem] + errors
    train_cfg = recipe.replace(minutes=minutes, epochs=epochs, max_steps=None, eval_interval_s=eval_interval_s(minutes),
                               device="auto")
    remedy = "It comes with the model: start from another model, or from nothing."
    return start, train_cfg, problems(settings, start.model_cfg, train_cfg, train_chars, remedy) + errors
