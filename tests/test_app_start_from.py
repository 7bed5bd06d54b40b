"""App tests (AppTest) for the Train page's Start from: a new run from a shipped, uploaded or this session's model,
its new characters said before Start, and what it cannot start said as an error."""

from pathlib import Path

import pytest

from app.models import SHIPPED
from charlm.modelfile import checkpoint
from helpers import FOX, choose_text, job_of, start

NEW_TEXT = FOX + "mail me @ home #1 & 50% off\n" * 20   # '@', '#', '&' and '%' are not in the demo model's text
NEW_CHARS = "#%&@"
DEMO = checkpoint.load(SHIPPED["shipped"][0])


def choose_start(at, key: str, minutes: float = 0.05):
    at.selectbox(key="train_start_from").set_value(key).run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="budget_minutes").set_value(minutes).run()
    return at


def finish(at):
    job = job_of(at)
    job.join(90)
    at.run()
    assert not at.exception and job.snapshot().status == "done", job.snapshot().error
    return job, checkpoint.load(job.best_checkpoint())


def captions(at) -> str:
    return " ".join(c.value for c in at.caption).replace("\\", "")


def test_a_new_model_is_the_default_and_trains_as_before(visitors):
    at = choose_text(visitors())
    assert at.selectbox(key="train_start_from").value == "new"
    assert at.selectbox(key="train_start_from").format_func("new") == "Nothing: a new model (the preset's)"
    start(at, minutes=0.05)
    job, ckpt = finish(at)
    assert job.from_model is None and ckpt.preset == "tiny" and "started_from" not in ckpt.info
    assert "Started from" not in captions(at)


def test_the_shipped_model_starts_a_run_with_its_own_recipe_and_the_new_characters_added(visitors):
    at = choose_start(choose_text(visitors(), NEW_TEXT), "shipped")
    # The architecture and recipe are the model's: no preset, no Advanced settings; its summary instead.
    assert "train_preset" not in [s.key for s in at.selectbox]
    assert not any(n.key and n.key.startswith("hidden_") for n in at.number_input)
    assert any(t.value.startswith("preset cpu-fast · 1 × LSTM(384)") for t in at.text)
    note = at.info[0].value.replace("\\", "")
    assert "This text has 4 characters the model never saw" in note
    assert all(c in note for c in NEW_CHARS)
    assert not at.error and not at.button(key="start").disabled

    at.button(key="start").click().run()
    assert not at.exception
    job, ckpt = finish(at)
    assert ckpt.info["started_from"] == "demo.safetensors" and ckpt.info["new_chars"] == NEW_CHARS
    assert ckpt.vocab[:85] == DEMO.vocab and ckpt.vocab[85:] == list(NEW_CHARS)   # the model's 85, in order
    assert ckpt.preset == "cpu-fast" and ckpt.model_config["hidden_size"] == 384
    assert ckpt.train_config["lr"] == DEMO.train_config["lr"] and ckpt.train_config["minutes"] == 0.05
    assert "Training on fox.txt (cpu-fast)" in at.subheader[0].value.replace("\\", "")
    assert "Started from demo.safetensors (cpu-fast, trained on nietzsche.txt); 4 new characters added." \
        in captions(at)


def test_a_2017_design_model_cannot_take_new_characters_and_start_is_disabled(visitors):
    at = choose_start(choose_text(visitors(), NEW_TEXT), "shipped:seed-2017")
    assert "seed-2017.safetensors is a 2017-design model" in at.error[0].value.replace("\\", "")
    assert at.button(key="start").disabled
    choose_start(at, "new")   # back to a new model: the preset's settings, Start allowed
    assert not at.error and not at.button(key="start").disabled and at.selectbox(key="train_preset")


def test_the_servers_caps_apply_to_the_models_own_settings(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_HIDDEN", "64")
    monkeypatch.setenv("CHARLM_MAX_BATCH_CHARS", "1000")
    at = choose_start(choose_text(visitors()), "shipped")
    errors = " ".join(e.value for e in at.error)
    assert "larger than this server allows: 384 units" in errors
    assert "Batch size × sequence length is 2,048" in errors
    assert "It comes with the model: start from another model, or from nothing." in errors
    assert at.button(key="start").disabled


@pytest.mark.slow
def test_an_uploaded_model_can_be_started_from(visitors, trained):
    at = choose_text(visitors())
    at.file_uploader(key="checkpoint_upload").set_value(
        ("cat-model.safetensors", checkpoint.to_bytes(trained.checkpoint), "application/octet-stream"))
    at.run()
    assert not at.error and at.success
    (key, upload), = at.session_state["uploaded_models"].items()
    assert upload.source.name == "cat-model.safetensors" and upload.source.read_bytes()   # a private copy
    assert "Uploaded: cat-model.safetensors" in at.selectbox(key="train_start_from").options   # listed at once
    choose_start(at, key)
    assert "characters the model never saw" in at.info[0].value   # "the cat sat on the mat" lacks most of the fox
    at.button(key="start").click().run()
    first, ckpt = finish(at)
    assert ckpt.info["started_from"] == "cat-model.safetensors"
    assert ckpt.vocab[:len(trained.vocab)] == trained.checkpoint.vocab and set(ckpt.vocab) == set(FOX)
    # Resume continues this run, on its text with the widened vocabulary.
    at.number_input(key="resume_minutes").set_value(0.05)
    at.button(key="resume").click().run()
    resumed, ckpt = finish(at)
    assert resumed is not first and resumed.snapshot().result.steps > first.snapshot().result.steps
    assert ckpt.vocab[:len(trained.vocab)] == trained.checkpoint.vocab


@pytest.mark.slow
def test_this_sessions_model_can_start_the_next_run(visitors):
    at = choose_text(visitors())
    start(at, minutes=0.05)
    first, before = finish(at)
    choose_start(at, "trained")
    assert "The model knows every character of this text." in captions(at)
    at.button(key="start").click().run()
    second, ckpt = finish(at)
    assert second is not first and ckpt.info["started_from"] == "charlm-fox-tiny.safetensors"
    assert ckpt.vocab == before.vocab and not ckpt.info.get("new_chars")
    assert Path(first.best_checkpoint()).exists()   # the first run's model is kept
