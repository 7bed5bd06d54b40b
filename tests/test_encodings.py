"""Texts saved in legacy encodings without a byte-order mark: read in their own script, named, overridable."""

from __future__ import annotations

import numpy as np
import pytest

from charlm.modelfile import checkpoint
from charlm.text.corpus import load_corpus
from charlm.engine.decoding import engine_for, generate
from charlm.text.read import CorpusError, decode_bytes
from charlm.train.trainer import train
from helpers import configs

# Each text is written here; a few distinct sentences repeated to a trainable length.
SCRIPTS = {
    "shift_jis": ("Japanese", lambda c: "\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff",
                  "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
                  "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。\n"),
    "gbk": ("Chinese", lambda c: "\u4e00" <= c <= "\u9fff",
            "道可道，非常道；名可名，非常名。无名天地之始，有名万物之母。故常无欲以观其妙，常有欲以观其徼。\n"),
    "cp1251": ("Cyrillic", lambda c: "\u0400" <= c <= "\u04ff",
               "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.\n"),
    "cp1253": ("Greek", lambda c: "\u0370" <= c <= "\u03ff",
               "Η ζωή είναι ωραία και ο ήλιος λάμπει πάνω από τη θάλασσα. Ο Σωκράτης ήταν φιλόσοφος.\n"),
    "utf-16-le": ("Latin", str.isalpha, "A plain line of English, saved as UTF-16 with no byte-order mark.\n"),
}


def sample_text(codec: str) -> str:
    line = SCRIPTS[codec][2]
    return "".join(f"{i} {line}" for i in range(1, 80))


@pytest.mark.parametrize("codec", SCRIPTS)
def test_a_legacy_text_is_read_exactly_and_the_notice_names_its_encoding(codec):
    original = sample_text(codec)
    text, encoding, notice = decode_bytes(original.encode(codec))
    assert text == original
    assert original.encode(codec).decode(encoding) == original
    assert "not UTF-8" in notice or "without a byte-order mark" in notice
    expected_names = {"shift_jis": "Shift-JIS", "gbk": "GBK", "cp1251": "Cyrillic", "cp1253": "Greek",
                      "utf-16-le": "UTF-16"}
    assert expected_names[codec] in notice


@pytest.mark.parametrize("codec", SCRIPTS)
def test_a_legacy_text_trains_and_writes_its_own_script(codec, tmp_path):
    corpus = load_corpus(sample_text(codec).encode(codec), f"{codec}.txt")
    model_cfg, train_cfg = configs(corpus, max_steps=30, lr=2e-2)
    result = train(corpus, model_cfg, train_cfg, preset="tiny", out=tmp_path / "model.safetensors")
    written = generate(engine_for(checkpoint.load(result.best_path)), corpus.vocab, prime=sample_text(codec)[:3], length=200, seed=0).texts[0]
    in_script = SCRIPTS[codec][1]
    letters = [c for c in written if not c.isspace() and not c.isdigit()]
    assert letters and np.mean([in_script(c) for c in letters]) > 0.5, written


def test_a_chosen_encoding_overrides_the_guess():
    original = sample_text("cp1251")
    data = original.encode("cp1251")
    # Read as Windows-1252 on purpose: Latin letters with accents, a different text, and no notice.
    text, encoding, notice = decode_bytes(data, "cp1252")
    assert encoding == "cp1252" and notice is None
    assert text == data.decode("cp1252") and text != original
    corpus = load_corpus(data, encoding="cp1251")
    assert corpus.text == original and corpus.encoding == "cp1251"


def test_a_wrong_or_unknown_chosen_encoding_is_a_clear_error():
    data = sample_text("cp1251").encode("cp1251")
    with pytest.raises(CorpusError, match="not valid utf-8: the bytes at position 2"):
        decode_bytes(data, "utf-8")
    with pytest.raises(CorpusError, match="The encoding 'klingon' is not one Python knows"):
        decode_bytes(data, "klingon")


def test_western_text_stays_windows_1252_where_the_detector_would_guess_a_central_european_page():
    original = "Le cœur a ses raisons que la raison ne connaît point. Où est la fenêtre? Ça dépend, señor.\n" * 40
    text, encoding, _ = decode_bytes(original.encode("cp1252"))
    assert (text, encoding) == (original, "cp1252")
