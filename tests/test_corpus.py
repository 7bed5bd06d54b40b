"""Tests for charlm.text.read and charlm.text.corpus: decoding, refusals, the vocabulary, the split and the batches."""

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from charlm.text.corpus import UNKNOWN, CorpusError, Vocab, load_corpus
from charlm.train.batches import random_batch, stream_batches, stream_rows
from charlm.text.read import MIN_CHARS, decode_bytes, read_text

WORDS = "the a river stone light garden walks under over slowly bright café naïve über".split()


def prose(n_chars: int, seed: int = 0) -> str:
    """Made-up sentences of at least n_chars characters, with accents and several lines."""
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < n_chars:
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + ".")
    return "\n".join(lines) + "\n"


TEXT = prose(3_000)


# --- decoding -------------------------------------------------------------------------------


def test_utf8_is_read_without_a_notice():
    text, encoding, notice = decode_bytes(TEXT.encode("utf-8"))
    assert (text, encoding, notice) == (TEXT, "utf-8", None)


def test_utf8_byte_order_mark_is_stripped():
    text, encoding, notice = decode_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    assert text == TEXT
    assert encoding == "utf-8-sig"
    assert notice is None


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(codec):
    bom = "\ufeff".encode(codec)
    data = bom + TEXT.encode(codec)
    text, encoding, notice = decode_bytes(data)
    assert text == TEXT
    assert encoding == codec[:6]  # "utf-16" / "utf-32": the codec that reads the mark itself
    assert data.decode(encoding) == TEXT
    assert notice is None


def test_cp1252_is_read_with_a_notice_to_save_as_utf8():
    original = TEXT + "“Quoted” — and €5.\n"
    text, encoding, notice = decode_bytes(original.encode("cp1252"))
    assert text == original
    assert encoding == "cp1252"
    assert "not UTF-8" in notice and "Windows-1252" in notice and "UTF-8 and try again" in notice


def test_bytes_cp1252_cannot_decode_fall_back_to_latin1():
    # 0x81 is undefined in cp1252 but is a (control) character in Latin-1.
    data = TEXT.encode("latin-1") + b"\x81"
    text, encoding, notice = decode_bytes(data)
    assert encoding == "latin-1"
    assert text == TEXT + "\x81"
    assert "Latin-1" in notice


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\xd8abc", b"\xef\xbb\xbfok \xff\xfe"])
def test_a_byte_order_mark_on_invalid_text_is_refused(data):
    with pytest.raises(CorpusError, match="byte-order mark but is not valid"):
        decode_bytes(data)


def test_newlines_are_normalised_to_unix():
    text, _, _ = decode_bytes(b"one\r\ntwo\rthree\nfour")
    assert text == "one\ntwo\nthree\nfour"


def test_text_is_normalised_to_composed_characters():
    decomposed = "cafe\u0301 nai\u0308ve"
    text, _, _ = decode_bytes(decomposed.encode("utf-8"))
    assert text == "café naïve"
    assert len(text) == 10


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t \r\n", b"\xef\xbb\xbf", "  \n".encode("utf-16")])
def test_empty_or_whitespace_upload_is_refused(data):
    with pytest.raises(CorpusError, match="empty or only whitespace"):
        decode_bytes(data)


@pytest.mark.parametrize(
    "header, kind",
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "gzip"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"\x7fELF\x02\x01\x01\x00", "ELF"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
        (b"Rar!\x1a\x07\x01\x00", "RAR"),
        (b"BZh91AY&SY\x12\x34", "bzip2"),
        (b"\xfd7zXZ\x00\x00\x04", "xz"),
        (b"SQLite format 3\x00\x10\x00", "SQLite"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "Windows executable"),
    ],
)
def test_binary_formats_are_named(header, kind):
    with pytest.raises(CorpusError, match=kind) as refusal:
        decode_bytes(header + bytes(range(256)) * 8)
    assert "not plain text" in str(refusal.value)


def test_pdf_is_named_with_advice_to_export_text():
    with pytest.raises(CorpusError) as refusal:
        decode_bytes(b"%PDF-1.4\n" + TEXT.encode())
    message = str(refusal.value)
    assert message.startswith("This file looks like a PDF document, not plain text.")
    assert ".txt" in message


def test_zip_message_mentions_docx_and_epub():
    with pytest.raises(CorpusError, match="DOCX, EPUB and ODT"):
        decode_bytes(b"PK\x03\x04" + b"\x00" * 100)


def test_text_that_merely_starts_with_mz_is_accepted():
    text, _, _ = decode_bytes(b"MZ is a two-letter code. " + TEXT.encode())
    assert text.startswith("MZ is")


