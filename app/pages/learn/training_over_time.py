"""Training over time: what the model wrote at each evaluation during training, beside its loss curve."""

from __future__ import annotations

import streamlit as st

from app import charts, models, plain, state
from app.learn import common, lab
from charlm.units import format_duration

TITLE = "Training over time"
INTRO = (
    "A model is not taught rules: it starts with random weights, writing noise, and each training step nudges "
    "every weight so the next character becomes a little less surprising. During training the model was "
    "stopped now and then to score held-out text (the **validation loss**, lower is better) and to write a "
    "short sample. Move the slider through training to watch the writing improve as the loss falls: first "
    "frequent letters and spaces, then words, then punctuation and longer patterns."
)


def evaluations(model: models.LoadedModel) -> list[dict]:
    """The model's evaluation rows, oldest first: its file's history, and for this session's model what its
    job has evaluated since that file was written (samples and losses; no time for those)."""
    rows = [dict(row) for row in common.history(model)[0]]
    job = state.job()
    if model.key != "trained" or job is None:
        return rows
    snap = job.snapshot()
    _, samples = state.full_history(snap)
    sample_at = dict(samples)
    done = rows[-1]["step"] if rows else -1
    for step, train_loss, val_loss in snap.losses:
        if val_loss is not None and step > done:
            rows.append({"step": step, "train_loss": train_loss, "val_loss": val_loss,
                         "sample": sample_at.get(step)})
            done = step
    for row in rows:   # a history written before samples were kept may still have them in the job
        if not row.get("sample") and row["step"] in sample_at:
            row["sample"] = sample_at[row["step"]]
    return rows


def when(row: dict) -> str:
    """'step 1,200 · 2 min 05 s' for the slider."""
    elapsed = row.get("elapsed_s")
    time = f" · {format_duration(elapsed)}" if isinstance(elapsed, (int, float)) else ""
    return f"step {row['step']:,}{time}"


def show(model: models.LoadedModel) -> None:
    common.skipped_note(common.history(model)[1])
    rows = evaluations(model)
    if not rows:
        st.info("This model's file keeps no record of its training (no evaluations), so there is nothing to "
                "replay. Models trained by this version of charlm keep one: train one on the Train page.")
        return
    has_samples = any(row.get("sample") for row in rows)
    if not has_samples:
        st.info("This model's history has no samples: it was trained before charlm kept the text written at "
                "each evaluation. The loss curve is below; a model trained on the Train page keeps its samples.")
    steps = [row["step"] for row in rows]
    key = f"tot_step:{model.key}"
    if st.session_state.get(key) not in steps:
        st.session_state[key] = steps[-1]
    by_step = {row["step"]: row for row in rows}
    step = st.select_slider("Evaluation during training", steps, key=key, format_func=lambda s: when(by_step[s]),
                            help="Each stop is one evaluation: the model scored held-out text and wrote a sample.")
    row = by_step[step]
    index = steps.index(step)

    chart_col, text_col = st.columns([3, 2], gap="large")
    with chart_col:
        losses = [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in rows]
        chart = charts.loss_chart(losses, marker=step)
        if chart is not None:
            st.altair_chart(chart, width="stretch", height=340)
        st.caption("The orange rule marks the evaluation chosen with the slider.")
    with text_col:
        epoch = row.get("epoch")
        passes = f" · {epoch:.2f} passes over the text" if isinstance(epoch, (int, float)) else ""
        st.markdown(f"**Evaluation {index + 1} of {len(rows)}** · validation "
                    f"**{lab.bits(row.get('val_loss'))}** bits/char{passes}")
        sample = row.get("sample")
        if sample:
            st.markdown(f"**What it wrote at {plain.escape(when(row))}** (temperature 0.8, starting "
                        "from a new line):")
            plain.block(sample)
        elif has_samples:
            st.caption("No sample was written at this evaluation.")
        if index > 0 and sample and rows[0].get("sample"):
            with st.expander("Compare with the first evaluation"):
                st.caption(when(rows[0]))
                plain.block(rows[0]["sample"])


model = common.page_start(TITLE, INTRO)
if model is not None:
    show(model)
