"""Tests for training under torchrun (charlm.train.distributed, the trainer's shared decisions, batches split by rows):
two processes on Gloo train the model one process trains, rank 0 alone speaks and writes, a resume goes on
with the same batches whatever the number of processes; and the GPU path's logic, on this CPU.

The torchrun runs start real processes (`python -m torch.distributed.run --standalone`), a few seconds each;
they share one module fixture.
"""

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm.train import resume as resume_file
from charlm.train.batches import BatchStream, pinned, rank_rows
from charlm.cli.main import main
from charlm.nn.device import pick_device
from charlm.train.distributed import Group
from charlm.train.trainer import DIVERGED, STOPPED, Trainer

from helpers import configs, made_up_text

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "CHARLM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
# tiny, made smaller; batch 7 does not split evenly over 2 processes (4 rows and 3), on purpose. In fp32: the runs
# are compared step for step, and the bf16 probe's choice for so small a model is a matter of timing, which a busy
# machine can tip one way in one run and the other way in the next.
RUN = ["--preset", "tiny", "--hidden", "32", "--embed", "16", "--batch-size", "7", "--seq-len", "32", "--device",
       "cpu", "--fp32"]


def torchrun(*args, processes: int = 2) -> subprocess.CompletedProcess:
    """torchrun --standalone --nproc_per_node=N -m charlm ARGS, as a person runs it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "charlm", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)


def in_process(*args) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHARLM_THREADS", "1")
        return main([str(a) for a in args])


def unigram_entropy(text: str) -> float:
    counts = np.array(list(Counter(text).values()), dtype=np.float64)
    probs = counts / counts.sum()
    return float(-(probs * np.log(probs)).sum())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One text trained for one pass by one process and by two (torchrun), then each resumed for half a pass
    more by the other number of processes, and by the same."""
    folder = tmp_path_factory.mktemp("ddp")
    text = folder / "words.txt"
    text.write_text(made_up_text(40_000), encoding="utf-8")
    out = {name: folder / f"{name}.safetensors" for name in ("one", "two", "two_then_one", "one_then_two", "one_then_one")}
    assert in_process("train", text, *RUN, "--epochs", "1", "--seed", "3", "--out", out["one"]) == 0
    two = torchrun("train", text, *RUN, "--epochs", "1", "--seed", "3", "--out", out["two"])
    assert two.returncode == 0, two.stderr
    last = {name: path.with_name(path.stem + ".last.pt") for name, path in out.items()}
    assert in_process("train", text, "--resume", last["two"], "--epochs", "0.5", "--out", out["two_then_one"]) == 0
    resumed = torchrun("train", text, "--resume", last["one"], "--epochs", "0.5", "--out", out["one_then_two"])
    assert resumed.returncode == 0, resumed.stderr
    assert in_process("train", text, "--resume", last["one"], "--epochs", "0.5", "--out", out["one_then_one"]) == 0
    return {"folder": folder, "text": text, "out": out, "two": two, "resumed": resumed,
            "last": {name: resume_file.load(path) for name, path in last.items()}}


def assert_same_run(a: ckpt_io.Checkpoint, b: ckpt_io.Checkpoint):
    """The same steps over the same batches: counters and positions equal, weights and carried state equal
    but for the order in which floating-point sums were added up."""
    assert {k: a.progress[k] for k in ("step", "chars_seen", "position")} == \
        {k: b.progress[k] for k in ("step", "chars_seen", "position")}
    for name in a.state_dict:
        np.testing.assert_allclose(a.state_dict[name], b.state_dict[name], rtol=1e-4, atol=2e-5, err_msg=name)
    for k in (0, 1):
        torch.testing.assert_close(a.carry[k], b.carry[k], rtol=1e-4, atol=2e-5)


# --- two processes, one model ------------------------------------------------------------------------


@pytest.mark.slow   # the runs fixture trains by one process and by two under torchrun (about 16 s)
def test_two_processes_train_the_model_one_process_trains_with_the_same_batches(runs):
    one, two = runs["last"]["one"], runs["last"]["two"]
    assert two.progress["step"] > 100
    assert_same_run(one, two)
    assert two.carry[0].shape[1] == 7                     # every row of the global batch, gathered from both
    assert two.info["processes"] == 2 and "processes" not in one.info
    text = runs["text"].read_text()
    assert two.best_val_loss < 0.5 * unigram_entropy(text)   # it learned: well below where a model starts
    assert two.best_val_loss == pytest.approx(one.best_val_loss, rel=1e-4)


