"""Train page: a preset and knobs, Start / Stop / Resume a background job, watch it learn, download or upload."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import streamlit as st

from app import charts, models, start_from, state, training
from app import settings as settings_mod
from app.learn import lab
from charlm import jobs
from charlm.config import ModelConfig, TrainConfig
from charlm.device import describe, pick_device
from charlm.presets import DEFAULT_PRESET, PRESETS, Preset
from charlm.resume import Resume, last_path_for
from charlm.startfrom import StartFrom
from charlm.units import LN2, format_duration, plural


# The budget the Train page offers first: on a shared server (one thread a job) the default preset is at
# 1.17-1.24 nats/char on the Python documentation after it, writing words (BENCHMARKS.md, bench/hosted_minute.py).
DEFAULT_MINUTES = 1.0


def eval_interval_s(minutes: float) -> float:
    """Evaluations (a loss point, a sample, a checkpoint) about six times a run, every 10 to 30 seconds: the
    first comes once the model writes words, and scoring does not eat a short run's budget."""
    return min(30.0, max(10.0, minutes * 60 / 6))


def preset_label(name: str, vocab_size: int) -> str:
    preset = PRESETS[name]
    model = preset.model_config(vocab_size)
    big = settings_mod.model_too_big(settings, model, preset.train.window)
    return f"{name} ({model.num_layers} × {model.hidden_size}){'  — over this server’s limits' if big else ''}"


def choose_budget(disabled: bool) -> tuple[float, float | None, list[str]]:
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


def choose_knobs(preset: Preset, vocab_size: int, disabled: bool) -> tuple[dict, dict]:
    """The advanced knobs, each starting at the preset's value; -> (model overrides, training overrides)."""
    model, recipe = preset.model_config(vocab_size), preset.train
    with st.expander("Advanced settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        k = f"_{preset.name}"   # each preset keeps its own knob values
        layers = c1.number_input("Layers", min_value=1, value=model.num_layers, step=1,
                                 key="layers" + k, persist_state="session", disabled=disabled)
        hidden = c2.number_input("Hidden size (units per layer)", min_value=4, value=model.hidden_size,
                                 step=32, key="hidden" + k, persist_state="session", disabled=disabled)
        dropout = c3.slider("Dropout", 0.0, 0.9, float(model.dropout), 0.05, key="dropout" + k,
                            persist_state="session", disabled=disabled)
        seq_len = c1.number_input("Sequence length (characters)", min_value=2, value=recipe.seq_len,
                                  step=16, key="seq" + k, persist_state="session", disabled=disabled)
        batch_size = c2.number_input("Batch size", min_value=1, value=recipe.batch_size, step=8,
                                     key="batch" + k, persist_state="session", disabled=disabled)
        lr = c3.number_input("Learning rate", min_value=1e-5, max_value=1.0, value=recipe.lr,
                             step=5e-4, format="%.4f", key="lr" + k, persist_state="session", disabled=disabled)
        seed = c1.number_input("Seed", min_value=0, value=0, step=1, key="seed" + k, persist_state="session",
                               disabled=disabled)
        embedding = {}
        if model.input_mode == "embedding":   # the 2017 design reads each character as one number: no embedding
            embed = c2.number_input("Embedding width (numbers per character)", min_value=1, value=model.embed_dim,
                                    step=16, key="embed" + k, persist_state="session", disabled=disabled)
            embedding = {"embed_dim": int(embed)}
        weight_drop = c3.slider("Weight drop (inside the recurrence)", 0.0, 0.9, float(model.weight_drop), 0.05,
                                key="weight_drop" + k, persist_state="session", disabled=disabled,
                                help="While training, each batch drops this share of the weights from the LSTM's "
                                     "state to its next step (DropConnect), a new choice each batch: the model cannot "
                                     "lean on any one connection, and memorises its text less.")
        st.caption(f"Caps on this server: {plural(settings.max_layers, 'layer')}, "
                   f"{plural(settings.max_hidden, 'unit')} per layer, an embedding of {settings.max_embed:,}, "
                   f"{plural(settings.max_batch_chars, 'character')} per step (batch × sequence), "
                   f"{plural(settings.max_train_minutes, 'minute')} per run.")
    return ({"num_layers": int(layers), "hidden_size": int(hidden), "dropout": float(dropout),
             "weight_drop": float(weight_drop), **embedding},
            {"seq_len": int(seq_len), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed)})


