"""Tests for charlm.learn.charmap: PCA and MDS on vectors built with known axes, the character classes, neighbours
by cosine similarity, which vectors each kind of model gives, and the shipped models keeping digits together."""

from pathlib import Path

import numpy as np
import pytest

from charlm.engine.decoding import engine_for
from charlm.learn import charmap
from charlm.learn.charmap import CharVectors, char_class, char_map, cosine_mds, mean_cosine_distance, neighbours, pca
from charlm.modelfile import checkpoint
from charlm.text.corpus import UNKNOWN

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = ("demo", "python-docs", "seed-2017")

# Two orthonormal directions in 4-D. The first's largest-magnitude loading is negative (-0.8), so the map's
# first axis is its opposite; the second's (0.8) is positive and kept.
FIRST = np.array([0.6, -0.8, 0.0, 0.0])
SECOND = np.array([0.8, 0.6, 0.0, 0.0])
# Along FIRST: +-2 (variance 8 over the four points); along SECOND: +-1 (variance 2): shares 0.8 and 0.2.
LATENT = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
OFFSET = np.array([5.0, -3.0, 7.0, 1.0])   # the mean, which PCA removes


def constructed() -> np.ndarray:
    return OFFSET + LATENT[:, :1] * FIRST + LATENT[:, 1:] * SECOND


