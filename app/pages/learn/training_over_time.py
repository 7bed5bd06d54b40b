"""Training over time: what the model wrote at each evaluation during training, beside its loss curve."""

from __future__ import annotations

import streamlit as st

from app import charts, models, plain, state
from app.learn import common, lab
from charlm.learn import overfit
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


def weights_step(rows: list[dict], best_step: int | None = None) -> int | None:
    """The step of the evaluation the model's weights are from: the one its file names (best_step), else the lowest
    validation loss (the first of equals), as charlm keeps them while the file's history goes on to the run's end."""
    if best_step is not None and any(row["step"] == best_step for row in rows):
        return best_step
    scored = [row for row in rows if isinstance(row.get("val_loss"), (int, float))]
    return min(scored, key=lambda row: row["val_loss"])["step"] if scored else None


def when(row: dict, weights_at: int | None = None) -> str:
    """'step 1,200 · 2 min 05 s' for the slider, with ' · the model's weights' at the evaluation they are from."""
    elapsed = row.get("elapsed_s")
    time = f" · {format_duration(elapsed)}" if isinstance(elapsed, (int, float)) else ""
    weights = " · the model's weights" if row["step"] == weights_at else ""
    return f"step {row['step']:,}{time}{weights}"


def weights_rule(step: int):
    """A dashed green rule at the evaluation whose weights the model holds."""
    import altair as alt
    import pandas as pd

    return alt.Chart(pd.DataFrame([{"step": step}])).mark_rule(color="#1e8449", strokeDash=[4, 3],
                                                               strokeWidth=2).encode(x=alt.X("step:Q"))


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
    weights_at = weights_step(common.history(model)[0], model.best_step)
    step = st.select_slider("Evaluation during training", steps, key=key,
                            format_func=lambda s: when(by_step[s], weights_at),
                            help="Each stop is one evaluation: the model scored held-out text and wrote a sample.")
    row = by_step[step]
    index = steps.index(step)

    chart_col, text_col = st.columns([3, 2], gap="large")
    with chart_col:
        losses = [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in rows]
        reading = overfit.read(losses, kept=weights_at)
        chart = charts.loss_chart(losses, marker=step, kept=weights_at)
        if chart is not None:
            if weights_at is not None:   # beneath the others, so the chosen evaluation's rule stays on top
                chart = weights_rule(weights_at) + chart
            # Steps are whole numbers: ticks of at least one step, written without decimals.
            st.altair_chart(chart.configure_axisX(format=",d", tickMinStep=1), width="stretch", height=340)
        st.markdown(charts.verdict_line(reading))
        st.caption("Shaded: the gap between validation and training loss. The orange rule marks the evaluation "
                   "chosen with the slider"
                   + (f"; the dashed green one the evaluation whose weights the model holds (step {weights_at:,}, "
                      "its lowest validation loss)" if weights_at is not None else "")
                   + ("; labelled where validation turned: held-out text got worse after it." if reading.turn
                      is not None else "."))
    with text_col:
        epoch = row.get("epoch")
        passes = f" · {epoch:.2f} passes over the text" if isinstance(epoch, (int, float)) else ""
        st.markdown(f"**Evaluation {index + 1} of {len(rows)}** · validation "
                    f"**{lab.bits(row.get('val_loss'))}** bits/char{passes}")
        if weights_at is not None:
            st.caption("The model's weights are from this evaluation: the lowest validation loss of the run."
                       if step == weights_at else
                       f"The model's weights are from step {weights_at:,}, the lowest validation loss; its file "
                       "keeps every evaluation, so later ones show where held-out text stopped improving.")
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