def choose_settings(name: str, train_chars: int, vocab_size: int, disabled: bool):
    """The budget and knobs as configs; -> (ModelConfig or None, TrainConfig or None, errors for people)."""
    preset = PRESETS[name]
    minutes, epochs, errors = choose_budget(disabled)
    model_changes, train_changes = choose_knobs(preset, vocab_size, disabled)
    try:
        model_cfg = preset.model_config(vocab_size, **model_changes)
        train_cfg = preset.train_config(minutes=minutes, epochs=epochs, eval_interval_s=eval_interval_s(minutes),
                                        **train_changes)
    except ValueError as err:
        return None, None, [charts.as_sentence(str(err)).rstrip(".") + "."] + errors
    return model_cfg, train_cfg, problems(model_cfg, train_cfg, train_chars) + errors


def problems(model_cfg: ModelConfig, train_cfg: TrainConfig, train_chars: int, remedy: str | None = None) -> list[str]:
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


def start_settings(model: models.LoadedModel, corpus, train_chars: int, disabled: bool):
    """A run from a trained model: its architecture and recipe, this page's budget;
    -> (StartFrom or None, TrainConfig or None, errors for people)."""
    if disabled:   # a run is going on: nothing to start now (and its start is not kept twice)
        choose_budget(disabled)
        return None, None, []
    try:
        start, recipe = start_from.prepare(model, corpus)
    except ValueError as err:   # it cannot start on this text, or its file cannot be read
        start = recipe = None
        problem = charts.escape_markdown(str(err))
    else:
        start_from.show_new_chars(start)
    minutes, epochs, errors = choose_budget(disabled)
    if start is None:
        return None, None, [problem] + errors
    train_cfg = recipe.replace(minutes=minutes, epochs=epochs, max_steps=None, eval_interval_s=eval_interval_s(minutes),
                               device="auto")
    remedy = "It comes with the model: start from another model, or from nothing."
    return start, train_cfg, problems(start.model_cfg, train_cfg, train_chars, remedy) + errors


def start_job(corpus, preset: str, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
              resume: Resume | None = None, workdir: Path | None = None, start: StartFrom | None = None) -> None:
    """A new run with these configs (from a trained model's weights: start), or (resume) the visitor's run going
    on in its own folder."""
    fresh = workdir is None
    job = jobs.TrainingJob(corpus, preset, model_cfg, train_cfg, resume=resume,
                           workdir=workdir or state.new_private_dir("job-"),
                           abandon_after_s=settings.abandon_after_s, start=start)
    try:
        job.start(training.slots(), wait=True)   # every slot taken: it waits its turn and starts by itself
    except jobs.ServerBusy as err:                # even the line is full
        if fresh:   # a refused Start leaves nothing behind
            shutil.rmtree(job.workdir, ignore_errors=True)
        st.warning(str(err))
        return
    state.set_job(job, continues_previous=resume is not None)
    st.rerun()


def compare_runs(job: jobs.TrainingJob, snap: jobs.JobSnapshot) -> None:
    """This run's validation curve beside the visitor's earlier runs', on one chart (x: minutes of training)."""
    kept = state.kept_runs()
    if not kept:
        return
    minutes = lambda evals: [(seconds / 60, loss) for seconds, loss in evals]   # noqa: E731
    curves = [(run.label, minutes(run.evals())) for run in kept]
    curves.append((f"Run {state.run_number()} (this one): {job.preset} on {job.corpus.name}",
                   minutes(state.full_evals(snap))))
    chart = charts.runs_chart(curves)
    if chart is not None:
        st.markdown(f"**This run against your {plural(len(kept), 'earlier run')}** (validation loss; each "
                    "stays in Generate's model list)")
        st.altair_chart(chart, width="stretch", height=280)


def progress_line(snap: jobs.JobSnapshot, alive: bool) -> None:
    """Where a queued run stands in line, or how far a running one is."""
    latest = snap.latest
    if snap.status == "queued":
        ahead = (snap.place or 1) - 1
        st.info("Every training slot on this server is taken. Your run waits its turn and starts by itself: "
                + ("it is next." if ahead == 0 else f"{plural(ahead, 'run')} {'is' if ahead == 1 else 'are'} "
                   "ahead of it.") + " Keep this page (or any page of the app) open meanwhile.",
                icon=":material/hourglass_top:")
    elif alive:
        fraction = min(max(latest.fraction if latest else 0.0, 0.0), 1.0)
        eta = f" · about {format_duration(latest.eta_s)} left" if latest and latest.eta_s else ""
        what = "Stopping (saving the model)…" if state.stop_requested() else "Training"
        st.progress(fraction, text=f"{what} {fraction:.0%}{eta}")


