"""Hostile model files, built on the fly, against the checked reader and the command line.

Every file here is refused before anything big is allocated: the reader checks the archive's table,
then the config (types, signs, caps), then each tensor's shape, type and finiteness. The CLI turns
each refusal into one line on stderr and exit status 2, and its peak memory stays small.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hostile_files as hostile
from charlm.modelfile import checkpoint as ckpt_io
from charlm.modelfile import format as modelfile
from charlm.config import Limits, ModelConfig

REPO = Path(__file__).resolve().parents[1]
CLI_PEAK_MB = 600


@pytest.fixture(scope="module")
def bomb(trained) -> bytes:
    return hostile.zip_bomb(trained.checkpoint)


def refused(data: bytes, match: str, limits: Limits = Limits()) -> str:
    with pytest.raises(modelfile.ModelFileError, match=match) as err:
        modelfile.read(data, limits)
    return str(err.value)


@pytest.mark.slow
def test_the_zip_bomb_is_small_on_disk_and_refused_unopened(bomb):
    assert len(bomb) < 2_000_000                    # ~1000:1: 1.5 GB of zeros in under 2 MB
    refused(bomb, "holds compressed data")


def test_a_compressed_copy_of_a_good_model_is_refused_too(trained):
    payload, storages = hostile._real_parts(trained.checkpoint)
    assert modelfile.read(hostile.torch_archive(payload, storages)).config.hidden_size == 128   # the control
    refused(hostile.torch_archive(payload, storages, deflate_everything=True), "holds compressed data")


def test_stride_zero_tensors_are_refused_before_any_allocation(trained):
    refused(hostile.stride_zero_giant(trained.checkpoint), "repeats its data")
    refused(hostile.stride_zero_within_caps(trained.checkpoint), "repeats its data")


@pytest.mark.parametrize("config, match", [
    ({"embed_dim": -5}, "embed_dim must be at least 1"),
    ({"hidden_size": 128.5}, "hidden_size must be a whole number, not float"),
    ({"num_layers": [1]}, "num_layers must be a whole number, not list"),
    ({"num_layers": True}, "num_layers must be a whole number, not bool"),
    ({"dropout": float("nan")}, "dropout must be a finite number"),
    ({"vocab_size": "11"}, "vocab_size must be a whole number, not str"),
    ({"input_mode": {"a": 1}}, "unknown input mode"),
])
def test_fields_of_the_wrong_type_or_sign_are_refused_by_name(trained, config, match):
    refused(hostile.with_fields(trained.checkpoint, config=config), match)


def test_every_dimension_is_capped_before_the_weights_are_read(trained):
    small = Limits(max_hidden=64, max_layers=1, max_embed=8, max_vocab=5)
    message = refused(ckpt_io.to_bytes(trained.checkpoint), "larger than allowed here", small)
    assert "128 units per layer (the most is 64)" in message
    assert "32 embedding width (the most is 8)" in message
    assert "11 characters in the vocabulary (the most is 5)" in message


def test_an_oversized_embedding_is_refused_by_the_default_caps(trained):
    # A 282 KB file used to become a 213 M-parameter model: now its config is refused as too large.
    stored = {**trained.checkpoint.model_config, "embed_dim": 1_000_000}
    payload, storages = hostile._real_parts(trained.checkpoint)
    payload["model_config"] = stored
    refused(hostile.torch_archive(payload, storages), r"1,000,000 embedding width \(the most is 1,024\)")


def test_nan_weights_are_refused(trained):
    refused(hostile.nan_weights(trained.checkpoint), "head.weight holds NaN or infinite numbers")


def test_weights_that_disagree_with_the_config_are_refused_before_a_model_is_built(trained):
    refused(hostile.with_fields(trained.checkpoint, config={"hidden_size": 8}), "wrong shape")


def test_markdown_in_text_fields_stays_plain_text_one_line(trained):
    data = hostile.with_fields(trained.checkpoint, preset=hostile.MARKDOWN_PRESET + "\n# heading",
                               info={"corpus": "x" * 500})
    meta = modelfile.read(data).meta
    assert meta["preset"] == hostile.MARKDOWN_PRESET + " # heading"     # the newline became a space
    assert meta["info"]["corpus"] == "x" * modelfile.MAX_TEXT


def test_a_pickled_object_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Touch:
        def __reduce__(self):
            return Path.touch, (marker,)

    data = hostile.torch_archive({"format": ckpt_io.FORMAT, "version": 1, "model_config": Touch()}, {})
    refused(data, r"a Python object .* could run code")
    assert not marker.exists()


@pytest.mark.slow
def test_an_archive_table_larger_than_any_model_needs_is_refused(trained):
    payload, storages = hostile._real_parts(trained.checkpoint)
    many = {f"pad{i}": b"" for i in range(40_000)}     # a central directory of ~2 MB
    refused(hostile.torch_archive(payload, {**storages, **many}), "more archive entries")


def test_resume_state_cannot_read_more_than_the_file_holds(trained):
    payload, storages = hostile._real_parts(trained.checkpoint)
    big = hostile._Storage("big", 250_000)
    storages["big"] = np.zeros(250_000, np.float32).tobytes()
    payload["optimizer"] = {"state": [hostile._Tensor(big, (250_000,), (1,)) for _ in range(50)]}
    data = hostile.torch_archive(payload, storages)
    assert ckpt_io.load(data).optimizer is None           # a model to write with never reads it
    with pytest.raises(ckpt_io.CheckpointError, match="more data than the file holds"):
        ckpt_io.load(data, for_resume=True)


def safetensors_with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def last_tensor(header: dict) -> str:
    return max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])


@pytest.mark.parametrize("change, match", [
    (lambda h: h[last_tensor(h)].update(data_offsets=[h[last_tensor(h)]["data_offsets"][0], 10**12]),
     "does not lie where its header says"),
    (lambda h: h[last_tensor(h)].update(shape=[100000, 100000]), "does not lie where its header says"),
    (lambda h: h[last_tensor(h)].update(dtype="F8_E4M3"), "unknown type or shape"),
    (lambda h: h.pop(last_tensor(h)), "its weights do not match its configuration"),
])
def test_a_safetensors_header_that_lies_is_refused_before_reading(trained, change, match):
    data = ckpt_io.to_bytes(trained.checkpoint)
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    if match.startswith("its weights"):   # dropped from the table and from the data: a consistent file
        body = body[:header[last_tensor(header)]["data_offsets"][0]]
    change(header)
    refused(safetensors_with_header(header, body), match)


def test_a_safetensors_header_larger_than_any_model_needs_is_refused():
    refused(struct.pack("<Q", 10**9) + b"{" + b" " * 100, "declares a header of 1,000,000,000 bytes")


def test_a_model_config_is_a_frozen_checked_value():
    with pytest.raises(ValueError, match="hidden_size must be at least 1"):
        ModelConfig(vocab_size=10, hidden_size=0)
    assert ModelConfig(vocab_size=10, hidden_size=4, num_layers=1, embed_dim=3).num_parameters() == \
        10 * 3 + 16 * 3 + 16 * 4 + 16 + 16 + 10 * 4 + 10


# --- the command line, with its peak memory ---------------------------------------------------------

# Runs `python -m charlm ARGS` and, at exit, writes the process's peak resident memory (VmHWM: this
# program's own, unlike a child's ru_maxrss, which starts from the forking parent's size) to a file.
_PEAK_WRAPPER = """
import atexit, runpy, sys
peak_file = sys.argv[1]
def record():
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    open(peak_file, "w").write(status)
atexit.register(record)
sys.argv = ["charlm"] + sys.argv[2:]
runpy.run_module("charlm", run_name="__main__")
"""


def run_peak(*args: str, tmp: Path) -> tuple[int, list[str], float]:
    """Run the CLI; -> (exit status, stderr lines, its peak resident memory in MB)."""
    peak = tmp / "peak_kb"
    done = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(peak), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "CHARLM_THREADS": "1"})
    return done.returncode, done.stderr.splitlines(), int(peak.read_text()) / 1024


HOSTILE = {   # file -> what its one line of refusal says
    "zip bomb": "holds compressed data",
    "stride-0 giant": "repeats its data",
    "negative embed": "embed_dim must be at least 1",
    "fractional hidden": "hidden_size must be a whole number",
    "list layers": "num_layers must be a whole number",
    "hidden 8000": "8,000 units per layer (the most is 4,096)",
    "nan weights": "holds NaN or infinite numbers",
}


@pytest.fixture(scope="module")
def hostile_paths(tmp_path_factory, trained, bomb) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    ckpt = trained.checkpoint
    files = {
        "zip bomb": bomb,
        "stride-0 giant": hostile.stride_zero_giant(ckpt),
        "negative embed": hostile.with_fields(ckpt, config={"embed_dim": -5}),
        "fractional hidden": hostile.with_fields(ckpt, config={"hidden_size": 128.5}),
        "list layers": hostile.with_fields(ckpt, config={"num_layers": [1]}),
        "hidden 8000": hostile.with_fields(ckpt, config={"hidden_size": 8000}),
        "nan weights": hostile.nan_weights(ckpt),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / (name.replace(" ", "-") + ".pt")
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("command", ["info", "generate"])
def test_the_cli_refuses_each_hostile_file_in_one_line_and_little_memory(hostile_paths, tmp_path, name, command):
    status, lines, peak_mb = run_peak(command, str(hostile_paths[name]), tmp=tmp_path)
    assert status == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {hostile_paths[name]}") and HOSTILE[name] in lines[0], lines
    assert peak_mb < CLI_PEAK_MB, f"{name}: {peak_mb:.0f} MB"