@pytest.mark.slow   # the runs fixture trains by one process and by two under torchrun (about 16 s)
def test_rank_zero_alone_speaks_and_writes_one_checkpoint(runs):
    two = runs["two"]
    model = runs["out"]["two"]
    assert two.stdout == f"checkpoint: {model}\n"             # once: the other process prints nothing
    assert two.stderr.count("training tiny on words.txt (40,") == 1
    assert "on 2 processes, each on CPU (1 thread)" in two.stderr
    assert "Traceback" not in two.stderr and "Warning" not in two.stderr
    written = sorted(path.name for path in runs["folder"].iterdir() if path.name.startswith("two."))
    assert written == ["two.last.pt", "two.safetensors"]
    assert len(list(runs["folder"].glob("words.txt.*.corpus"))) == 1   # the text, encoded once for every run
    assert not list(runs["folder"].glob("*.tmp"))


@pytest.mark.slow   # the runs fixture trains by one process and by two under torchrun (about 16 s)
def test_the_model_two_processes_wrote_loads_writes_and_evaluates(runs, capsys):
    model = runs["out"]["two"]
    saved = ckpt_io.load(model)                                 # the model file the app and the CLI load
    assert saved.preset == "tiny" and saved.model_config["hidden_size"] == 32
    assert main(["generate", str(model), "--length", "40", "--seed", "1", "--prime", "the "]) == 0
    written = capsys.readouterr().out
    assert len(written) == 41 and set(written[:-1]) <= set(saved.vocab)
    assert main(["evaluate", str(model), str(runs["text"])]) == 0
    nats = float(capsys.readouterr().out.split()[0])
    assert nats < 0.5 * unigram_entropy(runs["text"].read_text())


@pytest.mark.slow   # the runs fixture trains by one process and by two under torchrun (about 16 s)
def test_a_resume_goes_on_with_the_same_batches_whatever_the_number_of_processes(runs):
    last = runs["last"]
    assert runs["resumed"].stdout == f"checkpoint: {runs['out']['one_then_two']}\n"
    assert last["one_then_one"].progress["step"] > last["one"].progress["step"]
    # one pass by two processes, then half a pass by one; one pass by one, then half a pass by two: one run.
    assert_same_run(last["two_then_one"], last["one_then_one"])
    assert_same_run(last["one_then_two"], last["one_then_one"])
    assert len(last["one_then_two"].rng["ranks"]) == 2 and len(last["two_then_one"].rng["ranks"]) == 1


# --- the rows of a batch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, world_size", [(8, 1), (8, 2), (7, 2), (64, 3), (5, 5), (130, 8)])
def test_each_process_takes_a_contiguous_block_of_rows_and_together_they_take_every_row_once(rows, world_size):
    blocks = [rank_rows(rows, rank, world_size) for rank in range(world_size)]
    assert [i for block in blocks for i in range(rows)[block]] == list(range(rows))   # in rank order, once each
    sizes = [block.stop - block.start for block in blocks]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_a_rank_that_is_not_one_of_the_processes_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not one of the 2 processes"):
        rank_rows(8, 2, 2)


@pytest.mark.parametrize("preset", ["tiny", "seed-2017"])   # contiguous streams; random windows
def test_the_rows_each_process_reads_are_its_rows_of_the_batch_one_process_reads(periodic_corpus, preset):
    _, cfg = configs(periodic_corpus, preset, seq_len=64, batch_size=7, seed=9)
    train_ids, _ = periodic_corpus.split()

    def stream(rank, world_size):
        return BatchStream(train_ids, cfg, torch.Generator().manual_seed(9), rank=rank, world_size=world_size)

    alone, pair, triple = stream(0, 1), [stream(r, 2) for r in range(2)], [stream(r, 3) for r in range(3)]
    for _ in range(12):   # past the end of an epoch: the new epoch's offset is the same for every process
        x, y, fresh = alone.next()
        for group in (pair, triple):
            parts = [s.next() for s in group]
            torch.testing.assert_close(torch.cat([p[0] for p in parts]), x, rtol=0, atol=0)
            torch.testing.assert_close(torch.cat([p[1] for p in parts]), y, rtol=0, atol=0)
            assert [p[2] for p in parts] == [fresh] * len(group)
            assert [p[0].shape[0] for p in parts] == [len(range(7)[rank_rows(7, r, len(group))]) for r in range(len(group))]
    assert pair[1].position() == triple[2].position() == alone.position()
    assert alone.epoch_index >= 1 or not alone.contiguous   # the streams did cross into a second epoch


# --- the decisions, rank 0's for every process ---------------------------------------------------------