def metrics_row(job: jobs.TrainingJob, latest) -> None:
    """Step, the two losses in bits/char and the speed, at the latest event."""
    cols = st.columns(4)
    cols[0].metric("Step", f"{latest.step:,}" if latest else "–",
                   help="Optimizer steps so far (each reads one batch of sequences).")
    train_bits = latest.train_loss / LN2 if latest and latest.train_loss is not None else None
    vocab_size = len(job.corpus.vocab)
    cols[1].metric("Training loss (bits/char)", f"{train_bits:.3f}" if train_bits is not None else "–",
                   help="How surprised the model is by the training text, smoothed: 0 would be perfect "
                        f"prediction; a model guessing uniformly among this text's {vocab_size} characters scores "
                        f"{math.log2(vocab_size):.2f}.")
    val_bits = latest.val_bits if latest else None
    cols[2].metric("Validation loss (bits/char)", f"{val_bits:.3f}" if val_bits is not None else "–",
                   help="The same on held-out text it never trains on, at the latest evaluation. Lower is better; "
                        "rising while training loss falls means it memorises instead of learning.")
    cols[3].metric("Characters / s", f"{latest.chars_per_sec:,.0f}" if latest else "–",
                   help="Training characters processed per second on this device"
                        + (f", computing in {latest.arithmetic} ({latest.arithmetic_why})." if latest else "."))


def live_view(was_running: bool) -> None:
    """Progress, curves, samples and checkpoints of this visitor's job; polled while it runs."""
    job = state.job()
    if job is None:   # the session moved to another tab (app/sessions.py): the whole page says so
        st.rerun()
    job.heartbeat()
    snap = job.snapshot()
    latest = snap.latest
    losses, samples = state.full_history(snap)
    alive = job.is_alive()

    progress_line(snap, alive)
    metrics_row(job, latest)

    # Letter frequencies and the best n-gram on the same text (fitted once per text): what the network must beat.
    chart = charts.loss_chart(losses, references=lab.reference_lines(lab.baselines(job.corpus)))
    if chart is not None:
        st.altair_chart(chart, width="stretch", height=320)
        st.caption("Dashed lines: what models without a network score on this text's validation part: "
                   "letter frequencies alone, and the best character n-gram (see Learn › Baselines).")
    elif alive:
        st.caption("The loss curve appears after the first steps…")
    compare_runs(job, snap)

    if samples:
        step, text = samples[-1]
        st.markdown(f"**What the model writes at step {step:,}** (a sample at each evaluation, temperature 0.8):")
        st.code(text, language=None, wrap_lines=True)
        if len(samples) > 1:
            with st.expander(f"All {len(samples)} samples, to see it learn"):
                for step, text in samples:
                    st.caption(f"step {step:,}")
                    st.code(text, language=None, wrap_lines=True)

    # The best over the whole run, earlier sessions included (a resumed run keeps an earlier best model):
    # the number the final summary gives.
    best = [loss for _, _, loss in losses if loss is not None]
    if snap.checkpoints:
        note = f" The best so far (validation {min(best) / LN2:.3f} bits/char) is the one Generate uses." \
            if best else ""
        names = ", ".join(sorted({Path(p).name for p in snap.checkpoints}))
        st.caption(f"Checkpoints written: {len(snap.checkpoints)} ({names}).{note}")
    finished_message = snap.result.message if snap.result else None
    for message in snap.messages:
        if message != finished_message:   # the final summary below says it
            st.info(charts.as_sentence(message))
    if snap.error:
        st.error(charts.escape_markdown(charts.as_sentence(snap.error)))
    if was_running and not alive:
        st.rerun()   # once: the whole page shows the final state, and polling stops


def finished_view(job: jobs.TrainingJob) -> None:
    snap = job.snapshot()
    result = snap.result
    if snap.status == "error":
        return   # live_view showed the message
    if result is not None:
        best = (f"best validation loss {result.best_val_loss / LN2:.3f} bits/char, "
                if result.best_val_loss is not None else "")
        text = (f"{best}{result.steps:,} steps, {result.chars_seen:,} characters in "
                f"{format_duration(result.elapsed_s)}.")
        if snap.status == "stopped":
            st.info(f"Stopped: {text}")
            if result.message and not state.stop_requested():   # stopped for a reason of its own (divergence)
                st.warning(charts.as_sentence(result.message))
        else:
            st.success(f"Finished: {text}")
    best_path = job.best_checkpoint()
    if best_path is None:
        return
    c1, c2 = st.columns(2)
    with c1:
        st.download_button("Download the model (.safetensors)", data=models.download_bytes(best_path),
                           file_name=models.download_name(job), mime="application/octet-stream",
                           icon=":material/download:", key="download_model")
    with c2:
        st.page_link("app/generate_page.py", label="Write with this model", icon=":material/edit_note:")


