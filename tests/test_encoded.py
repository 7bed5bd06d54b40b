"""Tests for charlm.text.encoded: a corpus of one file, several or a folder, encoded once into a cache beside the
run and memory-mapped; it is the same text a corpus in memory is, found again without decoding, whole or absent."""

import hashlib

import numpy as np
import pytest
from safetensors import safe_open

from charlm.modelfile import checkpoint as ckpt_io
from charlm.text import encoded
from charlm.cli.main import main
from charlm.text.corpus import Vocab, load_corpus
from charlm.text.encoded import SEPARATOR, EncodedCorpus, cache_path, corpus_files, open_cache, prepare
from charlm.text.read import CorpusError
from charlm.train.trainer import train

from helpers import configs, made_up_text


def cached(files, folder, name="corpus", **kwargs) -> EncodedCorpus:
    path = prepare(files, cache_path(files, folder, name), name, **kwargs)
    return open_cache(path)


@pytest.fixture
def texts(tmp_path):
    """A folder of three files (one in a subfolder) and a hidden one, each text distinct."""
    folder = tmp_path / "books"
    (folder / "later").mkdir(parents=True)
    parts = {"b.txt": made_up_text(1_500, seed=2), "a.txt": made_up_text(1_200, seed=1),
             "later/c.txt": "Zebra QUIZ, with capitals and digits 0123.\n" * 30}
    for name, text in parts.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / ".notes.txt").write_text("hidden files are not part of the corpus\n" * 40)
    return folder, parts


# --- the same text as in memory --------------------------------------------------------------------


def test_a_cached_file_has_the_ids_vocabulary_notice_and_identity_of_the_file_read_into_memory(tmp_path):
    # cp1252 bytes: the text is found to be not UTF-8, and the notice says so in both paths.
    text = ("Café déjà vu — naïve “quotes” and plain words. " * 60).encode("cp1252")
    file = tmp_path / "cafe.txt"
    file.write_bytes(text)
    in_memory = load_corpus(text, name="cafe.txt")
    corpus = cached([file], tmp_path, "cafe.txt")
    assert corpus.vocab == in_memory.vocab
    np.testing.assert_array_equal(corpus.ids, in_memory.ids)
    assert corpus.text_sha256 == hashlib.sha256(in_memory.text.encode()).hexdigest()
    assert corpus.encoding == in_memory.encoding == "cp1252"
    assert corpus.notice == in_memory.notice and "Windows-1252" in corpus.notice
    assert [a.tolist() for a in corpus.split()] == [a.tolist() for a in in_memory.split()]


def test_a_folder_is_its_files_in_sorted_path_order_with_a_blank_line_between_them(tmp_path, texts):
    folder, parts = texts
    corpus = cached(corpus_files([folder]), tmp_path)
    joined = SEPARATOR.join([parts["a.txt"], parts["b.txt"], parts["later/c.txt"]])   # .notes.txt left out
    assert corpus.vocab.decode(corpus.ids) == joined
    assert corpus.text_sha256 == hashlib.sha256(joined.encode()).hexdigest()
    assert corpus.vocab == load_corpus(joined).vocab
    # The same files named one by one, in another order (and one twice), are the same corpus.
    given = [folder / "later" / "c.txt", folder / "b.txt", folder / "a.txt", folder / "b.txt"]
    assert corpus_files(given) == corpus_files([folder])
    assert cache_path(corpus_files(given), tmp_path, "corpus") == corpus.path


@pytest.mark.slow
def test_training_on_a_cached_corpus_is_training_on_the_same_text_in_memory(tmp_path):
    text = made_up_text(6_000)
    file = tmp_path / "words.txt"
    file.write_text(text)
    in_memory = load_corpus(text, name="words.txt")
    corpus = cached([file], tmp_path, "words.txt")
    settings = dict(max_steps=12, seq_len=32, seed=4)
    a = train(in_memory, *configs(in_memory, **settings), out=tmp_path / "memory.safetensors")
    b = train(corpus, *configs(corpus, **settings), out=tmp_path / "mapped.safetensors")
    assert b.final_val_loss == pytest.approx(a.final_val_loss, rel=1e-6)
    saved_a, saved_b = ckpt_io.load(a.best_path), ckpt_io.load(b.best_path)
    assert {k: saved_b.info[k] for k in ("corpus", "corpus_sha256", "corpus_chars")} == \
        {k: saved_a.info[k] for k in ("corpus", "corpus_sha256", "corpus_chars")}
    for name in saved_a.state_dict:
        np.testing.assert_allclose(saved_b.state_dict[name], saved_a.state_dict[name], rtol=1e-5, atol=1e-6)


