"""What newcomers tripped on (issue 12), one test each, and saving and reusing a written text.

The frequency chart's order, the Seed box's width and the uploader's own size line are also checked in a
real browser: tests/browser/test_newcomers_browser.py.
"""

import json
import math
import re

import pytest
from streamlit.testing.v1 import AppTest

from app.charts import show_char
from app.writing import char_label
from charlm.text.corpus import load_corpus
from charlm.text.read import CorpusError, decode_bytes, read_text
from charlm.units import LN2
from helpers import APP, FOX, choose_text, job_of, resumed_worse_then_stopped, start, step_text, written


@pytest.fixture
def at(app_env):
    """A visitor on the Generate page, its first view drawn."""
    return AppTest.from_file(APP, default_timeout=60).run()


@pytest.fixture
def corpus_at(app_env):
    """A visitor on the Corpus page."""
    return AppTest.from_file(APP, default_timeout=60).run().switch_page("app/pages/corpus.py").run()


def upload(at, name: str, data: bytes):
    at.file_uploader(key="corpus_upload").set_value((name, data, "text/plain"))
    return at.run()


def candidate_buttons(at) -> list:
    return [b for b in at.button if (b.key or "").startswith("cand_")]


# --- save and reuse text -------------------------------------------------------------------------

def test_each_written_text_downloads_as_utf8_and_can_become_the_prime(at, downloads):
    at.number_input(key="gen_samples").set_value(2)
    at.number_input(key="gen_seed").set_value(4)
    at.slider(key="gen_length").set_value(40)
    at.button(key="write").click().run()
    texts = [c.value for c in at.code]
    assert len(texts) == 2
    assert [downloads[f"charlm-text-{i}.txt"] for i in (1, 2)] == [t.encode("utf-8") for t in texts]
    at.button(key="use_as_prime_1").click().run()   # the second text
    assert not at.exception
    assert at.text_area(key="gen_prime").value == texts[1]


def test_a_written_text_longer_than_the_prime_box_gives_it_its_end():
    from app.writing import PRIME_MAX_CHARS, as_prime

    text = "a" * PRIME_MAX_CHARS + "the end"
    assert as_prime(text) == text[-PRIME_MAX_CHARS:] and as_prime("short") == "short"


def test_the_step_transcript_downloads_and_can_become_the_prime(at, downloads):
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_ten").click().run()
    transcript = step_text(at)
    assert downloads["charlm-step.txt"] == transcript.encode("utf-8")
    at.button(key="step_use_as_prime").click().run()
    assert not at.exception
    assert at.text_area(key="gen_prime").value == transcript
    assert step_text(at) == transcript   # stepping starts again from it: nothing written after it yet


# --- 1. the character-frequency chart after a new text --------------------------------------------

def test_the_frequency_chart_carries_its_order_so_a_new_text_is_drawn_afresh(corpus_at):
    """Streamlit keeps a chart whose spec is unchanged and swaps its data in place; Vega's domain for an
    unsorted axis then kept the old text's order. The order must be in the spec, so a new text redraws it."""
    fox = FOX
    counts = load_corpus(fox).stats().frequencies
    reversed_fox = "".join(char * (rank + 1) for rank, (char, _) in enumerate(counts)) * 4
    specs = []
    for name, text in (("fox.txt", fox), ("reversed.txt", reversed_fox)):
        upload(corpus_at, name, text.encode())
        spec = json.loads(corpus_at.get("vega_lite_chart")[0].proto.spec)
        order = [show_char(c) for c, _ in load_corpus(text).stats().frequencies]
        assert spec["encoding"]["x"]["sort"] == order
        spec.pop("data")   # the data's name: Streamlit does not count it as a change of chart
        specs.append(spec)
    assert specs[0] != specs[1]


# --- 2. the best loss after Resume then Stop --------------------------------------------------------

def best_numbers(at) -> tuple[float, float]:
    """(the best so far in the checkpoints line, the best in the Stopped/Finished summary), bits/char."""
    line = next(c.value for c in at.caption if "best so far" in c.value)
    summary = next(m.value for m in list(at.info) + list(at.success) if re.match(r"(Stopped|Finished):", m.value))
    return (float(re.search(r"best so far \(validation ([\d.]+) bits/char", line).group(1)),
            float(re.search(r"best validation loss ([\d.]+) bits/char", summary).group(1)))


