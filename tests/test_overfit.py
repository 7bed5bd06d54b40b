"""Tests of overfitting made visible: charlm.learn.overfit's reading of a run's evaluations (the gap, where
validation turned, the verdict), the loss chart's shaded gap, turn rule and fitted axis, and both pages that
show them: the Train page (a run resumed into worse validation) and Learn's Training over time."""

from __future__ import annotations

import json

import pytest
import vl_convert

from app import charts, run_view
from charlm.learn import overfit
from charlm.units import LN2
from hostile_files import with_fields
from helpers import chart_data, job_of, resumed_worse_then_stopped

TURNED = "Validation loss has been rising since step {s} while training loss keeps falling: the model is " \
         "memorising its training text (overfitting). The weights kept are from step {k}."


def split(gaps: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [step for step, _ in gaps], [gap for _, gap in gaps]


# --- the reading ---------------------------------------------------------------------------------------

def test_a_run_whose_validation_still_falls_is_still_learning():
    losses = [(0, None, 3.2), (50, 3.0, None), (100, 2.4, 2.5), (150, 2.1, None), (200, 1.9, 2.1)]
    reading = overfit.read(losses)
    assert reading.kind == "learning" and reading.turn is None
    assert reading.best == (200, 2.1)
    assert split(reading.gaps) == ([100, 200], pytest.approx([0.1, 0.2]))   # step 0 has no training loss: no gap
    assert reading.latest_gap == pytest.approx(0.2)
    assert reading.verdict == "Still learning: validation falls with training."


def test_validation_turned_at_its_best_when_the_latest_evaluation_rose_above_it():
    losses = [(100, 2.2, 2.3), (200, 1.8, 2.0), (300, 1.5, 2.1), (400, 1.3, 2.3)]
    reading = overfit.read(losses)
    assert reading.kind == "overfitting" and reading.turn == 200 and reading.best == (200, 2.0)
    assert split(reading.gaps) == ([100, 200, 300, 400], pytest.approx([0.1, 0.2, 0.6, 1.0]))
    assert reading.verdict == TURNED.format(s=200, k=200)
    # The step reads as a teacher says it, and a model file that names its kept weights is believed.
    big = [(step * 10, train, val) for step, train, val in losses]
    assert overfit.read(big).verdict == TURNED.format(s="2,000", k="2,000")
    assert overfit.read(losses, kept=300).verdict == TURNED.format(s=200, k=300)


def test_a_wiggle_within_noise_is_no_turn_and_one_just_beyond_it_is():
    rows = [(100, 2.2, 2.3), (200, 1.8, 2.0), (300, 1.7, 2.03)]
    assert overfit.NOISE_SHARE == 0.01                    # 1 % of the best, 2.0: a rise of 0.02 is noise
    level = overfit.read(rows[:2] + [(300, 1.7, 2.019), (400, 1.6, 2.0199)])
    assert level.kind == "levelled" and level.turn is None and level.best == (200, 2.0)
    assert level.verdict == ("Levelled off: validation has stayed within noise (1 %) of its best, at step 200, "
                             "since then; more training of this kind adds little.")
    assert overfit.read(rows[:2] + [(300, 1.7, 2.021)]).turn == 200
    # A rise that came back within noise has levelled off: the latest evaluation decides.
    assert overfit.read(rows + [(400, 1.6, 2.01)]).kind == "levelled"
    # Near 0 (a text learned by heart) the floor counts, not 1 % of almost nothing.
    assert overfit.read([(1, 0.01, 0.0100), (2, 0.005, 0.0105)]).turn is None
    assert overfit.read([(1, 0.01, 0.0100), (2, 0.005, 0.0115)]).turn == 1


def test_the_earliest_of_equal_bests_is_the_turn_and_a_later_equal_is_no_rise():
    assert overfit.read([(1, 2.0, 1.5), (2, 1.9, 1.5), (3, 1.8, 1.7)]).turn == 1
    assert overfit.read([(1, 2.0, 1.5), (2, 1.9, 1.5)]).kind == "levelled"


def test_a_rise_while_training_loss_does_not_fall_is_said_so():
    reading = overfit.read([(10, 2.0, 2.0), (20, 2.1, 2.5)])
    assert reading.turn == 10
    assert reading.verdict == ("Validation loss has been rising since step 10, and training loss has not fallen "
                               "either since then: more training of this kind does not help. The weights kept "
                               "are from step 10.")


def test_too_few_evaluations_give_no_verdict():
    for losses in ([], [(5, 3.0, None)], [(0, None, 4.0), (5, 3.0, None)], [(0, None, float("nan")), (5, 3, 2)]):
        reading = overfit.read(losses)
        assert reading.kind == "too few" and reading.turn is None and reading.best is None
        assert reading.verdict == "Not enough evaluations yet: the verdict on overfitting needs at least two."


# --- the chart -------------------------------------------------------------------------------------------

def layers(spec: dict, data: str | None = None):
    """(layer, its dataset's name) for every leaf layer of a (layered) spec."""
    for layer in spec.get("layer", [spec]):
        name = layer.get("data", {}).get("name", data)
        if "layer" in layer:
            yield from layers(layer, name)
        else:
            yield layer, name


def turn_rules(spec: dict, datasets: dict) -> list[int]:
    """The steps of the green rules drawn with a "validation turned" label."""
    steps = []
    for layer, name in layers(spec):
        if layer["mark"]["type"] == "rule" and layer["mark"]["color"] == charts.TURN_COLOUR:
            rows = datasets[name]
            if all(row.get("label") == "validation turned" for row in rows):
                steps += [row["step"] for row in rows]
    return steps


def test_the_loss_chart_shades_the_gap_and_marks_the_turn_only_once_validation_turned():
    bits = lambda value: value * LN2   # noqa: E731  (the chart takes nats)
    losses = [(100, bits(2.2), bits(2.3)), (150, bits(2.0), None), (200, bits(1.8), bits(2.0)),
              (300, bits(1.5), bits(2.1)), (400, bits(1.3), bits(2.3))]
    spec = charts.loss_chart(losses, marker=300).to_dict()
    assert turn_rules(spec, spec["datasets"]) == [200]
    band = next(spec["datasets"][name] for layer, name in layers(spec) if layer["mark"]["type"] == "area")
    assert [row["step"] for row in band] == [100, 150, 200, 300, 400]
    at_evaluations = [row for row in band if row["step"] != 150]
    assert [row["gap (val - train)"] for row in at_evaluations] == pytest.approx([0.1, 0.2, 0.6, 1.0])
    assert (band[2]["training"], band[2]["bits per character"]) == pytest.approx((1.8, 2.0))
    # Between evaluations the band's top is on the validation line as a log axis draws it: straight in log bits,
    # halfway there the geometric mean; its bottom on the training curve's own point.
    assert (band[1]["training"], band[1]["bits per character"]) == pytest.approx((2.0, (2.3 * 2.0) ** 0.5))
    # The marker rule stays the last layer (the page's chosen evaluation, drawn on top).
    assert list(layers(spec))[-1][0]["mark"] == {"type": "rule", "color": "#d35400", "strokeWidth": 2}
    still = charts.loss_chart(losses[:3]).to_dict()
    assert turn_rules(still, still["datasets"]) == [] and "validation turned" not in json.dumps(still)


def test_a_narrow_band_of_losses_fills_the_axis():
    """Losses between 1.49 and 1.57 bits: Vega's y domain comes from the data alone (log, no zero, no rounding)."""
    losses = [(step, 1.55 * LN2, (1.58 - step / 10_000) * LN2) for step in range(100, 1_000, 100)]
    vega = vl_convert.vegalite_to_vega(charts.loss_chart(losses).to_dict())
    vega = json.loads(vega) if isinstance(vega, str) else vega
    y = next(scale for scale in vega["scales"] if scale["name"] == "y")
    assert y["type"] == "log" and y["nice"] is False and not y.get("zero")
    assert "fields" in y["domain"] or "data" in y["domain"]   # from the data, not a fixed span


def drawn_turns(chart) -> list[int]:
    """turn_rules of a chart as a page sent it (its data travels beside the spec)."""
    frames = chart_data(chart)
    datasets = {d.name: frame.to_dict("records") for d, frame in zip(chart.proto.datasets, frames)}
    return turn_rules(json.loads(chart.proto.spec), datasets)


# --- the pages --------------------------------------------------------------------------------------------

def test_the_train_page_says_where_validation_turned_and_shows_the_gap(visitor, monkeypatch):
    at = visitor()
    resumed_worse_then_stopped(at, monkeypatch)
    losses = at.session_state["earlier_runs"].losses + job_of(at).snapshot().losses
    best_step = run_view.best_evaluation(losses)[0]
    verdicts = [m.value for m in at.markdown if m.value.startswith("**Verdict:**")]
    # Whether training loss fell in the resumed run's few steps depends on them (both verdicts are held exactly
    # above); either way the page names the step where validation turned and the weights it keeps.
    assert verdicts == ["**Verdict:** " + overfit.read(losses).verdict]
    assert verdicts[0].startswith(f"**Verdict:** Validation loss has been rising since step {best_step:,}")
    assert verdicts[0].endswith(f"The weights kept are from step {best_step:,}.")
    step, train, val = [row for row in losses if row[2] is not None][-1]
    gap = next(m for m in at.metric if m.label == "Gap (val - train)")
    assert gap.value == f"{(val - train) / LN2:.3f}" and (val - train) / LN2 > 3.0   # 3 nats worse
    assert drawn_turns(at.get("vega_lite_chart")[0]) == [best_step]


@pytest.mark.slow
def test_training_over_time_says_the_verdict_and_draws_the_turn_at_its_step(visitor, trained):
    rows = [{**trained.checkpoint.history[-1], "step": step, "train_loss": train, "val_loss": val}
            for step, train, val in [(100, 2.2, 2.3), (200, 1.8, 2.0), (300, 1.5, 2.1), (400, 1.3, 2.3)]]
    data = with_fields(trained.checkpoint, history=rows, best_step=200)
    at = visitor()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("overfit.safetensors", data, "application/octet-stream"))
    at.run()
    key = next(iter(at.session_state["uploaded_models"]))
    at.switch_page("app/pages/learn/training_over_time.py").run()
    at.selectbox(key="learn_model").set_value(key).run()
    assert not at.exception
    assert "**Verdict:** " + TURNED.format(s=200, k=200) in [m.value for m in at.markdown]
    at.select_slider(key=f"tot_step:{key}").set_value(300).run()   # the slider still moves the marker
    chart = at.get("vega_lite_chart")[0]
    assert drawn_turns(chart) == [200]
    assert list(chart_data(chart)[-1]["step"]) == [300]   # the chosen evaluation's rule, on top
