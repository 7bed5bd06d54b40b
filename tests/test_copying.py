"""Tests for charlm.learn.copying: the suffix array and the longest span copied from the training text."""

import random

import pytest

from charlm.learn.copying import Copy, CopyIndex, suffix_array

WORDS = "the river stone light garden walks under over slowly bright quiet morning".split()


def prose(n_chars: int, seed: int) -> str:
    rng = random.Random(seed)
    text = ""
    while len(text) < n_chars:
        text += " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + ". "
    return text[:n_chars]


def brute_longest(text: str, train: str) -> tuple[int, int]:
    """(start, length) of the first longest span of text inside train, checking every span."""
    best = (0, 0)
    for start in range(len(text)):
        for end in range(len(text), start + best[1], -1):
            if text[start:end] in train:
                best = (start, end - start)
                break
    return best


@pytest.mark.parametrize("text", ["banana", "mississippi", "aaaaaaa", "abcab", "a", "zyx", "ünïcödé ü",
                                  "a\nab\x00a😀"])
def test_the_suffix_array_sorts_every_suffix_as_python_does(text):
    assert [text[i:] for i in suffix_array(text)] == sorted(text[i:] for i in range(len(text)))


def test_the_suffix_array_of_random_texts_is_sorted():
    for seed in range(20):
        rng = random.Random(seed)
        text = "".join(rng.choice("ab" if seed % 2 else "abcd ") for _ in range(rng.randint(1, 300)))
        assert [text[i:] for i in suffix_array(text)] == sorted(text[i:] for i in range(len(text)))


def test_a_planted_quote_is_the_longest_copied_span_with_both_positions():
    train = prose(30_000, seed=0)
    quote = "Zarathustra once said: the abyss gazes back, slowly, into the garden."   # 69 characters
    source_start = 17_003
    train = train[:source_start] + quote + train[source_start:]
    novel = "".join(random.Random(5).choice("qxzjvkw ") for _ in range(400))   # letters the prose lacks
    text = novel[:150] + quote + novel[150:]
    copy = CopyIndex(train).longest(text)
    assert copy == Copy(start=150, length=len(quote), source_start=source_start)
    assert text[copy.start:copy.end] == quote


def test_the_span_found_is_the_true_longest_on_random_texts():
    for seed in range(60):
        rng = random.Random(seed)
        alphabet = "abc" if seed % 3 else "abcdefgh"
        train = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200)))
        text = "".join(rng.choice(alphabet + "xy") for _ in range(rng.randint(1, 60)))
        index = CopyIndex(train)
        copy = index.longest(text)
        start, length = brute_longest(text, train)
        if length == 0:
            assert copy is None
            continue
        assert (copy.start, copy.length) == (start, length), seed
        assert copy.source_start == train.find(text[start:start + length])


def test_only_single_characters_in_common_give_a_one_character_span():
    copy = CopyIndex("abcabc").longest("xxcxx")
    assert copy == Copy(start=2, length=1, source_start=2)


def test_nothing_in_common_or_an_empty_text_gives_none():
    index = CopyIndex("the river")
    assert index.longest("XYZ!") is None
    assert index.longest("") is None
    assert CopyIndex("").longest("abc") is None


def test_find_gives_the_first_occurrence_or_none():
    index = CopyIndex("one two one two three")
    assert index.find("one two") == 0
    assert index.find("two three") == 12
    assert index.find("four") is None


def test_a_text_that_is_not_a_string_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="must be a str"):
        CopyIndex(b"bytes")
    with pytest.raises(ValueError, match="must be a str"):
        CopyIndex("abc").longest(None)