class SecondProcess(Group):
    """Rank 1 of 2 without a process group: what rank 0 'broadcasts' is given, the other rank is a copy."""

    def __init__(self, rank0_says):
        super().__init__(rank=1, world_size=2, local_rank=1, local_world_size=2)
        object.__setattr__(self, "rank0_says", rank0_says)
        object.__setattr__(self, "shared", [])

    def share(self, values):
        self.shared.append(list(values))
        return list(self.rank0_says)

    def total(self, value):
        return 2 * value

    def gather(self, obj):
        return [obj, obj]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("rank0_says, expected", [
    ([1, 0, 0, 0.40, 1], (True, False, False, 0.40, STOPPED)),      # stopped by its Ctrl-C
    ([1, 0, 0, 0.70, 2], (True, False, False, 0.70, DIVERGED)),
    ([0, 1, 1, 0.25, 0], (False, True, True, 0.25, None)),
])
def test_a_process_other_than_rank_zero_follows_rank_zeros_decisions_not_its_own(periodic_corpus, rank0_says,
                                                                                  expected):
    clock = FakeClock()
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, minutes=1.0, warmup_steps=0), clock=clock, out=None)
    trainer.group = SecondProcess(rank0_says)
    clock.now += 6.0                    # its own clock: a tenth of the budget, no evaluation due, no stop
    stop, evaluate, save, fraction = trainer.decide(stepped=True)
    assert (stop, evaluate, save, fraction, trainer.state.message) == expected
    assert trainer.state.stopped == expected[0]
    assert trainer.group.shared == [[0.0] * 5]   # it offered nothing of its own
    if not stop:                        # the learning rate follows rank 0's place in the budget
        trainer.step(fraction)
        assert trainer.state.lr == pytest.approx(trainer.cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.25))))


def test_the_loss_reported_is_each_process_share_of_the_batch_mean_summed(periodic_corpus):
    trainer = Trainer(periodic_corpus, *configs(periodic_corpus, batch_size=7, max_steps=5), out=None)
    trainer.group = SecondProcess([0, 0, 0, 0.0, 0])
    trainer.batches.rank, trainer.batches.world_size = 1, 2
    seen, real_loss = [], trainer._loss

    def loss(x, y):
        mean, state = real_loss(x, y)
        seen.append((x.shape[0], mean.item()))
        return mean, state

    trainer._loss = loss
    assert trainer.step()
    rows, mean = seen[0]
    assert rows == 4                       # rows 3-6 of 7; rank 0 has rows 0-2
    # Its mean weighted by its 4/7 of the rows, added to the other's (here: a copy of it).
    assert trainer.state.smoothed == pytest.approx(2 * mean * 4 / 7, rel=1e-6)
    assert trainer.state.chars_seen == 7 * trainer.cfg.seq_len   # the whole batch's targets, not this process's


# --- torchrun's variables ----------------------------------------------------------------------------


def test_without_torchrun_a_run_is_one_process_and_sharing_costs_nothing():
    group = Group.from_environment({})
    assert not group.active and group.is_main and group.world_size == 1
    assert group.share([1, 0.5]) == [1, 0.5] and group.total(2.5) == 2.5 and group.gather("x") == ["x"]
    assert Group.from_environment({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) == Group()


def test_torchrun_variables_are_read_and_nonsense_is_refused_in_one_line():
    group = Group.from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (group.rank, group.world_size, group.local_rank, group.local_world_size) == (3, 4, 1, 2)
    assert group.active and not group.is_main
    with pytest.raises(ValueError, match="RANK is 'two', not a whole number"):
        Group.from_environment({"WORLD_SIZE": "2", "RANK": "two", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match="do not fit together"):
        Group.from_environment({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"})


def test_each_process_trains_on_its_own_gpu_and_apple_gpus_are_refused_under_torchrun(monkeypatch):
    group = Group(rank=3, world_size=4, local_rank=1, local_world_size=2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert group.place(torch.device("cuda")) == torch.device("cuda", 1)
    assert group.place(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="at most the number of GPUs"):
        group.place(torch.device("cuda"))
    with pytest.raises(ValueError, match="not mps"):
        group.place(torch.device("mps"))
    assert Group().place(torch.device("cuda")) == torch.device("cuda")   # one process: the device as picked


# --- the GPU path, its logic on this CPU ------------------------------------------------------------------


def test_auto_picks_a_cuda_gpu_then_apples_gpu_then_the_cpu(monkeypatch):
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        assert pick_device("auto").type == expected


def test_batches_bound_for_a_gpu_are_pinned_and_others_are_left_as_they_are(monkeypatch):
    batch = torch.zeros(2, 3, dtype=torch.long)
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append(self) or self)
    assert pinned(batch, torch.device("cpu")) is batch and calls == []
    assert pinned(batch, torch.device("cuda", 0)) is batch and calls == [batch]
