"""The character map: what a model has learned about each character, as one vector per character projected
to two dimensions (PCA, or classical MDS on cosine distances), its class, and its nearest neighbours. numpy only.

The vectors are the learned embedding's rows. The 2017 design has no embedding (it reads a character as
id / vocab, one float, so its inputs lie on a line and say nothing learned); its map uses the head's rows
instead, one per character: the direction in the hidden state that predicts that character.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from charlm.engine.arrays import ArrayLSTM
from charlm.text.corpus import UNKNOWN

CLASSES = ("lower", "upper", "digit", "punctuation", "space", "other")
EMBEDDING = "embedding"                      # the rows of embed.weight, one per character
HEAD_ROWS = "head rows"                      # the rows of head.weight (models without an embedding)
GATE_INPUTS = "layer 0's gate inputs"        # the embedding as the first layer reads it (from an engine)
METHODS = ("pca", "mds")


@dataclass(frozen=True)
class CharVectors:
    vectors: np.ndarray       # (vocab, dims) float64, one row per character, in vocab order
    chars: list[str]          # index -> character
    source: str               # EMBEDDING, HEAD_ROWS or GATE_INPUTS


@dataclass(frozen=True)
class CharPoint:
    char: str
    kind: str                 # one of CLASSES
    x: float
    y: float


@dataclass(frozen=True)
class CharMap:
    points: list[CharPoint]          # one per character, in vocab order
    method: str                      # "pca" or "mds"
    explained: tuple[float, float]   # share (0-1) of the variance each axis explains
    source: str                      # what the vectors were (CharVectors.source)


@dataclass(frozen=True)
class Neighbour:
    char: str
    similarity: float         # cosine similarity in the full space, -1 to 1


def character_vectors(config: dict, weights: dict[str, np.ndarray], chars: list[str]) -> CharVectors:
    """From a model's ModelConfig fields and weights (a checkpoint's numpy_weights()): its embedding's rows,
    or for a model that reads characters without one (the 2017 design), its head's rows."""
    if config.get("input_mode", "embedding") == "embedding":
        vectors, source = weights["embed.weight"], EMBEDDING           # (vocab, embed_dim)
    else:
        vectors, source = weights["head.weight"], HEAD_ROWS            # (vocab, hidden)
    return _checked(np.asarray(vectors, dtype=np.float64), chars, source)


def engine_vectors(engine: ArrayLSTM, chars: list[str]) -> CharVectors:
    """From an engine, which holds no embedding: layer 0's gate inputs for each character (the embedding
    through the first layer's input weights, biases included: a linear image of it), or a window model's head rows.

    The table's i, f and o columns were halved for stepping (arrays.ArrayLSTM); they are doubled back here,
    so each row is exactly what the torch LSTM adds to its gates for that character.
    """
    if engine.window:
        return _checked(np.asarray(engine.head_w.T, dtype=np.float64), chars, HEAD_ROWS)
    H = engine.hidden_size
    unhalve = np.full(4 * H, 2.0)
    unhalve[2 * H:3 * H] = 1.0    # the candidate's columns were kept whole
    return _checked(engine.table.astype(np.float64) * unhalve, chars, GATE_INPUTS)


def _checked(vectors: np.ndarray, chars: list[str], source: str) -> CharVectors:
    if vectors.ndim != 2 or vectors.shape[0] != len(chars):
        raise ValueError(f"the model has {vectors.shape[0]} character vectors but {len(chars)} characters")
    if not np.isfinite(vectors).all():
        raise ValueError("the model's character vectors hold values that are not finite numbers")
    return CharVectors(vectors, list(chars), source)


def char_class(char: str) -> str:
    """Which of CLASSES a character is in. Punctuation includes symbols (Unicode P* and S*, as Python's
    string.punctuation does for ASCII); the unknown symbol, control characters and uncased letters are other."""
    if char == UNKNOWN:
        return "other"
    if char.isspace():
        return "space"
    if char.isdecimal():
        return "digit"
    if char.islower():
        return "lower"
    if char.isupper():
        return "upper"
    if unicodedata.category(char)[0] in "PS":
        return "punctuation"
    return "other"


