"""App tests (AppTest) for the Train page: a short run with live progress, Stop, Resume, download and re-upload,
the server's caps, its job limit, and a job abandoned by a closed tab."""

import resource
from pathlib import Path

import pytest

import hostile_files as hostile
from app import models as models_mod
from app.state import _remove_visitor_dir
from charlm.modelfile import checkpoint
from charlm.train import jobs
from helpers import APP, FOX, choose_text, configs, job_of, new_visitor, poll, poll_until, start

def ckpt_bytes(trained) -> bytes:
    return checkpoint.to_bytes(trained.checkpoint)


def test_without_a_text_the_page_points_to_the_corpus_page(visitors):
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    assert "First choose a text" in at.info[0].value
    assert at.get("page_link")
    assert "Device:" in at.caption[0].value


def test_train_watch_stop_download_reupload_and_generate(visitors, downloads):
    at = choose_text(visitors())
    start(at, minutes=2.0)
    assert at.button(key="stop")

    def progressed(at):
        progress = at.progress
        return progress and progress[0].value > 0 and at.get("vega_lite_chart")

    poll_until(at, progressed)
    first = at.progress[0].value
    poll_until(at, lambda at: at.progress and at.progress[0].value > first)   # progress advances

    at.button(key="stop").click().run()
    job_of(at).join(30)
    at.run()
    snap = job_of(at).snapshot()
    assert snap.status == "stopped"
    assert any(i.value.startswith("Stopped:") for i in at.info)
    assert snap.samples and snap.checkpoints

    # Download the model, load it safely, upload it again and write with it.
    assert at.download_button(key="download_model")
    data = downloads["charlm-fox-tiny.safetensors"]
    ckpt = checkpoint.load(data)
    assert ckpt.vocab == list(job_of(at).corpus.vocab.chars)
    at.file_uploader(key="checkpoint_upload").set_value(("my-model.pt", data, "application/octet-stream"))
    at.run()
    assert not at.error and at.success[0].value == "Loaded the model. It is in Generate's model list."
    assert any(t.value.startswith("my-model.pt: preset tiny") for t in at.text)   # plain text, not markdown

    at.switch_page("app/pages/generate.py").run()
    options = at.selectbox(key="gen_model").options   # labels as shown
    assert "Trained here: fox.txt" in options and "Uploaded: my-model.pt" in options
    options = list(at.session_state["uploaded_models"]) + ["trained", "shipped"]
    assert at.selectbox(key="gen_model").value == "trained"   # this session's model comes first
    at.slider(key="gen_length").set_value(40)
    at.button(key="write").click().run()
    assert not at.exception and len(at.code[0].value) == len("he ") + 40   # it never saw "T": left out
    assert any("never saw these characters of the prime" in i.value for i in at.info)
    assert set(at.code[0].value) <= set(FOX)   # it writes the characters it learnt
    at.text_area(key="gen_prime").set_value("the ")

    upload_key = next(k for k in options if k.startswith("upload:"))
    at.selectbox(key="gen_model").set_value(upload_key)
    at.button(key="write").click().run()
    assert not at.exception and "Uploaded: my-model.pt" in " ".join(c.value for c in at.caption).replace("\\", "")

    at.selectbox(key="gen_model").set_value("trained")
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_next").click().run()
    assert not at.exception and len(at.code[0].value) == len("the ") + 2   # one character and the cursor


def test_a_running_jobs_badge_is_in_the_sidebar_of_every_page_but_train(visitors):
    """The router draws it (streamlit_app.py): Train shows the run itself, every other page a badge that polls."""
    at = choose_text(visitors())
    start(at, minutes=2.0)
    assert not at.sidebar.page_link and not at.sidebar.progress
    for page in ("app/pages/generate.py", "app/pages/corpus.py", "app/pages/learn/the_model.py",
                 "app/pages/learn/then_and_now.py"):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert [link.value for link in at.sidebar.page_link] == ["Training details"]
        assert [bar.proto.text.split(" ")[0] for bar in at.sidebar.progress] == ["Training:"]
    job_of(at).stop()
    job_of(at).join(30)
    at.run()
    assert not at.sidebar.progress   # the badge says how the run ended (the sidebar's other caption: sessions)
    assert [c.value for c in at.sidebar.caption if c.value.startswith("Training")] == ["Training stopped."]


@pytest.mark.slow
def test_resume_continues_the_same_model(visitors):
    at = choose_text(visitors())
    start(at, minutes=0.05)
    job_of(at).join(60)
    at.run()
    first_run = job_of(at).snapshot()
    assert first_run.status == "done"
    steps = first_run.result.steps
    at.number_input(key="resume_minutes").set_value(0.05)
    at.button(key="resume").click().run()
    job_of(at).join(60)
    at.run()
    second_run = job_of(at).snapshot()
    assert second_run.status == "done", second_run.error
    assert second_run.result.steps > steps   # it counts on from the first run
    assert at.session_state["earlier_runs"].losses == first_run.losses   # the chart starts where it left off