# --- the cache file ---------------------------------------------------------------------------------


def test_the_cache_is_a_safetensors_file_mapped_read_only(tmp_path, texts):
    folder, _ = texts
    corpus = cached(corpus_files([folder]), tmp_path)
    assert isinstance(corpus.ids, np.memmap) and not corpus.ids.flags.writeable
    with safe_open(str(corpus.path), "numpy") as f:   # another program reads it with the safetensors library
        np.testing.assert_array_equal(f.get_tensor("ids"), corpus.ids)
        assert '"vocab"' in f.metadata()["charlm"]


def test_the_cache_is_found_again_without_decoding_and_a_changed_text_gets_its_own(tmp_path, texts, monkeypatch):
    folder, _ = texts
    files = corpus_files([folder])
    first = cached(files, tmp_path)

    def encode_again(*args, **kwargs):
        raise AssertionError("encoded again")

    monkeypatch.setattr(encoded, "encode", encode_again)
    monkeypatch.setattr(encoded, "decode_bytes", encode_again)
    assert cached(files, tmp_path).path == first.path
    monkeypatch.undo()
    with open(folder / "b.txt", "a") as f:
        f.write("one more line.\n")
    changed = cached(files, tmp_path)
    assert changed.path != first.path and len(changed.ids) == len(first.ids) + len("one more line.\n")


def test_a_damaged_cache_is_refused_in_one_line_and_encoded_again(tmp_path, texts):
    folder, _ = texts
    files = corpus_files([folder])
    corpus = cached(files, tmp_path)
    whole = corpus.path.read_bytes()
    corpus.path.write_bytes(whole[:-10])                          # cut short
    with pytest.raises(CorpusError, match="damaged; delete it and run again"):
        open_cache(corpus.path)
    assert cached(files, tmp_path).path.read_bytes() == whole     # made again
    header_size = int.from_bytes(whole[:8], "little")
    corpus.path.write_bytes(whole[:8 + header_size] + bytes([200]) + whole[9 + header_size:])   # an id past the vocabulary
    with pytest.raises(CorpusError, match="damaged"):
        encoded.check(open_cache(corpus.path))
    assert cached(files, tmp_path).path.read_bytes() == whole


def test_encoding_reports_its_progress_and_an_interrupted_one_leaves_no_file(tmp_path, texts, monkeypatch):
    folder, _ = texts
    files = corpus_files([folder])
    monkeypatch.setattr(encoded, "_CHUNK_CHARS", 500)   # several chunks per file
    seen = []
    corpus = cached(files, tmp_path, on_progress=lambda what, fraction: seen.append((what, fraction)))
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) > 10
    assert {what.split()[0] for what, _ in seen} == {"counting", "encoding"}
    corpus.path.unlink()
    real_encode, calls = Vocab.encode, [0]

    def interrupted(self, text):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt   # Ctrl-C (or a crash) halfway through writing the ids
        return real_encode(self, text)

    monkeypatch.setattr(Vocab, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached(files, tmp_path)
    assert list(tmp_path.glob("*.corpus*")) == []   # neither the cache nor its temporary


@pytest.mark.parametrize("make, words", [
    (lambda folder: (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000)), ["photo.txt", "PNG image"]),
    # An empty file is skipped with a note (test_cli_hostile); one holding only blank lines is still refused.
    (lambda folder: (folder / "blank.txt").write_text("\n \n"), ["blank.txt", "no text"]),
])
def test_a_file_of_a_corpus_that_is_not_text_is_refused_by_name(tmp_path, texts, make, words):
    folder, _ = texts
    make(folder)
    with pytest.raises(CorpusError) as refused:
        cached(corpus_files([folder]), tmp_path)
    for word in words:
        assert word in str(refused.value)


