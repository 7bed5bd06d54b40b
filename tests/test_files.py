"""charlm.files: the one atomic write, its streamed form, and the sweep of what a killed write left."""

import pytest

from charlm import files


def test_a_streamed_write_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.writing_atomically(target) as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]   # the temporary went with the failure
    with files.writing_atomically(target) as f:
        f.write(b"new ")
        f.write(b"whole")
    assert target.read_bytes() == b"new whole"


def test_the_sweep_removes_only_this_files_temporaries(tmp_path):
    target = tmp_path / "a[1].pt"   # a glob character in the name matches only itself
    kept = [tmp_path / "a1.pt.x.tmp", tmp_path / "b.pt.x.tmp", tmp_path / "a[1].pt"]
    stale = [tmp_path / "a[1].pt.abc123.tmp"]
    for path in kept + stale:
        path.write_bytes(b"")
    files.sweep_stale(target)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_the_writability_probe_leaves_nothing(tmp_path):
    files.check_writable(tmp_path / "new" / "model.pt")
    assert list((tmp_path / "new").iterdir()) == []
