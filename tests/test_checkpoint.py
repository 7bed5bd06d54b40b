"""Tests for charlm.modelfile.checkpoint: the round trip, atomic writes, and refusing every file that is not ours."""

import hashlib
import pathlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from charlm.modelfile import checkpoint as ckpt_io
from charlm import files
from charlm.modelfile import format as modelfile
from charlm.modelfile.checkpoint import Checkpoint, CheckpointError
from charlm.nn.model import CharLSTM
from charlm.train import resume as resume_file


class CreatesAFile:
    """A pickled object that, when unpickled by an unsafe loader, creates `marker`."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def save_payload(payload, path: pathlib.Path) -> pathlib.Path:
    torch.save(payload, path)
    return path


def test_round_trip_keeps_weights_vocab_config_and_history(trained, tmp_path):
    original = trained.checkpoint
    loaded = ckpt_io.load(ckpt_io.save(original, tmp_path / "copy.pt"))
    assert loaded.vocab == original.vocab == trained.corpus.vocab.to_list()
    assert loaded.model_config == original.model_config
    assert loaded.train_config == original.train_config
    assert loaded.history == original.history and len(loaded.history) >= 1
    assert loaded.progress == original.progress
    assert (loaded.preset, loaded.best_val_loss, loaded.window, loaded.info) == \
           (original.preset, original.best_val_loss, original.window, original.info)
    assert loaded.state_dict.keys() == original.state_dict.keys()
    for name, tensor in original.state_dict.items():
        assert np.array_equal(loaded.state_dict[name], np.asarray(tensor)), name


def test_a_checkpoint_gives_its_configs_checked(trained):
    ckpt = trained.checkpoint
    assert ckpt.model_cfg() == trained.model.config
    assert ckpt.train_cfg().to_dict() == ckpt.train_config
    # A file from before rereads_window was recorded: its window says whether it re-reads one.
    old = replace(ckpt, train_config={k: v for k, v in ckpt.train_config.items() if k != "rereads_window"}, window=64)
    assert old.train_cfg().rereads_window is True
    with pytest.raises(ValueError, match="hidden_size"):
        replace(ckpt, model_config={**ckpt.model_config, "hidden_size": -1}).model_cfg()


def test_loaded_model_gives_identical_logits(trained, tmp_path):
    path = ckpt_io.save(trained.checkpoint, tmp_path / "copy.pt")
    model = CharLSTM.from_checkpoint(ckpt_io.load(path), "cpu")
    ids = torch.from_numpy(trained.corpus.ids[:50].astype("int64"))[None]
    assert not model.training
    assert torch.equal(model(ids)[0], trained.model(ids)[0])


def test_load_accepts_the_bytes_of_to_bytes(trained):
    data = ckpt_io.to_bytes(trained.checkpoint)
    loaded = ckpt_io.load(data)
    assert loaded.vocab == trained.checkpoint.vocab
    assert np.array_equal(loaded.state_dict["head.weight"], trained.checkpoint.state_dict["head.weight"])


def test_save_replaces_atomically_and_leaves_no_temporary_file(trained, tmp_path):
    path = tmp_path / "model.pt"
    ckpt_io.save(trained.checkpoint, path)
    ckpt_io.save(replace(trained.checkpoint, preset="second"), path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert ckpt_io.load(path).preset == "second"


def test_a_failed_save_keeps_the_old_file_and_cleans_up(trained, tmp_path, monkeypatch):
    path = ckpt_io.save(trained.checkpoint, tmp_path / "model.pt")
    before = path.read_bytes()

    def crash(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt_io.save(replace(trained.checkpoint, preset="lost"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_model_is_saved_as_safetensors_that_the_library_reads_too(trained, tmp_path):
    from safetensors.numpy import load_file

    path = ckpt_io.save(trained.checkpoint, tmp_path / "model.safetensors")
    by_library = load_file(path)
    assert by_library.keys() == trained.checkpoint.state_dict.keys()
    for name, weights in trained.checkpoint.state_dict.items():
        np.testing.assert_array_equal(by_library[name], weights)
    assert ckpt_io.load(path).history == trained.checkpoint.history


def test_a_resume_file_stays_a_torch_archive_with_its_optimizer(trained):
    assert trained.last_path.name == "cat.last.pt" and trained.last_path.read_bytes()[:4] == b"PK\x03\x04"
    assert resume_file.load(trained.last_path).optimizer["state"]


def test_history_keeps_each_evaluations_sample_and_the_corpus_identity(trained):
    ckpt = ckpt_io.load(trained.path)
    assert all(isinstance(row["sample"], str) and row["sample"] for row in ckpt.history)
    assert ckpt.info["corpus"] == "cat.txt" and ckpt.info["corpus_chars"] == len(trained.corpus.text)
    assert ckpt.info["corpus_sha256"] == hashlib.sha256(trained.corpus.text.encode()).hexdigest()
    assert ckpt.info["val_fraction"] == 0.1


def test_a_checkpoint_written_by_earlier_versions_still_loads_and_writes():
    legacy = ckpt_io.load(pathlib.Path(__file__).parent / "data" / "legacy-v1.pt")
    assert legacy.preset == "tiny" and legacy.model_config["hidden_size"] == 32
    model = CharLSTM.from_checkpoint(legacy)
    ids = torch.tensor([[legacy.vocab.index(c) for c in "the cat sat on the "]])
    assert legacy.vocab[int(model(ids)[0][0, -1].argmax())] == "m"    # it learnt "the mat"


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = save_payload({"format": "charlm-checkpoint", "version": 1, "model_config": CreatesAFile(marker)},
                        tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        ckpt_io.load(path)
    with pytest.raises(CheckpointError, match="could run code"):
        ckpt_io.load(path.read_bytes())
    assert not marker.exists()


def test_the_malicious_file_would_run_code_in_an_unsafe_loader(tmp_path):
    # The control for the test above: the payload is live, so its refusal is what kept the marker away.
    marker = tmp_path / "pwned"
    path = save_payload(CreatesAFile(marker), tmp_path / "evil.pt")
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_truncated_file_is_refused(trained, tmp_path):
    data = ckpt_io.to_bytes(trained.checkpoint)
    for cut in (len(data) // 2, len(data) - 10, 100):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            ckpt_io.load(path)


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are my notes, not a model\n" * 20)
    with pytest.raises(CheckpointError, match="not a charlm model file"):
        ckpt_io.load(path)


def test_foreign_pytorch_file_is_refused(tmp_path):
    path = save_payload({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="its format field is missing"):
        ckpt_io.load(path)
    state_dict_only = save_payload(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="its format field is missing"):
        ckpt_io.load(state_dict_only)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        ckpt_io.load(path)
    with pytest.raises(CheckpointError, match="empty"):
        ckpt_io.load(b"")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no model file at"):
        ckpt_io.load(tmp_path / "nowhere.pt")


def test_newer_format_version_is_refused(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(modelfile, "VERSION", modelfile.VERSION + 1)
    path = ckpt_io.save(trained.checkpoint, tmp_path / "future.pt")
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="newer charlm"):
        ckpt_io.load(path)


def test_vocabulary_that_does_not_fit_the_model_is_refused(trained, tmp_path):
    damaged = replace(trained.checkpoint, vocab=trained.checkpoint.vocab[:-1])
    with pytest.raises(CheckpointError, match="vocabulary is damaged or does not match its model"):
        ckpt_io.load(ckpt_io.save(damaged, tmp_path / "damaged.pt"))


def test_bad_model_config_is_refused(trained, tmp_path):
    damaged = replace(trained.checkpoint, model_config={**trained.checkpoint.model_config, "dropout": 3.0})
    with pytest.raises(CheckpointError, match=r"dropout must be in \[0, 1\)"):
        ckpt_io.load(ckpt_io.save(damaged, tmp_path / "damaged.pt"))


def test_weights_that_do_not_fit_the_config_are_refused_when_loading(trained, tmp_path):
    wrong = {**trained.checkpoint.model_config, "hidden_size": 8}
    path = ckpt_io.save(replace(trained.checkpoint, model_config=wrong), tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="lstm.weight_ih_l0 has the wrong shape"):
        ckpt_io.load(path)


def test_best_checkpoint_is_small_and_the_last_one_holds_the_resume_state(trained):
    best, last = ckpt_io.load(trained.path), resume_file.load(trained.last_path)
    assert best.optimizer is None and best.rng is None
    assert last.optimizer is not None and last.optimizer["state"]
    assert isinstance(last.rng["ranks"][0]["torch"], torch.Tensor) and isinstance(last.rng["batches"], torch.Tensor)
    assert set(last.progress["position"]) == {"epoch_index", "chunk_index", "offset"}
    assert last.progress["step"] == 150
    h, c = last.carry
    assert h.shape == c.shape == (1, 32, 128)                 # tiny: 1 layer x 32 streams x 128 units


def test_checkpoint_is_plain_data(trained):
    # Nothing but containers, numbers, strings and tensors: what weights_only=True can read.
    allowed = (dict, list, tuple, str, int, float, bool, type(None), torch.Tensor, np.ndarray)

    def walk(value):
        assert isinstance(value, allowed), type(value)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    last = resume_file.load(trained.last_path)
    for name in Checkpoint.__dataclass_fields__:
        walk(getattr(last, name))


@pytest.mark.parametrize("field, bad, match", [
    ("model_config", [1, 2], "the model configuration is not a table of settings"),
    ("state_dict", [1], "its weights do not match its configuration"),
    ("vocab", "abc", "its vocabulary is damaged"),
    ("window", "x", "its window is not a positive whole number")])
def test_parts_of_the_wrong_type_are_refused_with_a_message(trained, tmp_path, field, bad, match):
    damaged = replace(trained.checkpoint, **{field: bad})
    path = ckpt_io.save(damaged, tmp_path / "damaged.pt") if field != "state_dict" else None
    if path is None:   # save() copies the state_dict's tensors, so write this one by hand
        payload = {"format": ckpt_io.FORMAT, "version": ckpt_io.VERSION,
                   **{k: getattr(trained.checkpoint, k) for k in Checkpoint.__dataclass_fields__}, field: bad}
        path = tmp_path / "damaged.pt"
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match=match):
        ckpt_io.load(path)