def test_pca_recovers_the_known_axes_with_their_signs_and_variance_shares():
    coords, shares = pca(constructed())
    np.testing.assert_allclose(coords, LATENT * [-1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(shares, [0.8, 0.2], atol=1e-12)


def test_pca_places_each_character_the_same_whatever_the_order_of_the_rows():
    order = [2, 0, 3, 1]
    coords, _ = pca(constructed())
    shuffled, _ = pca(constructed()[order])
    np.testing.assert_allclose(shuffled, coords[order], atol=1e-12)


def test_pca_of_one_dimensional_vectors_pads_the_second_axis_with_zeros():
    coords, shares = pca(np.array([[1.0], [3.0], [-4.0]]))
    np.testing.assert_allclose(coords, [[1.0, 0.0], [3.0, 0.0], [-4.0, 0.0]], atol=1e-12)   # mean 0 already
    np.testing.assert_array_equal(shares, [1.0, 0.0])


def test_characters_with_one_vector_have_nothing_to_map():
    with pytest.raises(ValueError, match="same vector"):
        pca(np.ones((3, 4)))


def test_mds_puts_characters_that_point_the_same_way_on_one_point():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    # Cosine distance 0 within {a, 2a} and within {b, 5b}, 1 between them: two points 1 apart on one axis;
    # the first of equals (row 0) is made positive.
    coords, shares = cosine_mds(np.stack([a, 2 * a, b, 5 * b]))
    np.testing.assert_allclose(coords, [[0.5, 0.0], [0.5, 0.0], [-0.5, 0.0], [-0.5, 0.0]], atol=1e-12)
    np.testing.assert_allclose(shares, [1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("char, kind", [
    ("a", "lower"), ("ß", "lower"), ("é", "lower"), ("Q", "upper"), ("Ã", "upper"), ("7", "digit"),
    ("٣", "digit"), (".", "punctuation"), ('"', "punctuation"), ("“", "punctuation"), ("+", "punctuation"),
    ("$", "punctuation"), ("¤", "punctuation"), (" ", "space"), ("\n", "space"), ("\t", "space"),
    ("²", "other"), ("中", "other"), ("\x00", "other"), (UNKNOWN, "other"),
])
def test_each_character_is_in_its_class(char, kind):
    assert char_class(char) == kind


def test_neighbours_are_ranked_by_cosine_similarity_in_the_full_space():
    vectors = CharVectors(np.array([[1.0, 0.0, 0.0], [2.0, 0.2, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0],
                                    [1.0, 1.0, 0.0], [0.0, 0.0, 3.0]]), list("abcdef"), charmap.EMBEDDING)
    found = neighbours(vectors, "a", count=5)
    assert [n.char for n in found] == ["b", "e", "c", "f", "d"]   # c and f tie at 0: vocab order
    np.testing.assert_allclose([n.similarity for n in found], [2 / np.sqrt(4.04), 1 / np.sqrt(2), 0.0, 0.0, -1.0],
                               atol=1e-12)
    assert [n.char for n in neighbours(vectors, "a", count=2)] == ["b", "e"]
    assert len(neighbours(vectors, "a", count=50)) == 5   # everyone but itself


def test_neighbours_of_a_character_the_model_does_not_have_are_refused():
    vectors = CharVectors(np.eye(3), list("abc"), charmap.EMBEDDING)
    with pytest.raises(ValueError, match="'z' is not one of"):
        neighbours(vectors, "z")


def test_mean_cosine_distance_leaves_out_each_character_with_itself():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert mean_cosine_distance(vectors, [0, 1], [0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert mean_cosine_distance(vectors, [0, 1], [2, 3]) == pytest.approx(1.5, abs=1e-12)   # (1 + 2) / 2
    assert mean_cosine_distance(vectors, [0, 2], [0, 2]) == pytest.approx(1.0, abs=1e-12)


def test_the_map_lists_every_character_in_vocab_order_with_its_class():
    vectors = CharVectors(constructed(), ["a", "B", "7", " "], charmap.HEAD_ROWS)
    made = char_map(vectors)
    assert [(p.char, p.kind) for p in made.points] == [("a", "lower"), ("B", "upper"), ("7", "digit"), (" ", "space")]
    np.testing.assert_allclose([(p.x, p.y) for p in made.points], [(-2, 0), (2, 0), (0, 1), (0, -1)], atol=1e-12)
    assert made.explained == pytest.approx((0.8, 0.2))
    assert (made.method, made.source) == ("pca", charmap.HEAD_ROWS)
    with pytest.raises(ValueError, match="unknown projection 'tsne'"):
        char_map(vectors, "tsne")


def load(name: str) -> checkpoint.Checkpoint:
    return checkpoint.load(CHECKPOINTS / f"{name}.safetensors")


def test_a_model_with_an_embedding_maps_its_embedding_and_the_2017_design_its_head_rows():
    demo, seed = load("demo"), load("seed-2017")
    found = charmap.character_vectors(demo.model_config, demo.numpy_weights(), demo.vocab)
    assert found.source == charmap.EMBEDDING
    np.testing.assert_array_equal(found.vectors, demo.numpy_weights()["embed.weight"])
    found = charmap.character_vectors(seed.model_config, seed.numpy_weights(), seed.vocab)
    assert found.source == charmap.HEAD_ROWS
    np.testing.assert_array_equal(found.vectors, seed.numpy_weights()["head.weight"])


def test_an_engine_gives_the_gate_inputs_each_character_adds_or_a_window_models_head_rows():
    demo, seed = load("demo"), load("seed-2017")
    w = demo.numpy_weights()
    found = charmap.engine_vectors(engine_for(demo), demo.vocab)
    expected = w["embed.weight"] @ w["lstm.weight_ih_l0"].T + w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]
    assert found.source == charmap.GATE_INPUTS
    np.testing.assert_allclose(found.vectors, expected, atol=1e-5)
    found = charmap.engine_vectors(engine_for(seed), seed.vocab)
    assert found.source == charmap.HEAD_ROWS
    np.testing.assert_array_equal(found.vectors, seed.numpy_weights()["head.weight"])


def test_vectors_that_do_not_match_the_characters_are_refused():
    ckpt = load("demo")
    with pytest.raises(ValueError, match="85 character vectors but 3 characters"):
        charmap.character_vectors(ckpt.model_config, ckpt.numpy_weights(), list("abc"))


@pytest.mark.parametrize("from_engine", [False, True], ids=["weights", "engine"])
@pytest.mark.parametrize("name", SHIPPED)
def test_digits_are_nearer_each_other_than_to_letters_in_the_full_space_and_on_the_map(name, from_engine):
    ckpt = load(name)
    if from_engine:   # what a page holds (app.models.LoadedModel keeps the engine, not the weights)
        vectors = charmap.engine_vectors(engine_for(ckpt), ckpt.vocab)
    else:
        vectors = charmap.character_vectors(ckpt.model_config, ckpt.numpy_weights(), ckpt.vocab)
    kinds = [char_class(c) for c in ckpt.vocab]
    digits = [i for i, k in enumerate(kinds) if k == "digit"]
    letters = [i for i, k in enumerate(kinds) if k in ("lower", "upper")]
    assert len(digits) == 10
    assert mean_cosine_distance(vectors.vectors, digits, digits) < mean_cosine_distance(vectors.vectors, digits, letters)
    for method in charmap.METHODS:
        points = np.array([(p.x, p.y) for p in char_map(vectors, method).points])
        apart = lambda rows_a, rows_b: np.mean([np.linalg.norm(points[i] - points[j])
                                                for i in rows_a for j in rows_b if i != j])
        assert apart(digits, digits) < apart(digits, letters), method