def pca(vectors: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """-> (coordinates (n, dims), share of the total variance each axis explains (dims,)).

    The SVD of the centred vectors. An axis's sign is arbitrary, so each is turned to make its largest-magnitude
    loading positive: the map keeps its orientation from run to run. Axes beyond the vectors' rank are zeros.
    """
    centred = vectors - vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    total = variance.sum()
    if total == 0:
        raise ValueError("every character has the same vector, so there is nothing to map")
    coords = centred @ _signed(axes[:dims]).T
    return _padded(coords, variance[:dims] / total, dims)


def cosine_mds(vectors: np.ndarray, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Classical MDS on cosine distances (1 - cosine similarity): -> (coordinates (n, dims), the share of
    the positive eigenvalues each axis holds). Where PCA keeps the most variance, this keeps the angles,
    which is what neighbours() ranks by. Each axis's largest-magnitude coordinate is made positive."""
    unit = _unit_rows(vectors)
    squared = (1.0 - unit @ unit.T) ** 2
    n = len(vectors)
    centring = np.eye(n) - 1.0 / n
    gram = -0.5 * centring @ squared @ centring
    eigenvalues, eigenvectors = np.linalg.eigh((gram + gram.T) / 2)     # ascending
    order = np.argsort(eigenvalues, kind="stable")[::-1][:dims]
    kept = np.clip(eigenvalues[order], 0.0, None)
    positive = np.clip(eigenvalues, 0.0, None).sum()
    if positive == 0:
        raise ValueError("every character points the same way, so there is nothing to map")
    coords = _signed((eigenvectors[:, order] * np.sqrt(kept)).T).T
    return _padded(coords, kept / positive, dims)


def _signed(rows: np.ndarray) -> np.ndarray:
    """Each row turned so that its largest-magnitude entry is positive: among entries equal to rounding
    (within a millionth), the first, so that the SVD's last bits do not choose between them."""
    size = np.abs(rows)
    first = (size >= size.max(axis=1, keepdims=True) * (1 - 1e-6)).argmax(axis=1)
    biggest = rows[np.arange(len(rows)), first]
    return rows * np.where(biggest < 0, -1.0, 1.0)[:, None]


def _padded(coords: np.ndarray, shares: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    missing = dims - coords.shape[1]
    return np.pad(coords, ((0, 0), (0, missing))), np.pad(shares, (0, missing))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)   # a zero vector stays zero: similarity 0 to all


def char_map(char_vectors: CharVectors, method: str = "pca") -> CharMap:
    """Every character at its place on the map, with its class."""
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")
    coords, shares = (pca if method == "pca" else cosine_mds)(char_vectors.vectors)
    points = [CharPoint(char, char_class(char), float(x), float(y))
              for char, (x, y) in zip(char_vectors.chars, coords)]
    return CharMap(points, method, (float(shares[0]), float(shares[1])), char_vectors.source)


def cosine_similarities(vectors: np.ndarray) -> np.ndarray:
    """(n, n): every pair of characters' cosine similarity in the full space."""
    unit = _unit_rows(vectors)
    return unit @ unit.T


def neighbours(char_vectors: CharVectors, char: str, count: int = 8) -> list[Neighbour]:
    """The `count` characters most similar to `char` by cosine similarity in the full space (not the map's
    two dimensions), most similar first; equals in vocab order. The character itself is left out."""
    if char not in char_vectors.chars:
        raise ValueError(f"{char!r} is not one of the model's characters")
    if count < 0:
        raise ValueError(f"the number of neighbours must be 0 or more, not {count}")
    row = char_vectors.chars.index(char)
    similarity = cosine_similarities(char_vectors.vectors)[row]
    order = [i for i in np.argsort(-similarity, kind="stable") if i != row][:count]
    return [Neighbour(char_vectors.chars[i], float(similarity[i])) for i in order]


def mean_cosine_distance(vectors: np.ndarray, rows_a: list[int], rows_b: list[int]) -> float:
    """The mean cosine distance (1 - similarity) between characters of two groups, over every pair of two
    different characters (within one group: each pair once each way, never a character with itself)."""
    distance = 1.0 - cosine_similarities(vectors)[np.ix_(rows_a, rows_b)]
    different = np.asarray(rows_a)[:, None] != np.asarray(rows_b)[None, :]
    if not different.any():
        raise ValueError("the two groups need at least two different characters between them")
    return float(distance[different].mean())