def test_a_missing_path_and_an_empty_folder_are_refused(tmp_path):
    with pytest.raises(CorpusError, match="no such file or folder"):
        corpus_files([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no files"):
        corpus_files([tmp_path / "empty"])


# --- the command line -------------------------------------------------------------------------------


def test_train_on_a_folder_encodes_it_beside_the_run_and_the_model_knows_the_joined_text(
        tmp_path, texts, capsys, monkeypatch):
    monkeypatch.setenv("CHARLM_THREADS", "1")
    folder, parts = texts
    out = tmp_path / "runs" / "books.safetensors"
    args = ["train", str(folder), "--preset", "tiny", "--hidden", "32", "--epochs", "0.3", "--device", "cpu",
            "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    caches = list(out.parent.glob("books.*.corpus"))
    assert len(caches) == 1 and f"encoding books once, into {caches[0]}" in err
    assert "training tiny on books (" in err
    joined = SEPARATOR.join([parts["a.txt"], parts["b.txt"], parts["later/c.txt"]])
    info = ckpt_io.load(out).info
    assert info["corpus_sha256"] == hashlib.sha256(joined.encode()).hexdigest()
    assert info["corpus_chars"] == len(joined)
    assert main(args) == 0                                    # a second run finds the cache
    assert "encoding" not in capsys.readouterr().err


def test_a_model_starts_a_new_run_on_a_cached_corpus(tmp_path, texts, trained, capsys, monkeypatch):
    monkeypatch.setenv("CHARLM_THREADS", "1")
    folder, _ = texts
    out = tmp_path / "from-cat.safetensors"
    assert main(["train", str(folder), "--init", str(trained.path), "--epochs", "0.1", "--device", "cpu",
                 "--out", str(out)]) == 0
    assert "starting from cat.pt" in capsys.readouterr().err
    saved = ckpt_io.load(out)
    assert saved.vocab[:len(trained.vocab)] == list(trained.vocab.chars) and "Z" in saved.vocab


# --- crafted caches -----------------------------------------------------------------------------------


def crafted_cache(path, vocab: list[str], chars: int = 2_000, **meta) -> None:
    """A cache file as encode writes one, with the metadata given: zeros for ids."""
    dtype = np.dtype(np.uint16 if len(vocab) > 256 else np.uint8)
    fields = {"format": encoded.FORMAT, "version": encoded.VERSION, "name": "crafted", "vocab": vocab, "chars": chars,
              "text_sha256": "0" * 64, "encoding": "utf-8", "notice": None, "files": ["a.txt"],
              "key": path.name.split(".")[-2], **meta}
    path.write_bytes(encoded._header(fields, dtype, chars) + bytes(chars * dtype.itemsize))


def test_a_cache_with_a_vocabulary_over_the_cap_is_refused_and_made_again(tmp_path, texts):
    folder, _ = texts
    files = corpus_files([folder])
    path = cache_path(files, tmp_path, "corpus")
    crafted_cache(path, [chr(0x4E00 + i) for i in range(5_000)])
    with pytest.raises(CorpusError, match="is damaged; delete it and run again"):
        open_cache(path)
    corpus = open_cache(prepare(files, path, "corpus"))
    assert len(corpus.vocab) < 1_024 and corpus.vocab.chars[0] == "\n"   # the files' own text, encoded again


def test_a_cache_named_for_other_files_is_made_again_for_these(tmp_path, texts):
    folder, parts = texts
    files = corpus_files([folder])
    other = tmp_path / "other.txt"
    other.write_text("Quite another text, of other words entirely. " * 60, encoding="utf-8")
    theirs = cached([other], tmp_path, "corpus")
    ours = cache_path(files, tmp_path, "corpus")
    ours.write_bytes(theirs.path.read_bytes())   # the other text's cache under this corpus's name
    corpus = open_cache(prepare(files, ours, "corpus"))
    joined = SEPARATOR.join(parts[name.relative_to(folder).as_posix()] for name in files)
    assert corpus.text_sha256 == hashlib.sha256(joined.encode()).hexdigest() != theirs.text_sha256


@pytest.mark.parametrize("text", ["short text " * 20, "a" * 2000])
def test_a_cache_refuses_a_text_in_the_words_load_corpus_uses(tmp_path, text):
    (tmp_path / "t.txt").write_text(text)
    with pytest.raises(CorpusError) as in_memory:
        load_corpus(text.encode())
    with pytest.raises(CorpusError) as cached:
        encoded.encode([tmp_path / "t.txt"], tmp_path / "t.corpus", "t.txt")
    assert str(cached.value) == str(in_memory.value)
