"""Texts built to cost more than their size (charlm.text.read): runs of combining marks NFC would sort slowly, lone
surrogates, pastes over the cap, and encodings that are not text encodings. Each is refused with a message."""

from __future__ import annotations

import random
import unicodedata

import pytest

from charlm.text import marks
from charlm.text import read as text_module
from charlm.text.marks import DECOMPOSE_TO_MARKS, MAX_RUN as MAX_MARK_RUN
from charlm.text.read import CorpusError, decode_bytes, read_text

ACUTE, GRAVE_BELOW = "\u0301", "\u0316"   # combining classes 230 and 220: NFC reorders runs that mix them
PROSE = "A plain sentence of ordinary prose, with nothing odd in it at all. " * 40


def marks_after_a_letter(count: int) -> str:
    return "a" + ACUTE * count


def test_a_run_of_thirty_combining_marks_is_accepted():
    text, _, _ = read_text(PROSE + marks_after_a_letter(MAX_MARK_RUN) + " end")
    assert text.startswith(PROSE)
    assert text.count(ACUTE) == MAX_MARK_RUN - 1   # NFC folds the first into the letter: á


def test_a_run_of_thirty_one_combining_marks_is_refused_naming_where():
    pasted = PROSE + marks_after_a_letter(MAX_MARK_RUN + 1)
    with pytest.raises(CorpusError, match=rf"31 combining marks in a row .* from character {len(PROSE) + 2:,};"
                                          r" at most 30 .* stream-safe .* Remove that run"):
        read_text(pasted)


def test_the_hostile_paste_is_refused_before_it_is_normalised(monkeypatch):
    normalised = []
    monkeypatch.setattr(text_module.unicodedata, "normalize", lambda form, s: normalised.append(s) or s)
    hostile = "a" + ACUTE * 40_000 + GRAVE_BELOW * 40_000
    with pytest.raises(CorpusError, match="80,000 combining marks in a row"):
        read_text(hostile)
    with pytest.raises(CorpusError, match="80,000 combining marks in a row"):
        decode_bytes(hostile.encode())
    assert normalised == []


def test_a_run_of_tibetan_vowel_signs_that_decompose_into_marks_is_refused():
    with pytest.raises(CorpusError, match="combining marks in a row"):
        read_text(PROSE + "a" + "\u0f73\u0316" * 20)


def test_the_characters_of_class_zero_that_decompose_into_marks_are_exactly_those_listed():
    def decomposes_into_marks(char: str) -> bool:
        parts = unicodedata.decomposition(char)
        return bool(parts) and not parts.startswith("<") and unicodedata.combining(chr(int(parts.split()[0], 16))) > 0
    found = [chr(code) for code in range(0x110000)
             if not unicodedata.combining(chr(code)) and decomposes_into_marks(chr(code))]
    assert "".join(found) == DECOMPOSE_TO_MARKS


def test_a_paste_over_the_cap_is_refused_before_it_is_normalised(monkeypatch):
    normalised = []
    monkeypatch.setattr(text_module.unicodedata, "normalize", lambda form, s: normalised.append(s) or s)
    with pytest.raises(CorpusError, match="The text has 2,001 characters; the limit is 2,000"):
        read_text("x" * 2_001, max_chars=2_000)
    assert normalised == []


def test_a_decoded_file_over_the_cap_is_refused_before_it_is_normalised(monkeypatch):
    normalised = []
    monkeypatch.setattr(text_module.unicodedata, "normalize", lambda form, s: normalised.append(s) or s)
    with pytest.raises(CorpusError, match="The text has 2,001 characters; the limit is 2,000"):
        read_text(b"x" * 2_001, max_chars=2_000)
    assert normalised == []


@pytest.mark.parametrize("pasted, code", [(PROSE + "\ud800" + PROSE, "D800"), (PROSE + "\udfff", "DFFF")],
                         ids=["high", "low"])
def test_a_paste_with_a_lone_surrogate_is_refused(pasted, code):
    with pytest.raises(CorpusError, match=rf"lone surrogate \(U\+{code}\) at character {len(PROSE) + 1:,}: "
                                          "half of a UTF-16 pair"):
        read_text(pasted)


def test_unicode_escape_bytes_naming_a_lone_surrogate_are_refused():
    with pytest.raises(CorpusError, match=r"lone surrogate \(U\+D800\) at character 4: half of a UTF-16 pair, not a character"):
        decode_bytes(b"abc\\ud800" + PROSE.encode(), "unicode_escape")


@pytest.mark.parametrize("name", ["rot13", "base64", "zlib_codec", "hex", "bz2", "uu", "quopri"])
def test_an_encoding_that_is_not_a_text_encoding_is_refused(name):
    with pytest.raises(CorpusError, match=rf"The encoding '{name}' is not one a text file is saved in: "
                                          r"it turns bytes into bytes .* Try utf-8"):
        decode_bytes(PROSE.encode(), name)


@pytest.mark.parametrize("name, why", [("undefined", "refuses every byte"), ("punycode", "quadratic time"),
                                       ("idna", "domain names")])
def test_a_text_encoding_no_file_is_saved_in_is_refused_saying_why(name, why):
    with pytest.raises(CorpusError, match=rf"The encoding '{name}' is not one a text file is saved in: .*{why}"):
        decode_bytes(PROSE.encode(), name)


@pytest.mark.parametrize("run_start", [90, 95, 99, 100, 120])
def test_a_run_across_a_chunk_border_is_found_whole(monkeypatch, run_start):
    monkeypatch.setattr(marks, "_CHUNK_CHARS", 100)
    text = "b" * run_start + ACUTE * 40 + "c" * 200
    assert marks.long_run(text) == (run_start, 40)
    assert marks.long_run("b" * run_start + ACUTE * 30 + "c" * 200) is None


@pytest.mark.parametrize("seed", range(4))
def test_normalising_a_piece_at_a_time_gives_exactly_the_whole_texts_nfc(monkeypatch, seed):
    """Pieces cut before ASCII characters: composed pairs, reordered marks and Hangul syllables across every cut."""
    monkeypatch.setattr(text_module, "_NFC_CHUNK", 5)
    parts = ["a", "e", " ", "\n", "\u0301", "\u0316", "\u0323", "\u1100", "\u1161", "\u11a8", "\u0b47", "\u0b3e",
             "\u00e9", "\u212b", "\u0344", "Z", "\u0915\u093c"]
    rng = random.Random(seed)
    text = "".join(rng.choice(parts) for _ in range(3_000))
    assert text_module._nfc(text) == unicodedata.normalize("NFC", text)
    assert text_module._nfc("\u00e9" * 20) == "\u00e9" * 20          # no ASCII to cut before: one piece
