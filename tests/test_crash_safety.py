"""Tests for a run that ends badly: the resume file is written during training (at least every save_every_s),
a process killed outright leaves files that load and a run that resumes from them, the GPU's random state is
kept, and running out of memory is one line saying what to lower."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.train import trainer as train_module
from charlm.cli.main import build_parser, main
from charlm.train.resume import Resume, last_path_for
from charlm.train.trainer import OutOfMemory, Trainer, train

from helpers import ENV, PERIODIC_TEXT, ROOT, assert_clean_error, configs, made_up_text


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- the resume file, written as training goes ----------------------------------------------------------


def test_the_resume_file_is_due_every_save_every_s_and_written_whole(periodic_corpus, tmp_path):
    clock = FakeClock()
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, minutes=10.0), out=tmp_path / "m.safetensors",
                      clock=clock, save_every_s=60.0)
    trainer.model.train()
    for _ in range(3):
        assert trainer.step()
    clock.now += 59.0
    assert trainer.decide(stepped=True)[2] is False
    clock.now += 1.0
    assert trainer.decide(stepped=True)[2] is True
    trainer.save_resume()
    saved = resume_file.load(tmp_path / "m.last.pt")
    assert saved.progress["step"] == 3 and saved.optimizer and saved.carry is not None
    assert saved.rng["batches"] is not None and len(saved.rng["ranks"]) == 1
    assert trainer.decide(stepped=True)[2] is False                  # the minute counts from this save
    clock.now += 600.0                                               # the budget is spent: stop, and finish() saves
    assert trainer.decide(stepped=True)[:3] == (True, False, False)


def test_a_run_writes_its_resume_file_while_it_trains_not_only_at_its_end(periodic_corpus, tmp_path):
    out = tmp_path / "m.safetensors"
    seen = {}

    def on_progress(event):
        if event.kind == "step" and event.step == 6:
            seen["saved"] = resume_file.load(last_path_for(out))

    result = train(periodic_corpus, *configs(periodic_corpus, max_steps=8), out=out, on_progress=on_progress,
                   save_every_s=0.0)
    assert seen["saved"].progress["step"] == 5      # written before step 6 began
    # A resume from that file goes on exactly as the run went on.
    resumed = train(periodic_corpus, out=tmp_path / "resumed.safetensors", resume=Resume(last_path_for(out)))
    assert resumed.steps == result.steps == 8 and resumed.chars_seen == result.chars_seen
    assert resumed.final_val_loss == pytest.approx(result.final_val_loss, rel=1e-5)


def test_a_run_killed_outright_leaves_files_that_load_and_a_run_that_resumes_from_them(tmp_path, monkeypatch):
    text = tmp_path / "words.txt"
    text.write_text(made_up_text(60_000), encoding="utf-8")
    out = tmp_path / "words.safetensors"
    last = last_path_for(out)
    command = [sys.executable, "-m", "charlm", "train", str(text), "--preset", "tiny", "--hidden", "32", "--embed",
               "16", "--minutes", "10", "--save-every", "0", "--device", "cpu", "--out", str(out)]
    step, loads = 0, 0
    with subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stderr.readline().startswith("training tiny on words.txt")
        deadline = time.monotonic() + 120
        while step < 40 and time.monotonic() < deadline:   # the resume file is rewritten after every step
            if last.exists():
                step = resume_file.load(last).progress["step"]   # whole whenever it is read
                loads += 1
        proc.send_signal(signal.SIGKILL)                   # no handler runs: as a crash or the OOM killer
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and step >= 40 and loads > 1
    killed = resume_file.load(last)
    assert killed.progress["step"] >= step and killed.optimizer and killed.carry is not None
    # The model file too: the early evaluations (steps 0, 10, 30) wrote it before step 40.
    assert {path.name for path in tmp_path.iterdir()} - {"words.txt", "words.last.pt", "words.safetensors"} <= \
        {path.name for path in tmp_path.glob("words.*.tmp")}   # at most the temporary it was writing
    assert [row["step"] for row in ckpt_io.load(out).history][:3] == [0, 10, 30]
    monkeypatch.setenv("CHARLM_THREADS", "1")
    assert main(["train", str(text), "--resume", str(last), "--epochs", "0.5", "--out", str(out)]) == 0
    resumed = resume_file.load(last)
    assert resumed.progress["step"] > killed.progress["step"]
    chars = len(text.read_text())
    train_chars = chars - round(chars * 0.1)
    assert resumed.progress["chars_seen"] >= killed.progress["chars_seen"] + 0.5 * train_chars
    assert resumed.progress["elapsed_s"] > killed.progress["elapsed_s"]
    assert ckpt_io.load(out).progress["step"] == resumed.progress["step"]
    assert not list(tmp_path.glob("*.tmp"))


# --- the GPU's random state -----------------------------------------------------------------------------


def test_the_gpus_random_state_goes_into_the_resume_file_and_comes_back(periodic_corpus, tmp_path):
    # No GPU here: the trainer is told its device is a GPU, and a CPU generator stands in for the model's
    # generator of dropout masks on it (the run's own; torch's process-wide ones are never saved or set).
    out = tmp_path / "m.safetensors"
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, max_steps=5), out=out)
    trainer.device = torch.device("cuda", 0)
    trainer.model.generator.manual_seed(42)
    torch.empty(7).uniform_(generator=trainer.model.generator)   # a state no fresh generator has
    gpu_state = trainer.model.generator.get_state()
    trainer.save_resume()
    saved = resume_file.load(last_path_for(out))
    torch.testing.assert_close(saved.rng["ranks"][0]["cuda"], gpu_state)
    assert "torch" not in saved.rng["ranks"][0]
    again = Trainer(periodic_corpus, *configs(periodic_corpus, max_steps=5))
    again.device = torch.device("cuda", 0)
    again.files.restore(again, saved)
    torch.testing.assert_close(again.model.generator.get_state(), gpu_state)


# --- out of memory --------------------------------------------------------------------------------------


def step_runs_out(error: RuntimeError):
    def step(self, fraction=None):
        raise error
    return step


@pytest.mark.parametrize("error, where", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "the GPU"),
    (torch.OutOfMemoryError("MPS backend out of memory (MPS allocated: 8.00 GB)"), "Apple's GPU"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"), "the machine"),
])
def test_running_out_of_memory_is_one_line_naming_what_to_lower(tmp_path, charlm_here, monkeypatch, error, where):
    monkeypatch.setattr(Trainer, "step", step_runs_out(error))
    text = tmp_path / "cat.txt"
    text.write_text(PERIODIC_TEXT)
    run = charlm_here("train", text, "--preset", "tiny", "--batch-size", "16", "--quiet", "--out",
                      tmp_path / "m.safetensors")
    # The untrained model's evaluation (step 0) is reported before the first step runs out: the header, its
    # line, then the error as one line, with no traceback.
    assert run.returncode == 2 and "Traceback" not in run.stderr and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("training tiny on cat.txt") and lines[1].startswith("computing in")
    assert " step 0 epoch 0.00 loss - val " in lines[2]
    assert lines[3].startswith("error: ")
    for word in (f"{where} ran out of memory", "--batch-size (now 16)", "--seq-len (now 64)", "--hidden (now 128)"):
        assert word in lines[3], lines[3]


def test_the_app_gets_out_of_memory_as_a_message_and_other_errors_as_they_are(periodic_corpus, monkeypatch):
    monkeypatch.setattr(Trainer, "step", step_runs_out(torch.cuda.OutOfMemoryError("CUDA out of memory")))
    with pytest.raises(OutOfMemory, match="the GPU ran out of memory training batches of 8 x 16 characters with "
                                          "1 x LSTM\\(32\\); lower the batch size, the sequence length or the hidden"):
        train(periodic_corpus, *configs(periodic_corpus, max_steps=5))
    assert issubclass(OutOfMemory, ValueError)   # charlm.train.jobs shows a ValueError's message on the Train page
    monkeypatch.setattr(Trainer, "step", step_runs_out(RuntimeError("a bug, not memory")))
    with pytest.raises(RuntimeError, match="a bug, not memory"):
        train(periodic_corpus, *configs(periodic_corpus, max_steps=5))


def test_by_default_the_resume_file_is_written_at_least_once_a_minute():
    assert train_module.SAVE_EVERY_S == 60.0
    assert Trainer.__init__.__kwdefaults__["save_every_s"] == train.__kwdefaults__["save_every_s"] == 60.0
    assert build_parser().parse_args(["train", "x.txt"]).save_every is None   # None: the trainer's default


def test_a_negative_save_interval_is_refused(charlm_here, tmp_path):
    text = tmp_path / "cat.txt"
    text.write_text(PERIODIC_TEXT)
    assert_clean_error(charlm_here("train", text, "--save-every", "-1"), "--save-every must be 0 or more")