def test_binary_upload_is_refused_with_a_clear_message():
    with pytest.raises(CorpusError, match="binary data.*NUL"):
        decode_bytes(TEXT.encode()[:500] + b"\x00\x01\x02" + TEXT.encode()[500:])


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_read_and_named(codec):
    text, encoding, notice = decode_bytes(TEXT.encode(codec))
    assert text == TEXT
    assert encoding == codec.replace("-", "_")
    assert "without a byte-order mark" in notice


def test_many_control_characters_are_refused_as_binary():
    noise = bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 19, 20, 21]) * 40
    with pytest.raises(CorpusError, match=r"binary data.*control codes"):
        decode_bytes(TEXT.encode()[:2000] + noise)


def test_a_few_control_characters_and_form_feeds_are_accepted():
    data = TEXT.encode() + b"\x0c\x0b\x07\x1b"  # form feed, vertical tab, bell, escape
    text, _, _ = decode_bytes(data)
    assert text.endswith("\x0c\x0b\x07\x1b")


def test_too_short_text_is_refused_with_the_minimum_in_the_message():
    with pytest.raises(CorpusError) as refusal:
        load_corpus("x y " * 78)  # 312 characters
    message = str(refusal.value)
    assert "312 characters" in message
    assert f"{MIN_CHARS:,}" in message


def test_too_long_text_is_refused_with_the_cap_in_the_message():
    with pytest.raises(CorpusError, match="the limit is 2,000 characters"):
        load_corpus(prose(2_500).encode(), max_chars=2_000)


def test_huge_upload_is_refused_before_decoding():
    # Invalid as any text, so only the size check can be what refuses it.
    with pytest.raises(CorpusError, match="9,000 bytes; the limit is 2,000 characters"):
        load_corpus(b"\x00" * 9_000, max_chars=2_000)


def test_a_single_distinct_character_is_refused():
    with pytest.raises(CorpusError, match=r"only one distinct character \('a'\)"):
        load_corpus("a" * 5_000)


def test_pasted_text_gets_the_same_refusals():
    with pytest.raises(CorpusError, match="empty"):
        load_corpus("  \n ")
    with pytest.raises(CorpusError, match="NUL"):
        load_corpus(TEXT + "\x00")


@pytest.mark.parametrize("val_fraction", [0, -0.1, 0.6])
def test_validation_fraction_outside_range_is_refused(val_fraction):
    with pytest.raises(CorpusError, match="validation fraction"):
        load_corpus(TEXT, val_fraction=val_fraction)


# --- vocabulary -----------------------------------------------------------------------------


def test_vocab_round_trips_text():
    vocab = load_corpus(TEXT).vocab
    ids = vocab.encode(TEXT)
    assert vocab.decode(ids) == TEXT
    assert vocab.decode(ids.tolist()) == TEXT
    assert vocab.decode(torch.from_numpy(ids.astype(np.int64))) == TEXT


def test_vocab_is_sorted_by_code_point_and_holds_each_character_once():
    vocab = load_corpus("banana\n" * 200).vocab
    assert vocab.chars == ("\n", "a", "b", "n")
    assert vocab.encode("nab").tolist() == [3, 1, 2]
    assert vocab.unknown_id is None


def test_encoding_a_character_outside_the_vocabulary_names_it():
    vocab = load_corpus("banana" * 200).vocab
    with pytest.raises(CorpusError, match="'z'"):
        vocab.encode("bazaar")


def test_missing_lists_distinct_unseen_characters_sorted():
    vocab = load_corpus("banana" * 200).vocab
    assert vocab.missing("zebra bazaar") == [" ", "e", "r", "z"]
    assert vocab.missing("nab") == []


def test_vocab_survives_a_checkpoint_as_a_plain_list():
    vocab = load_corpus(TEXT).vocab
    as_list = vocab.to_list()
    assert all(type(char) is str for char in as_list)
    restored = Vocab.from_list(as_list)
    assert restored == vocab
    assert restored.encode(TEXT).tolist() == vocab.encode(TEXT).tolist()


def test_vocab_from_list_keeps_the_given_order():
    vocab = Vocab.from_list(["z", "a", UNKNOWN])
    assert vocab.encode("aqz").tolist() == [1, 2, 0]
    assert vocab.decode([0, 1]) == "za"


@pytest.mark.parametrize("chars", [[], ["ab"], [""], ["a", "a"], ["a", 5]])
def test_vocab_from_list_rejects_bad_lists(chars):
    with pytest.raises(CorpusError):
        Vocab.from_list(chars)


def test_decode_rejects_ids_outside_the_vocabulary():
    vocab = load_corpus("abc" * 400).vocab
    with pytest.raises(ValueError):
        vocab.decode([0, 3])
    with pytest.raises(ValueError):
        vocab.decode([-1])