def resume_controls(job: jobs.TrainingJob) -> None:
    last = last_path_for(job.out)
    if not last.exists():
        return
    with st.container(border=True):
        st.markdown(f"**Continue training** this model on *{charts.escape_markdown(job.corpus.name)}* "
                    "from where it stopped.")
        c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
        extra = c1.number_input("Extra minutes", min_value=0.05, value=min(1.0, settings.max_train_minutes),
                                step=0.5, key="resume_minutes", persist_state="session")
        if c2.button("Resume", icon=":material/play_arrow:", key="resume"):
            if extra > settings.max_train_minutes:
                st.error(f"A run may last at most {plural(settings.max_train_minutes, 'minute')} on this server "
                         "(CHARLM_MAX_TRAIN_MINUTES).")
                return
            more = Resume(last, minutes=float(extra), eval_interval_s=eval_interval_s(extra))
            start_job(job.corpus, job.preset, resume=more, workdir=job.workdir)


def upload_section() -> None:
    st.subheader("Bring a checkpoint")
    st.caption("A model file downloaded from this app or written by `python -m charlm train` (.safetensors, or "
               "a .pt from earlier versions). It is loaded safely "
               "(weights and plain data only; nothing in it can run code) and appears in Generate's model list, "
               "and in Start from above, to train it on.")
    upload = st.file_uploader("Checkpoint file", key="checkpoint_upload", label_visibility="collapsed")
    if upload is None:
        return
    done = st.session_state.get("checkpoint_upload_done")
    if done is None or done[0] != upload.file_id:
        try:
            loaded = models.add_upload(upload.name, upload.getvalue())
            done = (upload.file_id, None, f"{upload.name}: {loaded.summary}")
        except ValueError as err:   # CheckpointError, or over the size caps
            done = (upload.file_id, str(err), None)
        st.session_state["checkpoint_upload_done"] = done
        if done[1] is None:
            st.rerun()   # Start from, above, lists it
    if done[1]:
        st.error(charts.escape_markdown(charts.as_sentence(done[1])))
    else:
        st.success("Loaded the model. It is in Generate's model list.")
        st.text(done[2])   # from the file: plain text, never markdown
        st.page_link("app/generate_page.py", label="Write with it", icon=":material/edit_note:")


settings = settings_mod.get()
training.share_cores()
device = pick_device("auto")
st.title("Train")
st.caption(f"Device: **{describe(device)}**. Training runs in the background: you can switch to Generate and "
           "use the best model so far while it trains.")

chosen = state.corpus()
job = state.job()
running = state.is_running(job)

if chosen is None and job is None:
    st.info("First choose a text to learn from on the Corpus page: upload a file, paste text or pick a built-in one.")
    st.page_link("app/corpus_page.py", label="Choose a text", icon=":material/description:")
else:
    if chosen is not None:
        st.markdown(f"**Text:** {charts.escape_markdown(chosen.source)} · {chosen.stats.chars:,} characters "
                    f"({chosen.stats.train_chars:,} for training, {chosen.stats.val_chars:,} for validation)")
        base = start_from.choose(disabled=running)   # None: a new model
        start = None
        if base is None:
            names = list(PRESETS)
            vocab_size = len(chosen.corpus.vocab)
            preset = st.selectbox("Preset", names, index=names.index(DEFAULT_PRESET),
                                  format_func=lambda name: preset_label(name, vocab_size),
                                  key="train_preset", persist_state="session", disabled=running)
            st.caption(PRESETS[preset].description)
            model_cfg, train_cfg, errors = choose_settings(preset, chosen.stats.train_chars, vocab_size,
                                                           disabled=running)
        else:   # the model's architecture and recipe: no preset, no Advanced settings
            preset = base.preset
            start, train_cfg, errors = start_settings(base, chosen.corpus, chosen.stats.train_chars, running)
            model_cfg = start.model_cfg if start is not None else None
        if not running:
            for error in errors:
                st.error(error)
            if st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=bool(errors),
                         key="start"):
                if start is not None:
                    start_from.forget()   # the run holds the start now
                start_job(start.corpus if start is not None else chosen.corpus, preset, model_cfg, train_cfg,
                          start=start)
    if running:
        st.button("Stop", icon=":material/stop:", on_click=state.request_stop, key="stop",
                  disabled=state.stop_requested())

    if job is not None:
        st.divider()
        st.subheader(f"Training on {charts.escape_markdown(job.corpus.name)} ({charts.escape_markdown(job.preset)})")
        if job.from_model is not None:
            st.caption(start_from.origin_line(job.from_model.origin))
        st.fragment(run_every=training.POLL_S if running else None)(live_view)(running)
        if not running:
            finished_view(job)
            resume_controls(job)

st.divider()
upload_section()
