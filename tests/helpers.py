"""What several test modules share that is not a fixture: texts made in code, small settings, the command line
run as a person runs it, a page driven the way a visitor drives it, and waiting on a condition.

Fixtures live in conftest.py; a test module imports from here, never from another test module.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from charlm.config import ModelConfig, TrainConfig
from charlm.presets import get_preset
from charlm.text.corpus import Corpus

if TYPE_CHECKING:   # AppTest loads much of streamlit: only the app tests pay for it, when they make a visitor
    from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")


def poll(condition, deadline_s: float = 20.0, what: str = "the condition", every_s: float = 0.02):
    """Wait until condition() is true (-> its value), checking every every_s; fail after deadline_s."""
    deadline = time.monotonic() + deadline_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(every_s)
    return value


# --- texts and settings ---------------------------------------------------------------------------

PERIOD = "the cat sat on the mat. "
PERIODIC_TEXT = PERIOD * 200          # 4,800 characters, 11 distinct
FOX = "the quick brown fox jumps over the lazy dog; the five boxing wizards jump quickly.\n" * 60

# A small model and run for tests of the training machinery (not of how well it learns): a step takes
# milliseconds. Evaluation and samples are kept short for the same reason.
SMALL_MODEL = dict(hidden_size=32, embed_dim=16)
SMALL_RUN = dict(batch_size=8, seq_len=16, warmup_steps=2, device="cpu", eval_chars=400, sample_chars=20,
                 eval_interval_s=1e9, amp=False)   # fp32: runs compared step for step compute alike (no probe)
LONG = dict(minutes=1.0)   # a training budget longer than any test waits: these jobs end by being stopped


def configs(corpus: Corpus, preset: str = "tiny", model: dict | None = None,
            **run) -> tuple[ModelConfig, TrainConfig]:
    """A preset's configs for corpus with the small model and run settings, plus these overrides."""
    chosen = get_preset(preset)
    return (chosen.model_config(len(corpus.vocab), **{**SMALL_MODEL, **(model or {})}),
            chosen.train_config(**{**SMALL_RUN, **run}))


def made_up_text(n_chars: int, seed: int = 0) -> str:
    """Irregular but learnable text: words drawn at random from a small list, in short lines."""
    words = "river stone light garden walks under over slowly bright the a of".split()
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < n_chars:
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + ".")
    return "\n".join(lines) + "\n"


# --- the command line -----------------------------------------------------------------------------

ENV = {**os.environ, "CHARLM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def charlm(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """python -m charlm ARGS in a new process."""
    return subprocess.run([sys.executable, "-m", "charlm", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(run, *words: str) -> str:
    """Exit status 2 and one line on stderr starting "error:" that holds each word; no traceback. -> the line."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def assert_clean_error(run: subprocess.CompletedProcess, *words: str):
    """Exit status 2, one line on stderr that starts with "error:" and says what is wrong, no traceback."""
    one_error_line(run, *words)
    assert run.stdout == ""


# --- the app, driven by AppTest -------------------------------------------------------------------

def new_visitor() -> AppTest:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at


def open_learn(page: str, model: str | None = None, session: dict | None = None) -> AppTest:
    """A new visitor (with `session` set first) on the Learn part app/pages/learn/<page>.py, on `model` if given."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"app/pages/learn/{page}.py").run()
    if model is not None:
        at.selectbox(key="learn_model").set_value(model).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def choose_text(at: AppTest, text: str = FOX) -> AppTest:
    """Upload text on the Corpus page, then open the Train page."""
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("fox.txt", text.encode(), "text/plain"))
    at.run()
    assert not at.error and "corpus" in at.session_state
    at.switch_page("app/pages/train.py").run()
    assert not at.exception
    return at


def start(at: AppTest, minutes: float = 1.0) -> AppTest:
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="budget_minutes").set_value(minutes)
    at.button(key="start").click().run()
    assert not at.exception
    return at


def poll_until(at: AppTest, done, timeout: float = 60.0) -> AppTest:
    """Rerun the page (as the polling fragment would) until done(at) or the timeout. Once done, the page is drawn
    once more: a job can finish between a drawing and the check, and what the test reads must be drawn after."""
    def drawn_and_done() -> bool:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return done(at)
    poll(drawn_and_done, timeout, "the training page", every_s=0.5)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def job_of(at: AppTest):
    return at.session_state["job"] if "job" in at.session_state else None


def resumed_worse_then_stopped(at: AppTest, monkeypatch) -> float:
    """Train a few seconds, then resume with every evaluation scoring 3 nats worse than that run's best, and stop
    once the resumed run has taken a step: the best stays the first run's. -> that best (nats/char)."""
    import charlm.train.trainer
    at = start(choose_text(at), minutes=0.05)
    job_of(at).join(60)
    at.run()
    first_best = job_of(at).snapshot().result.best_val_loss
    monkeypatch.setattr(charlm.train.trainer, "evaluate", lambda *args, **kwargs: (first_best + 3.0, None))
    monkeypatch.setenv("CHARLM_RUNS_IN", "thread")   # the resumed run trains here, where the patch holds
    steps = job_of(at).snapshot().result.steps
    at.number_input(key="resume_minutes").set_value(1.0)
    at.button(key="resume").click().run()
    poll_until(at, lambda at: job_of(at).snapshot().latest and job_of(at).snapshot().latest.step > steps)
    at.button(key="stop").click().run()
    job_of(at).join(30)
    at.run()
    return first_best


def finished_fox_run(folder: Path):
    """A tiny run of 40 steps on FOX (line breaks and words, no quotes, brackets or digits), finished. -> (job,
    corpus)."""
    from charlm.text.corpus import load_corpus
    from charlm.train import jobs
    corpus = load_corpus(FOX, name="fox.txt")
    job = jobs.TrainingJob(corpus, "tiny", *configs(corpus, max_steps=40, seed=0), workdir=folder).start()
    job.join(180)
    assert job.snapshot().status == "done" and job.best_checkpoint() is not None
    return job, corpus


def stop_every_job(visitors: list[AppTest]) -> None:
    """Stop the training jobs these visitors started on any page (the Train page's, "Train both"'s), and wait."""
    jobs = [job for at in visitors if "visitor_dir" in at.session_state for job in at.session_state["visitor_dir"].jobs]
    for job in jobs:
        job.stop()
    for job in jobs:
        job.join(60)


def written(at) -> str:
    """What the Generate page wrote."""
    return at.code[0].value


def step_text(at) -> str:
    """The Generate page's text in Step mode, without its cursor."""
    text = at.code[0].value
    assert text.endswith("▌")   # the cursor
    return text[:-1]


def chart_data(chart) -> list:
    """The data frames an altair chart sent to the browser."""
    import pyarrow.ipc   # here: only the tests that read charts need it
    return [pyarrow.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


# The first lines of a script run in a fresh process where torch is not installed, as far as it can tell: every
# import of torch fails as a missing module does (the tests of the reading half and of the app without torch).
NO_TORCH_HOOK = """
import sys
class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r} (no torch here)", name=name)
sys.meta_path.insert(0, RefuseTorch())
"""