def test_small_vocab_stores_one_byte_per_character():
    corpus = load_corpus(TEXT)
    assert corpus.vocab.dtype == np.uint8
    assert corpus.ids.dtype == np.uint8
    assert corpus.ids.nbytes == len(corpus.text)


def test_vocab_over_256_characters_uses_two_bytes():
    assert Vocab.from_list([chr(0x4E00 + i) for i in range(256)]).dtype == np.uint8
    vocab = Vocab.from_list([chr(0x4E00 + i) for i in range(257)])
    assert vocab.dtype == np.uint16
    assert vocab.encode(chr(0x4E00 + 256)).tolist() == [256]


def test_cjk_text_caps_the_vocabulary_and_maps_rare_chars_to_unknown():
    # 300 distinct ideographs: the first 100 common, the rest appear once each.
    common = [chr(0x4E00 + i) for i in range(100)]
    rare = [chr(0x4E00 + 100 + i) for i in range(200)]
    text = "".join(common) * 20 + "".join(rare)
    corpus = load_corpus(text, max_vocab=101)
    vocab = corpus.vocab
    assert len(vocab) == 101
    assert set(vocab.chars) == set(common) | {UNKNOWN}
    assert list(vocab.chars) == sorted(vocab.chars)
    assert (corpus.ids == vocab.unknown_id).sum() == 200
    assert vocab.decode(corpus.ids) == "".join(common) * 20 + UNKNOWN * 200
    assert "200 rarer ones" in corpus.notice and UNKNOWN in corpus.notice


def test_unknown_already_in_the_text_takes_only_one_slot():
    text = ("ab" * 10 + UNKNOWN) * 60 + "xyz"
    vocab = load_corpus(text, max_vocab=4).vocab
    assert vocab.chars == ("a", "b", "x", UNKNOWN)


def test_an_uncapped_corpus_has_no_vocabulary_notice():
    assert load_corpus(TEXT).notice is None
    assert load_corpus(TEXT.encode("cp1252")).notice.startswith("The file is not UTF-8")


# --- the corpus -----------------------------------------------------------------------------


def test_load_corpus_accepts_bytes_and_text_alike():
    from_bytes = load_corpus(TEXT.replace("\n", "\r\n").encode(), name="garden")
    from_text = load_corpus(TEXT)
    assert from_bytes.text == from_text.text == TEXT
    assert from_bytes.encoding == "utf-8" and from_text.encoding == "text"
    assert from_bytes.name == "garden"
    assert np.array_equal(from_bytes.ids, from_text.ids)


def test_split_is_the_last_tenth_contiguous_and_shares_memory():
    corpus = load_corpus(TEXT)
    train, val = corpus.split()
    n = len(corpus.ids)
    assert len(val) == round(n * 0.1)
    assert len(train) + len(val) == n
    assert np.array_equal(np.concatenate([train, val]), corpus.ids)
    assert np.shares_memory(train, corpus.ids) and np.shares_memory(val, corpus.ids)
    assert corpus.vocab.decode(val) == TEXT[n - len(val) :]


def test_split_follows_the_validation_fraction():
    train, val = load_corpus(TEXT, val_fraction=0.5).split()
    assert abs(len(train) - len(val)) <= 1


def test_stats_describe_the_text():
    text = "one two  three\nfour\n\nfive six seven.\n" * 50
    stats = load_corpus(text).stats(top=3)
    assert stats.chars == len(text)
    assert stats.distinct == len(set(text))
    assert stats.lines == 4 * 50
    assert stats.words == 7 * 50
    assert stats.encoding == "text"
    assert stats.notice is None
    assert stats.train_chars + stats.val_chars == len(text)
    assert stats.val_chars == round(len(text) * 0.1)
    assert stats.frequencies == [("e", 300), (" ", 250), ("\n", 200)]
    assert stats.preview == text[:600]


def test_stats_count_a_last_line_without_a_newline():
    assert load_corpus(TEXT + "end").stats().lines == TEXT.count("\n") + 1


def test_corpora_compare_by_identity():
    corpus = load_corpus(TEXT)
    assert corpus == corpus
    assert corpus != load_corpus(TEXT)


# --- batches --------------------------------------------------------------------------------


def test_random_batch_shapes_and_shift():
    ids = np.arange(500, dtype=np.uint16)
    x, y = random_batch(ids, batch_size=8, seq_len=32, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 32)
    assert x.dtype == y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(y, x + 1)  # ids are consecutive, so the next character is id + 1
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert int(y.max()) <= 499


