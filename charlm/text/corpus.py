"""Text -> Vocab + encoded ids; the train/validation split. The batches cut from it are train/batches.py's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from charlm.config import MAX_VOCAB
from charlm.errors import UserError
from charlm.text.read import DEFAULT_MAX_CHARS, CorpusError, read_text

UNKNOWN = "\ufffd"  # the symbol standing for characters outside the vocabulary
_CHUNK_CHARS = 1 << 20  # text is turned into code points this many characters at a time (bounded memory)


def _code_points(text: str) -> Iterator[np.ndarray]:
    """The text's code points as uint32 arrays, a chunk at a time so 100 MB never becomes 400 MB at once."""
    for start in range(0, len(text), _CHUNK_CHARS):
        chunk = text[start : start + _CHUNK_CHARS].encode("utf-32-le", "surrogatepass")
        yield np.frombuffer(chunk, dtype=np.uint32)


def _char_counts(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(code points present, ascending; how often each occurs)."""
    counts = np.zeros(0x110000, dtype=np.int64)  # one slot per Unicode code point: bincount beats sorting
    for points in _code_points(text):
        counts += np.bincount(points, minlength=len(counts))
    codes = np.flatnonzero(counts)
    return codes, counts[codes]


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # index -> character; build() sorts by code point
    _codes: np.ndarray = field(init=False, repr=False, compare=False)  # index -> code point
    _sorted_codes: np.ndarray = field(init=False, repr=False, compare=False)  # for searchsorted
    _ids_of_sorted: np.ndarray = field(init=False, repr=False, compare=False)  # sorted position -> index
    _unknown_id: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        chars = tuple(self.chars)
        if not chars:
            raise CorpusError("The vocabulary is empty.")
        if not all(isinstance(char, str) and len(char) == 1 for char in chars):
            raise CorpusError("Every vocabulary entry must be a single character.")
        if len(set(chars)) != len(chars):
            raise CorpusError("The vocabulary lists a character more than once.")
        codes = np.array([ord(char) for char in chars], dtype=np.uint32)
        order = np.argsort(codes)  # from_list keeps a checkpoint's order, which need not be sorted
        object.__setattr__(self, "chars", chars)
        object.__setattr__(self, "_codes", codes)
        object.__setattr__(self, "_sorted_codes", codes[order])
        object.__setattr__(self, "_ids_of_sorted", order.astype(self.dtype))
        object.__setattr__(self, "_unknown_id", chars.index(UNKNOWN) if UNKNOWN in chars else None)

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def unknown_id(self) -> int | None:
        return self._unknown_id

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer holding every id: a corpus costs 1-2 bytes per character."""
        if len(self) <= 1 << 8:
            return np.dtype(np.uint8)
        return np.dtype(np.uint16) if len(self) <= 1 << 16 else np.dtype(np.uint32)

    def encode(self, text: str) -> np.ndarray:
        """Ids of the text's characters; characters outside the vocabulary become unknown_id."""
        ids = np.empty(len(text), dtype=self.dtype)
        start = 0
        for points in _code_points(text):
            where = np.searchsorted(self._sorted_codes, points)
            where = np.minimum(where, len(self) - 1)  # past-the-end positions are misses too
            found = self._sorted_codes[where] == points
            chunk = self._ids_of_sorted[where]
            if not found.all():
                if self._unknown_id is None:
                    missing = self.missing(text)
                    shown = ", ".join(repr(char) for char in missing[:10])
                    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
                    raise CorpusError(f"The text has characters the vocabulary lacks: {shown}{more}.")
                chunk[~found] = self._unknown_id
            ids[start : start + len(points)] = chunk
            start += len(points)
        return ids

    def decode(self, ids) -> str:
        """Text of a list, numpy array or torch tensor of ids."""
        if hasattr(ids, "detach"):                       # a torch tensor, on any device
            ids = ids.detach().cpu().numpy()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}); got {ids.min()}..{ids.max()}")
        return self._codes[ids].tobytes().decode("utf-32-le", "surrogatepass")

    def missing(self, text: str) -> list[str]:
        """Distinct characters of text the vocabulary lacks, sorted by code point."""
        return sorted(set(text).difference(self.chars))

    def read(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """What a model reads of `text` (a prime, a scored or traced text): -> (int64 ids, the position in the text
        of each id). A character outside the vocabulary is read as the unknown symbol where the vocabulary has
        one, as encode() reads a training text; otherwise it is skipped, the model reading on from the one before."""
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        where = np.minimum(np.searchsorted(self._sorted_codes, points), len(self) - 1)
        found = self._sorted_codes[where] == points
        ids = self._ids_of_sorted[where].astype(np.int64)
        if self._unknown_id is not None:
            ids[~found] = self._unknown_id
            return ids, np.arange(len(ids))
        positions = np.flatnonzero(found)
        return ids[positions], positions

    def to_list(self) -> list[str]:
        return list(self.chars)

    @classmethod
    def from_list(cls, chars: list[str]) -> Vocab:
        return cls(tuple(chars))

    @classmethod
    def from_counts(cls, codes: np.ndarray, counts: np.ndarray, max_vocab: int) -> Vocab:
        """Every character if they fit; else the max_vocab - 1 most frequent plus UNKNOWN."""
        if max_vocab < 2:
            raise UserError(f"max_vocab must be at least 2, got {max_vocab}")
        if len(codes) > max_vocab:
            others = codes != ord(UNKNOWN)  # UNKNOWN is kept anyway; it must not take a slot twice
            codes, counts = codes[others], counts[others]
            most_frequent = np.argsort(-counts, kind="stable")[: max_vocab - 1]  # ties: lower code point
            codes = np.sort(np.append(codes[most_frequent], ord(UNKNOWN)))
        return cls(tuple(chr(code) for code in codes.tolist()))


@dataclass(frozen=True)
class CorpusStats:
    chars: int
    distinct: int  # distinct characters in the text (the vocabulary may hold fewer)
    lines: int
    words: int  # runs of non-whitespace
    encoding: str
    notice: str | None
    train_chars: int
    val_chars: int
    frequencies: list[tuple[str, int]]  # most common first, at most `top`
    preview: str  # the first ~600 characters


@dataclass(eq=False)  # eq would compare arrays element-wise and fail
class Corpus:
    text: str
    vocab: Vocab
    ids: np.ndarray  # the whole text encoded, dtype vocab.dtype (1-2 bytes per char)
    encoding: str  # e.g. "utf-8", "utf-8-sig", "utf-16", "cp1252"; "text" when given a str
    notice: str | None  # encoding or vocabulary notice for the user
    name: str = "corpus"
    val_fraction: float = 0.1

    def __post_init__(self):
        if not 0 < self.val_fraction <= 0.5:
            raise CorpusError(f"The validation fraction must be above 0 and at most 0.5; got {self.val_fraction}.")

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(train_ids, val_ids): validation is the last val_fraction of the text, so no window straddles both."""
        val_chars = max(1, round(len(self.ids) * self.val_fraction))
        cut = len(self.ids) - val_chars
        return self.ids[:cut], self.ids[cut:]

    def stats(self, top: int = 40) -> CorpusStats:
        codes, counts = _char_counts(self.text)
        most_common = np.argsort(-counts, kind="stable")[:top]
        is_space = np.array([char.isspace() for char in self.vocab.chars])[self.ids]
        # A word starts at a non-space character that opens the text or follows a space.
        words = int(np.count_nonzero(~is_space[1:] & is_space[:-1])) + int(is_space.size > 0 and not is_space[0])
        train_ids, val_ids = self.split()
        return CorpusStats(
            chars=len(self.text),
            distinct=len(codes),
            lines=self.text.count("\n") + (not self.text.endswith("\n")),
            words=words,
            encoding=self.encoding,
            notice=self.notice,
            train_chars=len(train_ids),
            val_chars=len(val_ids),
            frequencies=[(chr(codes[i]), int(counts[i])) for i in most_common],
            preview=self.text[:600],
        )


def load_corpus(
    data: bytes | str,
    name: str = "corpus",
    max_chars: int = DEFAULT_MAX_CHARS,
    max_vocab: int = MAX_VOCAB,
    val_fraction: float = 0.1,
    encoding: str | None = None,
) -> Corpus:
    """Validated, encoded text from an upload (bytes) or a paste (str); CorpusError says what is wrong.

    `encoding`: the bytes' encoding when a person chose it; None finds it (charlm.text.read).
    """
    text, encoding, notice = read_text(data, max_chars, encoding)
    vocab, vocab_notice = vocabulary(*_char_counts(text), len(text), max_vocab)
    notices = [notice, vocab_notice]
    return Corpus(
        text=text,
        vocab=vocab,
        ids=vocab.encode(text),
        encoding=encoding,
        notice=" ".join(notice for notice in notices if notice) or None,
        name=name,
        val_fraction=val_fraction,
    )


def vocabulary(codes: np.ndarray, counts: np.ndarray, n_chars: int, max_vocab: int) -> tuple[Vocab, str | None]:
    """The vocabulary of a text of n_chars characters with these distinct characters (codes) and their counts, and
    its notice for people (or None); CorpusError for a text of one character repeated."""
    if len(codes) == 1:
        raise CorpusError(
            f"The text uses only one distinct character ({chr(codes[0])!r}); a model has nothing to learn from it."
        )
    vocab = Vocab.from_counts(codes, counts, max_vocab)
    return vocab, _vocabulary_notice(codes, counts, vocab, n_chars)


def _vocabulary_notice(codes: np.ndarray, counts: np.ndarray, vocab: Vocab, n_chars: int) -> str | None:
    dropped = ~np.isin(codes, vocab._codes)
    if not dropped.any():
        return None
    share = counts[dropped].sum() / n_chars
    share_text = "under 0.1%" if share < 0.001 else f"{share:.1%}"
    return (
        f"The text has {len(codes):,} distinct characters; the vocabulary keeps the {len(vocab) - 1:,} most "
        f"common, and {int(dropped.sum()):,} rarer ones ({share_text} of the text) are shown as {UNKNOWN}."
    )