def test_a_bad_checkpoint_upload_gets_a_clear_error(visitors):
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("notes.pt", b"these are my notes", "text/plain"))
    at.run()
    assert not at.exception
    assert "The uploaded file is not a charlm model file" in at.error[0].value


HOSTILE_UPLOADS = {   # name -> (builder, the words of its message)
    "zip bomb": (hostile.zip_bomb, "holds compressed data"),
    "stride-0 giant": (hostile.stride_zero_giant, "repeats its data"),
    "negative embed": (lambda c: hostile.with_fields(c, config={"embed_dim": -5}), "embed_dim must be at least 1"),
    "fractional hidden": (lambda c: hostile.with_fields(c, config={"hidden_size": 128.5}),
                          "hidden_size must be a whole number"),
    "odd-typed layers": (lambda c: hostile.with_fields(c, config={"num_layers": [1]}),
                         "num_layers must be a whole number"),
    "nan weights": (hostile.nan_weights, "holds NaN or infinite numbers"),
}


# The zip bomb takes about 15 s here, setup included: slow; the other hostile files are quick.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "zip bomb" else n
                                  for n in HOSTILE_UPLOADS])
def test_a_hostile_upload_gets_a_message_and_memory_stays_flat(visitors, trained, name):
    build, words = HOSTILE_UPLOADS[name]
    data = build(trained.checkpoint)
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    at.file_uploader(key="checkpoint_upload").set_value((f"{name}.pt", data, "application/octet-stream"))
    at.run()
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert not at.exception
    assert words in at.error[0].value.replace("\\", "")
    assert "uploaded_models" not in at.session_state
    assert grew < 100, f"{name}: peak memory grew {grew:.0f} MB"
    at.switch_page("app/pages/generate.py").run()   # the app keeps working
    assert not at.exception and at.button(key="write")


def test_markdown_in_an_uploaded_models_fields_reaches_the_page_as_plain_text(visitors, trained):
    data = hostile.with_fields(trained.checkpoint, preset=hostile.MARKDOWN_PRESET)
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("fields.pt", data, "application/octet-stream"))
    at.run()
    at.switch_page("app/pages/generate.py").run()
    at.selectbox(key="gen_model").set_value(next(iter(at.session_state["uploaded_models"]))).run()
    assert sum(hostile.MARKDOWN_PRESET in t.value for t in at.text) == 2   # the summary, and the card
    markdown = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.success]
    assert not any("example.com" in value for value in markdown)


def test_uploads_beyond_a_visitors_memory_budget_push_out_the_oldest(visitors, trained, monkeypatch):
    per_model = models_mod.memory_bytes(trained.checkpoint)
    monkeypatch.setenv("CHARLM_MAX_UPLOAD_MB", str(2.5 * per_model / 1e6))   # room for two
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    for i in range(3):
        data = hostile.with_fields(trained.checkpoint, preset=f"copy{i}")
        at.file_uploader(key="checkpoint_upload").set_value((f"m{i}.pt", data, "application/octet-stream"))
        at.run()
        assert not at.error
    kept = at.session_state["uploaded_models"]
    assert [m.label for m in kept.values()] == ["Uploaded: m1.pt", "Uploaded: m2.pt"]
    assert sum(m.nbytes for m in kept.values()) <= 2.5 * per_model


def test_an_upload_larger_than_the_whole_budget_is_refused(visitors, trained, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_UPLOAD_MB", "0.1")
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("m.pt", ckpt_bytes(trained), "application/octet-stream"))
    at.run()
    assert "may hold 0 MB in all on this server" in at.error[0].value.replace("\\", "")
    assert "uploaded_models" not in at.session_state