def test_random_batch_is_reproducible_from_the_generator():
    ids = load_corpus(TEXT).ids
    first = random_batch(ids, 4, 16, torch.Generator().manual_seed(7))
    again = random_batch(ids, 4, 16, torch.Generator().manual_seed(7))
    other = random_batch(ids, 4, 16, torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


def test_random_batch_resumes_from_a_saved_generator_state():
    ids = load_corpus(TEXT).ids
    generator = torch.Generator().manual_seed(3)
    random_batch(ids, 4, 16, generator)
    state = generator.get_state()
    expected = random_batch(ids, 4, 16, generator)
    resumed = torch.Generator()
    resumed.set_state(state)
    assert torch.equal(random_batch(ids, 4, 16, resumed)[0], expected[0])


def test_random_batch_uses_every_position_with_just_enough_text():
    ids = np.arange(17, dtype=np.uint8)
    x, y = random_batch(ids, batch_size=3, seq_len=16, generator=torch.Generator().manual_seed(0))
    assert x.tolist() == [list(range(16))] * 3
    assert y.tolist() == [list(range(1, 17))] * 3


def test_random_batch_refuses_text_shorter_than_a_sequence():
    with pytest.raises(CorpusError, match="too few for sequences of 16"):
        random_batch(np.arange(16, dtype=np.uint8), 2, 16, torch.Generator())


def test_stream_rows_leave_each_row_an_input_and_a_target():
    assert stream_rows(1_000, 32) == 32
    assert stream_rows(5, 32) == 4
    assert stream_rows(1, 32) == 0


@pytest.mark.parametrize("n, batch_size, seq_len, offset", [(1_000, 8, 32, 0), (1_003, 7, 10, 5), (6, 32, 4, 0)])
def test_stream_batches_cover_every_target_exactly_once(n, batch_size, seq_len, offset):
    ids = np.arange(n, dtype=np.uint16)
    chunks = list(stream_batches(ids, batch_size, seq_len, offset))
    rows = stream_rows(n - offset, batch_size)
    row_len = (n - offset - 1) // rows
    assert all(x.shape == y.shape and x.shape[0] == rows and x.shape[1] <= seq_len for x, y in chunks)
    assert all(torch.equal(y, x + 1) for x, y in chunks)
    # Each row continues across chunks: its inputs read on from where the last chunk stopped.
    inputs = torch.cat([x for x, _ in chunks], dim=1)
    targets = torch.cat([y for _, y in chunks], dim=1)
    for r in range(rows):
        start = offset + r * row_len
        assert inputs[r].tolist() == list(range(start, start + row_len))
    assert sorted(targets.flatten().tolist()) == list(range(offset + 1, offset + rows * row_len + 1))


def test_stream_batches_last_chunk_may_be_shorter():
    chunks = list(stream_batches(np.arange(101, dtype=np.uint8), batch_size=2, seq_len=20))
    assert [x.shape[1] for x, _ in chunks] == [20, 20, 10]


def test_stream_batches_refuse_text_too_short_for_one_row():
    with pytest.raises(CorpusError):
        stream_batches(np.arange(10, dtype=np.uint8), 4, 8, offset=9)


def test_corpus_never_imports_streamlit():
    code = "import sys, charlm.text.corpus; print('streamlit' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_text_alone_turns_an_upload_or_a_paste_into_checked_text():
    assert read_text(TEXT.encode("utf-16")) == (TEXT, "utf-16", None)
    assert read_text("one\r\ntwo " * 200) == ("one\ntwo " * 200, "text", None)
    with pytest.raises(CorpusError, match="at least 1,000 are needed"):
        read_text(b"too short")
    with pytest.raises(CorpusError, match="the limit is 2,000 characters"):
        read_text(TEXT, max_chars=2_000)


def test_the_corpus_module_offers_text_and_the_batches_module_the_batches():
    import charlm.text.corpus
    import charlm.text.read
    import charlm.train.batches
    assert charlm.text.corpus.CorpusError is charlm.text.read.CorpusError
    for name in ("Vocab", "Corpus", "load_corpus"):
        assert hasattr(charlm.text.corpus, name), name
    for name in ("random_batch", "stream_batches", "stream_rows"):
        assert hasattr(charlm.train.batches, name), name
        assert not hasattr(charlm.text.corpus, name), name


@pytest.mark.parametrize("chars, text, ids, positions", [
    (["a", "b", UNKNOWN], "abXa", [0, 1, 2, 0], [0, 1, 2, 3]),   # unknown read as the unknown symbol
    (["a", "b"], "abXa", [0, 1, 0], [0, 1, 3]),                  # no unknown symbol: skipped, positions say so
    (["b", "a"], "ab", [1, 0], [0, 1]),                          # a file's order, not code-point order
    (["a"], "", [], []),
])
def test_read_is_the_one_way_text_becomes_a_models_ids(chars, text, ids, positions):
    read_ids, read_positions = Vocab.from_list(chars).read(text)
    assert read_ids.tolist() == ids and read_positions.tolist() == positions and read_ids.dtype == np.int64