@pytest.mark.slow
def test_after_resume_and_stop_the_best_so_far_is_the_summarys_best(visitors, monkeypatch):
    at = visitors()
    # The resumed run's evaluations are all worse than the first run's best, so the best model stays the first's.
    first_best = resumed_worse_then_stopped(at, monkeypatch)
    assert job_of(at).snapshot().status == "stopped"
    best_line, best_summary = best_numbers(at)
    assert best_line == best_summary == round(first_best / LN2, 3)


# --- 3. Write's Stop --------------------------------------------------------------------------------

def test_a_stopped_write_keeps_the_text_it_reported_while_the_interrupted_run_winds_down(at, monkeypatch):
    """A Stop click starts the next run at once (Streamlit's fastReruns); the interrupted run goes on until
    its next st call. That run must not change the text the Stop reported."""
    import streamlit as st

    import charlm.engine.decoding
    from charlm.engine.decoding import Generation

    seen = {}

    def writes_on_after_a_stop(engine, vocab, prime="", length=200, cfg=None, num_samples=1, seed=None,
                               on_text=None, **_):
        on_text(["abc"])
        write = st.session_state["gen_write_state"]
        write.running, write.stopped = False, True   # what the Stop click's run does, then it shows the texts
        seen["reported"] = list(write.texts)
        seen["kept_writing"] = on_text(["abcdefgh"]) is not False
        return Generation(["abcdefghijkl"])

    monkeypatch.setattr(charlm.engine.decoding, "generate", writes_on_after_a_stop)
    at.slider(key="gen_length").set_value(12)
    at.button(key="write").click().run()
    at.run()   # the next rerun, whatever the visitor does
    assert not at.exception
    assert seen == {"reported": ["abc"], "kept_writing": False}
    assert at.session_state["gen_write_state"].texts == ["abc"]
    assert written(at) == "The abc"
    assert any(c.value.endswith("stopped after 3 characters") for c in at.caption)


# --- 5. Step mode's candidate buttons ---------------------------------------------------------------

def test_step_candidates_keep_character_order_and_show_both_probabilities(at):
    at.segmented_control(key="gen_mode").set_value("Step").run()
    for click in ("step_next", "cand_3", "step_next"):
        at.button(key=click).click().run()
        session = at.session_state["gen_step_state"].session
        candidates = session.candidates(10)
        in_character_order = sorted(candidates, key=lambda c: ord(c[0]))
        labels = [b.label for b in candidate_buttons(at)]
        assert [label.split()[0] for label in labels] == [char_label(c) for c, _, _ in in_character_order]
        for label, (_, before, after) in zip(labels, in_character_order):
            assert label.split()[1] == f"{before:.0%}→{after:.0%}"   # the model's, then after the strategy


# --- 6. greedy and beam -----------------------------------------------------------------------------

def test_greedy_and_beam_hide_the_seed_they_ignore(at):
    for strategy in ("greedy", "sample", "top-k", "top-p", "min-p", "beam"):
        at.selectbox(key="gen_strategy").set_value(strategy).run()
        shown = any(n.key == "gen_seed" for n in at.number_input)
        assert shown == (strategy not in ("greedy", "beam")), strategy
    at.selectbox(key="gen_strategy").set_value("greedy").run()
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    line = next(c.value for c in at.caption if "greedy" in c.value)
    assert "seed" not in line


def test_beam_labels_each_texts_log_probability_in_bits_and_nats(at):
    at.selectbox(key="gen_strategy").set_value("beam").run()
    at.number_input(key="gen_samples").set_value(2)
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    labels = [c.value for c in at.caption if "log-probability" in c.value]
    assert len(labels) == len(at.code) == 2
    for label in labels:
        assert re.search(r"log-probability −[\d.]+ bits \(−[\d.]+ nats\)", label), label
        assert "bits/char" in label and "closer to 0" in label


