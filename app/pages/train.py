"""Train page: Start / Stop / Resume a background job, watch it learn, download or upload.

What the run will be (budget, preset, Advanced settings) is chosen in app/train_settings.py, and what the
page shows of it drawn by app/run_view.py. Training needs PyTorch: without it the page says how to install it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import streamlit as st

from app import charts, models, run_view, state, torch_side, training
from app import settings as settings_mod
from charlm.train import jobs
from charlm.config import ModelConfig, TrainConfig
from charlm.units import plural
from charlm.errors import UserError

if torch_side.available():   # the run's settings and device are torch-side: imported only where torch is
    from app import start_from, train_settings
    from charlm.nn.device import describe, pick_device
    from charlm.train.resume import Resume, last_path_for
    from charlm.train.startfrom import StartFrom


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
    if not training.ready_for_a_run():
        return
    job = jobs.TrainingJob(corpus, preset, model_cfg, train_cfg, resume=resume,
                           workdir=workdir or state.new_private_dir("job-"),
                           abandon_after_s=settings.abandon_after_s, start=start, holder=training.holder(),
                           **training.run_options())
    try:
        job.start(training.slots(), wait=True)   # every slot taken: it waits its turn and starts by itself
    except jobs.ServerBusy as err:                # even the line is full
        if fresh:   # a refused Start leaves nothing behind
            shutil.rmtree(job.workdir, ignore_errors=True)
        st.warning(str(err))
        return
    state.set_job(job, continues_previous=resume is not None)
    st.rerun()


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
        except UserError as err:   # CheckpointError, DiskFull, or over the size caps
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


st.title("Train")
if not torch_side.available():
    st.info(torch_side.NEEDED, icon=":material/info:")
    st.stop()
settings = settings_mod.get()
device = pick_device("auto")
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
        st.fragment(run_every=training.POLL_S if running else None)(run_view.live_view)(running)
        if not running:
            run_view.finished_view(job)
            resume_controls(job)

st.divider()
upload_section()
