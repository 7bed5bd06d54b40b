"""Tests for charlm.learn.influence (what a prediction looked back at) and `python -m charlm explain`."""

from pathlib import Path
import statistics

import numpy as np
import pytest

from charlm.cli.main import main
from charlm.engine.decoding import engine_for
from charlm.engine.sampling import log_softmax
from charlm.errors import UserError
from charlm.learn.influence import influence
from charlm.modelfile.checkpoint import load

ROOT = Path(__file__).resolve().parents[1]
NIETZSCHE = ROOT.parent / "shared" / "data" / "nietzsche.txt"
TEXT = ("SUPPOSING that Truth is a woman--what then? Is there not ground\n"
        "for suspecting that all philosophers, in so far as they have been\n"
        "dogmatists, have failed to understand women")


@pytest.fixture(scope="module")
def demo():
    ckpt = load(ROOT / "checkpoints" / "demo.safetensors")
    return engine_for(ckpt), ckpt.vocab


@pytest.fixture(scope="module")
def window_model():
    ckpt = load(ROOT / "checkpoints" / "seed-2017.safetensors")
    return engine_for(ckpt), ckpt.vocab


def logprob(engine, chars, text: str) -> float:
    """ln p(text's last character | the rest), read directly from the start (a window model: its last window)."""
    ids = [chars.index(char) for char in text[:-1]]
    logits, _ = engine.read(ids)
    return float(log_softmax(logits)[0, chars.index(text[-1])])


@pytest.mark.parametrize("substitute", [None, "e"], ids=["left out", "replaced"])
@pytest.mark.parametrize("model", ["demo", "window_model"])
def test_each_influence_is_the_change_a_direct_reading_finds(model, substitute, request):
    engine, chars = request.getfixturevalue(model)
    at = len(TEXT) - 1
    found = influence(engine, chars, TEXT, at, back=120, substitute=substitute)
    assert found.char == TEXT[at] and found.logprob == pytest.approx(logprob(engine, chars, TEXT[:at + 1]), abs=1e-5)
    assert found.distances.tolist() == list(range(1, 121)) and found.chars == list(TEXT[at - 120:at][::-1])
    for distance in (1, 2, 17, 66, 99, 100):
        j = at - distance
        occluded = TEXT[:j] + (substitute or "") + TEXT[j + 1:at + 1]
        assert found.influence[distance - 1] == pytest.approx(found.logprob - logprob(engine, chars, occluded),
                                                              abs=1e-5), distance


def test_a_window_model_never_looks_past_its_window(window_model):
    engine, chars = window_model
    found = influence(engine, chars, TEXT, len(TEXT) - 1, back=150)
    assert engine.window == 100
    assert np.all(found.influence[found.distances > 100] == 0.0)
    assert np.count_nonzero(found.influence[found.distances <= 100]) > 90


def test_the_first_character_left_out_leaves_the_prediction_of_nothing_read(demo):
    engine, chars = demo
    found = influence(engine, chars, "Th", 1)
    nothing = log_softmax(engine.head_b[None])[0, chars.index("h")]
    assert found.distances.tolist() == [1] and found.influence[0] == pytest.approx(found.logprob - nothing, abs=1e-6)


def test_positions_outside_the_text_are_refused(demo):
    engine, chars = demo
    for at in (0, len(TEXT)):
        with pytest.raises(UserError, match="the position must lie in"):
            influence(engine, chars, TEXT, at)


@pytest.mark.skipif(not NIETZSCHE.is_file(), reason="the Nietzsche text is not in ../shared/data")
def test_a_line_end_looks_back_at_where_the_last_line_ended(demo):
    # The demo model has learned line length: predicting the newline that ends a line of held-out text, the
    # newline before ranks (by the size of its influence) in the top tenth of the 200 characters before.
    engine, chars = demo
    text = NIETZSCHE.read_text(encoding="utf-8").replace("\r\n", "\n")
    held_out = len(text) - len(text) // 10
    ends = [i for i in range(held_out + 600, len(text)) if text[i] == "\n" and text[i - 1] != "\n"
            and "\n" in text[i - 200:i - 1]][:20]
    ranks = []
    for end in ends:
        found = influence(engine, chars, text[end - 600:end + 1], 600)
        previous = found.chars.index("\n")                       # the nearest newline before this one
        ranks.append(found.ranked().tolist().index(previous) / len(found.chars))
    assert len(ranks) == 20 and statistics.median(ranks) < 0.1, ranks


def test_explain_prints_the_logprob_then_each_earlier_character(demo, tmp_path, capsys):
    engine, chars = demo
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    at = TEXT.index("\n") + 1                                    # the 'f' after the first line's end
    assert main(["explain", str(ROOT / "checkpoints" / "demo.safetensors"), str(path), "--at", str(at),
                 "--back", "5"]) == 0
    lines = capsys.readouterr().out.split("\n")
    found = influence(engine, chars, TEXT, at, back=5)
    assert lines[0] == f"{found.logprob:.4f}"
    assert lines[1:-1] == [f"{d}\t{c}\t{v:.4f}" for d, c, v in zip(range(1, 6), ["\\n", "d", "n", "u", "o"],
                                                                    found.influence.tolist())]
    assert lines[-1] == ""


def test_explain_says_a_position_outside_the_text_in_one_line(tmp_path, capsys):
    path = tmp_path / "text.txt"
    path.write_text("Short.", encoding="utf-8")
    assert main(["explain", str(ROOT / "checkpoints" / "demo.safetensors"), str(path), "--at", "6"]) == 2
    assert capsys.readouterr().err == ("error: the position must lie in [1, 5] for this text of 6 characters "
                                       "(the first has nothing before it); got 6\n")