# --- 7. the uploader's cap ----------------------------------------------------------------------------

def test_the_corpus_uploader_says_its_cap_in_characters(corpus_at):
    label = corpus_at.file_uploader(key="corpus_upload").proto.label
    assert "5,000,000 characters" in label


# --- 8. a failed upload -----------------------------------------------------------------------------

def test_a_failed_upload_says_it_was_not_used_and_which_text_still_is(corpus_at):
    upload(corpus_at, "fox.txt", FOX.encode())
    upload(corpus_at, "blob.bin", bytes(range(256)) * 40)
    error = corpus_at.error[0].value.replace("\\", "")
    assert error.startswith("The file blob.bin was not used. This looks like binary data"), error
    assert corpus_at.subheader[0].value.replace("\\", "") == "Still using uploaded file fox.txt"
    upload(corpus_at, "waves.txt", FOX.upper().encode())   # a good file again: no error, no "still"
    assert not corpus_at.error
    assert corpus_at.subheader[0].value.replace("\\", "") == "Using uploaded file waves.txt"


# --- 9. one unit for losses ---------------------------------------------------------------------------

def test_generate_gives_a_models_loss_in_bits_per_character_with_nats_beside(at):
    summary = at.text[0].value
    assert re.search(r"validation loss \d\.\d\d bits/char \(\d\.\d{3} nats\)", summary), summary


def test_the_uniform_guessing_help_uses_this_texts_vocabulary(visitors):
    at = start(choose_text(visitors()), minutes=0.05)
    job_of(at).join(60)
    at.run()
    vocab_size = len(job_of(at).corpus.vocab)
    help_text = next(m.proto.help for m in at.metric if m.proto.label.startswith("Training loss"))
    assert f"guessing uniformly among this text's {vocab_size} characters scores {math.log2(vocab_size):.2f}" \
        in help_text


# --- 10. messages -------------------------------------------------------------------------------------

REFUSED = {   # what a person or a shell user may hand charlm, and the message it gets
    "pdf": b"%PDF-1.7 ...",
    "zip": b"PK\x03\x04 ...",
    "gzip": b"\x1f\x8b\x08 ...",
    "png": b"\x89PNG\r\n\x1a\n ...",
    "empty": b"",
    "nul": b"text\x00" * 400,
    "control codes": bytes(range(1, 9)) * 200,
    "bad byte-order mark": b"\xff\xfe" + b"\x00\xd8" * 1500,
    "short": b"too short",
    "too large": b"x" * 9_000,
}


def refusal(data: bytes, **kwargs) -> str:
    with pytest.raises(CorpusError) as refused:
        read_text(data, max_chars=2_000, **kwargs)
    return str(refused.value)


def test_text_messages_suit_the_app_and_the_command_line_alike():
    messages = [refusal(data) for data in REFUSED.values()]
    messages.append(refusal(b"\xff" * 1500, encoding="utf-8"))           # a wrong encoding, named by hand
    messages.append(refusal(b"x" * 1500, encoding="no-such-codec"))
    messages.append(decode_bytes(("Café crème " * 100).encode("cp1252"))[2])   # the notice of a guess
    for message in messages:
        assert message[0].isupper(), message
        assert "upload" not in message.lower(), message   # a shell user has nothing to upload
        assert "the app" not in message, message


def test_counts_of_one_are_singular(at):
    assert "The text has 1 character;" in refusal(b"x")
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.button(key="step_next").click().run()
    assert "1 character written after the prime." in [c.value for c in at.caption]


def test_a_one_minute_cap_says_minute(visitors, monkeypatch):
    monkeypatch.setenv("CHARLM_MAX_TRAIN_MINUTES", "1")
    at = choose_text(visitors())
    at.number_input(key="budget_minutes").set_value(5).run()
    assert "at most 1 minute on this server" in at.error[0].value


def test_error_messages_start_with_a_capital_letter(at):
    at.segmented_control(key="gen_mode").set_value("Step").run()
    at.text_input(key="own_char").input("€")   # the model never saw it
    at.button(key="FormSubmitter:own_char_form-Add").click().run()
    assert at.error[0].value.startswith("The model does not know the character")
