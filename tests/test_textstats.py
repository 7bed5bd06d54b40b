"""Tests for charlm.learn.textstats: repetition and distinct n-grams, counted by hand on small strings."""

import math

import pytest

from charlm.learn.textstats import distinct_ngrams, ngrams, repetition_rate


def test_ngrams_overlap():
    assert ngrams("abcd", 2) == ["ab", "bc", "cd"]
    assert ngrams("abc", 3) == ["abc"]


def test_a_text_without_repeats_has_no_repetition():
    assert repetition_rate("abcdefgh", n=4) == 0.0        # 5 four-grams, all different
    assert distinct_ngrams("abcdefgh", 4) == 1.0


def test_repetition_counts_each_later_occurrence():
    # "abab ab" has six 2-grams: ab, ba, ab, "b ", " a", ab; the second and third "ab" repeat.
    assert repetition_rate("abab ab", n=2) == pytest.approx(2 / 6)
    assert distinct_ngrams("abab ab", 2) == pytest.approx(4 / 6)


def test_overlapping_repeats_count():
    # "aaaaa": four 2-grams "aa", the last three seen before.
    assert repetition_rate("aaaaa", n=2) == pytest.approx(3 / 4)
    assert distinct_ngrams("aaaaa", 2) == pytest.approx(1 / 4)


def test_a_phrase_written_twice_repeats_its_second_copy():
    # 14 four-grams; the second "the cat." repeats "the ", "he c", "e ca", " cat" and "cat.".
    text = "the cat. the cat."
    assert repetition_rate(text) == pytest.approx(5 / 14)
    assert distinct_ngrams(text, 4) == pytest.approx(9 / 14)


def test_the_default_is_four_characters():
    # abcd bcda cdab dabc abcd: one repeat in five (in 2-grams it would be three in seven).
    assert repetition_rate("abcdabcd") == pytest.approx(1 / 5)


def test_the_two_measures_add_up_to_one():
    text = "to be or not to be, that is the question; to be"
    for n in (1, 2, 3, 5):
        assert repetition_rate(text, n) + distinct_ngrams(text, n) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["", "abc"])
def test_a_text_shorter_than_n_has_no_ngrams_and_both_measures_are_nan(text):
    assert math.isnan(repetition_rate(text, n=4))
    assert math.isnan(distinct_ngrams(text, 4))


def test_exactly_n_characters_is_one_distinct_ngram():
    assert repetition_rate("abcd", n=4) == 0.0
    assert distinct_ngrams("abcd", 4) == 1.0


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_a_bad_n_is_refused_with_a_clear_message(n):
    with pytest.raises(ValueError, match="n must be a whole number"):
        repetition_rate("abcdef", n)
    with pytest.raises(ValueError, match="n must be a whole number"):
        distinct_ngrams("abcdef", n)
