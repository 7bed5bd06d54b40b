"""What the Train page shows of a run: where it stands, its numbers, curves and samples, and its end.

Nothing here imports torch: a run's snapshot is plain data (charlm.train.jobs), the page that starts runs
checks for torch itself (app/pages/train.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from app import charts, models, state
from app.learn import lab
from charlm.learn import overfit
from charlm.train import jobs
from charlm.units import LN2, format_duration, plural


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


best_evaluation = overfit.best   # (step, val nats/char) of the evaluation whose weights the model file keeps


def metrics_row(job: jobs.TrainingJob, latest, best: tuple[int, float] | None = None,
                gap: float | None = None) -> None:
    """Step, the training loss, the validation loss at the latest and at the best evaluation (best: (step,
    nats/char), the one the model file keeps), the gap between validation and training loss at the latest
    evaluation (nats/char), in bits/char, and the speed."""
    cols = st.columns([0.7, 1.35, 1.1, 1.1, 1.05, 1])   # room for the longest label, "Training loss (bits/char)"
    cols[0].metric("Step", f"{latest.step:,}" if latest else "–",
                   help="Optimizer steps so far (each reads one batch of sequences).")
    train_bits = latest.train_loss / LN2 if latest and latest.train_loss is not None else None
    vocab_size = len(job.corpus.vocab)
    cols[1].metric("Training loss (bits/char)", f"{train_bits:.3f}" if train_bits is not None else "–",
                   help="How surprised the model is by the training text, smoothed: 0 would be perfect "
                        f"prediction; a model guessing uniformly among this text's {vocab_size} characters scores "
                        f"{math.log2(vocab_size):.2f}.")
    val_bits = latest.val_bits if latest else None
    cols[2].metric("Val. latest (bits/char)", f"{val_bits:.3f}" if val_bits is not None else "–",
                   help="Validation loss: the same on held-out text it never trains on, at the latest evaluation. Lower is better; "
                        "rising while training loss falls means it memorises instead of learning. The model file "
                        "keeps the best evaluation's weights (beside).")
    cols[3].metric("Val. best (bits/char)", f"{best[1] / LN2:.3f}" if best else "–",
                   help="The lowest validation loss (held-out text) so far"
                        + (f", at step {best[0]:,}" if best else "")
                        + ". The model file keeps the weights of that evaluation: Generate, the Learn parts "
                          "and the download use them, not the latest ones.")
    cols[4].metric("Gap (val - train)", f"{gap / LN2:.3f}" if gap is not None else "–",
                   help="Validation minus training loss at the latest evaluation, in bits/char: how much worse the "
                        "model does on text it has not seen than on its training text (the shaded band in the "
                        "chart). A gap that keeps widening while validation rises is overfitting.")
    cols[5].metric("Characters / s", f"{latest.chars_per_sec:,.0f}" if latest else "–",
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
    best = best_evaluation(losses)
    reading = overfit.read(losses)
    metrics_row(job, latest, best, reading.latest_gap)

    # Letter frequencies and the best n-gram on the same text (fitted once per text): what the network must beat.
    chart = charts.loss_chart(losses, references=lab.reference_lines(lab.baselines(job.corpus)))
    if chart is not None:
        st.altair_chart(chart, width="stretch", height=320)
        st.markdown(charts.verdict_line(reading))
        st.caption("Shaded: the gap between validation and training loss. Grey dashed lines: what models "
                   "without a network score on this text's validation part: letter frequencies alone, and the "
                   "best character n-gram (see Learn › Baselines)."
                   + (" Green: where validation turned, the evaluation whose weights the model file keeps."
                      if reading.turn is not None else ""))
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
    if snap.checkpoints:
        note = (f" The best so far (validation {best[1] / LN2:.3f} bits/char, step {best[0]:,}) is the one "
                "Generate uses.") if best else ""
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