def test_a_checkpoint_over_the_servers_size_caps_is_refused(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_HIDDEN", "64")
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    shipped = (Path(APP).parent / "checkpoints" / "demo.safetensors").read_bytes()
    hidden = checkpoint.load(shipped).model_config["hidden_size"]   # over the cap of 64
    at.file_uploader(key="checkpoint_upload").set_value(("demo.safetensors", shipped, "application/octet-stream"))
    at.run()
    assert f"larger than allowed here: {hidden} units per layer" in at.error[0].value.replace("\\", "")
    assert "uploaded_models" not in at.session_state


def test_settings_over_the_servers_caps_are_refused(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_HIDDEN", "64")
    monkeypatch.setenv("CHARLM_MAX_TRAIN_MINUTES", "1")
    at = choose_text(visitors())
    at.selectbox(key="train_preset").set_value("tiny").run()   # 128 units per layer
    assert any("larger than this server allows: 128 units" in e.value for e in at.error)
    assert at.button(key="start").disabled
    at.number_input(key="hidden_tiny").set_value(64).run()
    assert not at.error and not at.button(key="start").disabled
    at.number_input(key="budget_minutes").set_value(5).run()
    assert "at most 1 minute on this server" in at.error[0].value


def test_two_visitors_have_their_own_text_and_job_and_a_full_server_puts_the_second_in_line(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_JOBS", "1")
    alice = start(choose_text(visitors()), minutes=2.0)
    bob = visitors()
    bob.switch_page("app/pages/train.py").run()
    assert "First choose a text" in bob.info[0].value   # Alice's text is not Bob's
    choose_text(bob, FOX.upper())
    start(bob)
    waiting = job_of(bob)
    assert waiting is not None and waiting.snapshot().status == "queued" and waiting.snapshot().place == 1
    assert "Your run waits its turn and starts by itself: it is next." in " ".join(i.value for i in bob.info)
    assert waiting.snapshot().latest is None and job_of(alice).is_alive()   # not one step while Alice trains
    alice.button(key="stop").click().run()
    job_of(alice).join(30)
    poll(lambda: waiting.snapshot().latest is not None, 30, "the queued run to start by itself")
    assert waiting.snapshot().status == "running" and waiting.snapshot().latest is not None
    assert job_of(bob) is not job_of(alice)
    assert job_of(bob).workdir != job_of(alice).workdir
    bob.button(key="stop").click().run()
    waiting.join(30)


def test_a_job_nobody_watches_stops_by_itself(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_ABANDON_AFTER_S", "1")
    at = start(choose_text(visitors()), minutes=2.0)
    job = job_of(at)
    job.join(60)   # nobody polls: the tab was closed
    assert not job.is_alive()
    assert "nobody was watching" in " ".join(job.snapshot().messages)


def test_a_visitors_folder_goes_only_after_their_job_has_stopped(periodic_corpus, tmp_path):
    # The app's clean-up when a session ends: stop the job first, so its last save cannot recreate the folder.
    visitor = tmp_path / "visitor"
    job = jobs.TrainingJob(periodic_corpus, "tiny", *configs(periodic_corpus, minutes=5), workdir=visitor / "job")
    job.start()
    _remove_visitor_dir(str(visitor), [job])
    assert not job.is_alive()
    assert not visitor.exists()


def test_a_checkpoint_written_by_earlier_versions_uploads_and_writes(visitors):
    legacy = Path(__file__).parent / "data" / "legacy-v1.pt"
    at = visitors()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("old.pt", legacy.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.error and at.success[0].value == "Loaded the model. It is in Generate's model list."
    at.switch_page("app/pages/generate.py").run()
    at.selectbox(key="gen_model").set_value(next(iter(at.session_state["uploaded_models"]))).run()
    at.text_area(key="gen_prime").set_value("the cat sat on the ").run()
    at.selectbox(key="gen_strategy").set_value("greedy").run()
    at.slider(key="gen_length").set_value(10)
    at.button(key="write").click().run()
    assert not at.exception and at.code[0].value.strip() == "the cat sat on the mat. the c"


def test_the_embedding_width_is_a_knob_for_presets_that_have_one(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_EMBED", "32")
    at = choose_text(visitors())
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="embed_tiny").set_value(24).run()
    assert not at.error
    start(at, minutes=0.05)
    poll_until(at, lambda a: job_of(a) is not None and not job_of(a).is_alive())
    assert checkpoint.load(job_of(at).best_checkpoint()).model_config["embed_dim"] == 24
    at.number_input(key="embed_tiny").set_value(48).run()            # over this server's cap
    assert any("embedding" in e.value.lower() and "32" in e.value for e in at.error)
    at.selectbox(key="train_preset").set_value("seed-2017").run()    # no embedding: no knob
    assert "embed_seed-2017" not in [n.key for n in at.number_input]


@pytest.mark.parametrize("minutes, every_s", [(0.05, 10.0), (1.0, 10.0), (2.0, 20.0), (5.0, 30.0), (10.0, 30.0)])
def test_a_run_scores_about_six_times_and_not_before_its_tenth_second(minutes, every_s):
    # The first sample comes once the default writes words (bench/hosted_minute.py), and a short run's
    # budget is not spent scoring.
    from app.train_settings import eval_interval_s
    assert eval_interval_s(minutes) == every_s


def test_the_budget_offered_first_is_one_minute():
    at = choose_text(new_visitor())
    assert at.number_input(key="budget_minutes").value == 1.0
