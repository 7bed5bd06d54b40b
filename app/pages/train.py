"""Train page: Start / Stop / Resume a background job, watch it learn, download or upload.

What the run will be (budget, preset, Advanced settings) is chosen in app/train_settings.py.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import streamlit as st

from app import charts, models, start_from, state, train_settings, training
from app import settings as settings_mod
from app.learn import lab
from charlm.train import jobs
from charlm.config import ModelConfig, TrainConfig
from charlm.nn.device import describe, pick_device
from charlm.train.resume import Resume, last_path_for
from charlm.train.startfrom import StartFrom
from charlm.units import LN2, format_duration, plural


def start_job(corpus, preset: str, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
              resume: Resume | None = None, workdir: Path | None = None, start: StartFrom | None = None) -> None:
    """A new run with these configs (from a trained model's weights: start), or (resume) the visitor's run going
    on in its own folder."""
    fresh = workdir is None
    if fresh:
        try:
            models.make_room(0)   # visitors' folders are within CHARLM_MAX_DISK_MB, this visitor's oldest going first
        except state.DiskFull as err:
            st.warning(str(err))
            return
    job = jobs.TrainingJob(corpus, preset, model_cfg, train_cfg, resume=resume,
                           workdir=workdir or state.new_private_dir("job-"),
                           abandon_after_s=settings.abandon_after_s, start=start, holder=training.holder())
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
        st.page_link("app/pages/generate.py", label="Write with this model", icon=":material/edit_note:")


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
            more = Resume(last, minutes=float(extra), eval_interval_s=train_settings.eval_interval_s(extra))
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
        st.page_link("app/pages/generate.py", label="Write with it", icon=":material/edit_note:")


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
    st.page_link("app/pages/corpus.py", label="Choose a text", icon=":material/description:")
else:
    if chosen is not None:
        st.markdown(f"**Text:** {charts.escape_markdown(chosen.source)} · {chosen.stats.chars:,} characters "
                    f"({chosen.stats.train_chars:,} for training, {chosen.stats.val_chars:,} for validation)")
        base = start_from.choose(disabled=running)   # None: a new model
        start = None
        if base is None:
            vocab_size = len(chosen.corpus.vocab)
            preset = train_settings.choose_preset(settings, vocab_size, disabled=running)
            model_cfg, train_cfg, errors = train_settings.choose_settings(settings, preset, chosen.stats.train_chars,
                                                                          vocab_size, disabled=running)
        else:   # the model's architecture and recipe: no preset, no Advanced settings
            preset = base.preset
            start, train_cfg, errors = train_settings.start_settings(settings, base, chosen.corpus,
                                                                     chosen.stats.train_chars, running)
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
