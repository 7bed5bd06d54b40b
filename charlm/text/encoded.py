"""Large corpora: the text encoded once into a cache file beside the run, then memory-mapped by every process.

A corpus may be one file, several files or a folder; its files are read in sorted path order and joined
with SEPARATOR between them. The cache is a safetensors file holding one tensor, `ids` (one byte per
character, two above 256 distinct characters), with the vocabulary and the text's identity in its metadata.
Its name carries the sha256 of the files' bytes, so an unchanged corpus is found again without decoding a
byte, and a changed one gets a cache of its own. Processes map the ids read-only: the operating system keeps
one copy in its page cache for all of them, and no process holds the text.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from charlm.config import MAX_VOCAB
from charlm.files import sweep_stale, writing_atomically
from charlm.text.corpus import Corpus, Vocab, _char_counts, vocabulary
from charlm.text.read import CorpusError, decode_bytes, refuse_too_short
from charlm.units import plural

SEPARATOR = "\n\n"          # between the files of a corpus: a blank line
CACHE_FROM_BYTES = 32 << 20  # a single file this large is cached; smaller ones are read into memory as before
FORMAT, VERSION = "charlm-corpus", 1
SUFFIX = ".corpus"
_CHUNK_CHARS = 1 << 23       # characters counted or encoded at a time: memory stays flat, progress moves
_READ_BYTES = 1 << 24        # bytes hashed at a time
_MAX_HEADER = 1 << 20        # a cache's JSON header is a few KB (the vocabulary); more is damage
_DTYPES = {"U8": np.uint8, "U16": np.uint16}

Progress = Callable[[str, float], None]   # (what is being done, fraction of the whole job done)


@dataclass(eq=False)
class EncodedCorpus:
    """A corpus read from its cache: the vocabulary and memory-mapped ids, and no text in memory."""
    vocab: Vocab
    ids: np.ndarray           # read-only memory map, dtype vocab.dtype
    name: str
    text_sha256: str          # of the joined text in UTF-8: the identity a model file records
    encoding: str
    notice: str | None
    path: Path                # the cache file
    val_fraction: float = 0.1
    key: str | None = None    # the key in the name it was written under: the sha256 of its files' bytes, cut

    split = Corpus.split      # the same train/validation cut as a corpus in memory

    def in_memory(self) -> Corpus:
        """The text back in memory as a Corpus (for starting from a trained model, which re-encodes it)."""
        text = "".join(self.vocab.decode(self.ids[i:i + _CHUNK_CHARS]) for i in range(0, len(self.ids), _CHUNK_CHARS))
        return Corpus(text=text, vocab=self.vocab, ids=np.array(self.ids), encoding=self.encoding,
                      notice=self.notice, name=self.name, val_fraction=self.val_fraction)


def identity(corpus: Corpus | EncodedCorpus) -> dict:
    """Which text a model learnt from (name, sha256 of its UTF-8, characters, validation share), so a tool
    can tell whether the text at hand is that one; a cached corpus's was measured when it was encoded."""
    if isinstance(corpus, EncodedCorpus):
        sha, chars = corpus.text_sha256, len(corpus.ids)
    else:
        sha, chars = hashlib.sha256(corpus.text.encode()).hexdigest(), len(corpus.text)
    return {"corpus": corpus.name, "corpus_sha256": sha, "corpus_chars": chars, "val_fraction": corpus.val_fraction}


def corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files a corpus is made of (found_files' files, without its notes)."""
    return found_files(paths)[0]


def found_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """-> (files, notes): each file given, and every file under each folder given (hidden ones, whose names start
    with a dot, left out), once each, in sorted path order; and ("warning" or "note", message) for what a folder
    held that was left out: links leading out of it, empty files, and pipes, sockets or devices."""
    found: dict[str, Path] = {}
    notes = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside, skipped = _folder_files(path)
            notes += [(level, f"{message} in the folder {given}") for level, message in skipped]
            if not inside:
                raise CorpusError(f"the folder {given} holds no files to read" + (
                    f" ({'; '.join(message for _, message in skipped)})" if skipped else ""))
            for file in inside:
                found.setdefault(file.resolve().as_posix(), file)
        elif path.is_file():
            found.setdefault(path.resolve().as_posix(), path)
        elif path.exists():   # never opened: reading a FIFO would wait for a writer that may never come
            raise CorpusError(f"{given} is {kind_of(path)}, not a file; save the text to a file and give that")
        else:
            raise CorpusError(f"no such file or folder: {given}")
    return [found[key] for key in sorted(found)], notes


def _folder_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The regular, non-empty files under folder whose links stay inside it, and what was left out, said once
    per kind and naming each file."""
    root = folder.resolve()
    kept, outside, empty, odd = [], [], [], []
    for path in sorted(folder.rglob("*")):   # rglob does not descend into linked folders
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            outside.append(relative.as_posix())   # a link out of the folder could read any file the user can
        elif path.is_dir() or not path.exists():   # a folder is walked by rglob; a link leading nowhere is nothing
            continue
        elif not path.is_file():
            odd.append(f"{relative.as_posix()} ({kind_of(path)})")
        elif path.stat().st_size == 0:
            empty.append(relative.as_posix())
        else:
            kept.append(path)
    skipped = []
    if outside:
        skipped.append(("warning", f"skipped {plural(len(outside), 'link')} leading outside the folder: "
                                   f"{', '.join(outside)}"))
    if empty:
        skipped.append(("note", f"skipped {plural(len(empty), 'empty file')}: {', '.join(empty)}"))
    if odd:
        skipped.append(("note", f"skipped what is not a file: {', '.join(odd)}"))
    return kept, skipped


def kind_of(path: Path) -> str:
    """What a path that exists but is neither a file nor a folder is, in words."""
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "an unusual kind of file"


def corpus_name(paths: Sequence[str | Path], files: list[Path]) -> str:
    """What a corpus is called in messages and model files: its file's or folder's name."""
    if len(paths) == 1:
        return Path(paths[0]).resolve().name if Path(paths[0]).is_dir() else files[0].name
    return f"{files[0].name} and {len(files) - 1} more"


def wants_cache(files: list[Path]) -> bool:
    """Whether to encode into a cache rather than read into memory: several files, or one large one."""
    return len(files) > 1 or files[0].stat().st_size >= CACHE_FROM_BYTES


def cache_path(files: list[Path], folder: Path, name: str, encoding: str | None = None) -> Path:
    """Where the cache of these files lives in folder: named after the corpus and the sha256 of its bytes
    (and of how they are read), so nothing needs decoding to find it."""
    key = hashlib.sha256(f"{FORMAT} {VERSION} {encoding} {MAX_VOCAB} {SEPARATOR!r}".encode())
    for file in files:
        key.update(struct.pack("<Q", file.stat().st_size))   # lengths keep file borders part of the key
        with open(file, "rb") as f:
            while block := f.read(_READ_BYTES):
                key.update(block)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "corpus"
    return folder / f"{stem}.{key.hexdigest()[:16]}{SUFFIX}"


def prepare(files: list[Path], path: Path, name: str, encoding: str | None = None,
            on_progress: Progress | None = None) -> Path:
    """The cache at path, encoded now if it is not there (or is damaged); CorpusError says what is wrong."""
    if path.exists():
        try:
            found = open_cache(path)
            check(found)
            # Named for these files' bytes but written for others (a cache renamed or copied in): made again.
            if found.key == _key_in_name(path):
                return path
        except CorpusError:
            pass
        path.unlink(missing_ok=True)   # damaged, or not these files' text: made again below
    sweep_stale(path)   # what a run killed while encoding left
    encode(files, path, name, encoding, on_progress)
    return path


def encode(files: list[Path], path: Path, name: str, encoding: str | None = None,
           on_progress: Progress | None = None) -> None:
    """Read, check and encode the files into a cache at path, in two passes over the text (count, then
    encode) a chunk at a time; one file's text is held at once, and the cache appears whole or not at all."""
    report = on_progress or (lambda what, fraction: None)
    kept = []   # a single file's text is kept between the passes rather than read twice
    counts = np.zeros(0x110000, dtype=np.int64)   # one slot per code point, as corpus counts them
    sha = hashlib.sha256()
    chars, encodings, notices = 0, [], []
    for i, (file, text, found, notice) in enumerate(_decoded(files, encoding)):
        if i:   # the separator is part of the text the model reads, and of its sha256
            for char in SEPARATOR:
                counts[ord(char)] += 1
            sha.update(SEPARATOR.encode())
            chars += len(SEPARATOR)
        for start in range(0, len(text), _CHUNK_CHARS):
            chunk = text[start:start + _CHUNK_CHARS]
            codes, chunk_counts = _char_counts(chunk)
            counts[codes] += chunk_counts
            sha.update(chunk.encode())
            report(f"counting {file.name}", 0.5 * (i + (start + len(chunk)) / len(text)) / len(files))
        chars += len(text)
        encodings.append(found)
        if notice:
            notices.append(notice if len(files) == 1 else f"{file.name}: {notice}")
        if len(files) == 1:
            kept.append((file, text))
        del text   # let it go before the next file is decoded
    vocab, notice = _vocabulary(counts, chars)
    meta = {"format": FORMAT, "version": VERSION, "name": name, "vocab": vocab.to_list(), "chars": chars,
            "text_sha256": sha.hexdigest(), "encoding": "+".join(dict.fromkeys(encodings)),
            "notice": " ".join(n for n in notices + [notice] if n) or None, "files": [f.name for f in files],
            "key": _key_in_name(path)}
    separator = vocab.encode(SEPARATOR).tobytes() if len(files) > 1 else b""
    with writing_atomically(path) as f:
        f.write(_header(meta, vocab.dtype, chars))
        written = 0
        for i, (file, text) in enumerate(kept or ((file, text) for file, text, _, _ in _decoded(files, encoding))):
            if i:
                f.write(separator)
                written += len(SEPARATOR)
            for start in range(0, len(text), _CHUNK_CHARS):
                chunk = vocab.encode(text[start:start + _CHUNK_CHARS])   # (chars,) vocab.dtype
                f.write(chunk.tobytes())
                written += len(chunk)
                report(f"encoding {file.name}", 0.5 + 0.5 * written / chars)
            del text
        if written != chars:   # a file changed between the passes
            raise CorpusError("a file of the corpus changed while it was being read; run again")


def open_cache(path: Path, val_fraction: float = 0.1) -> EncodedCorpus:
    """The corpus in a cache file, its ids memory-mapped read-only; CorpusError when the file is damaged."""
    damaged = f"the encoded corpus {path} is damaged; delete it and run again"
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > _MAX_HEADER:
                raise CorpusError(damaged)
            header = json.loads(f.read(size))
        meta = json.loads(header["__metadata__"]["charlm"])
        entry = header["ids"]
        dtype, chars = np.dtype(_DTYPES[entry["dtype"]]), meta["chars"]
        if len(meta["vocab"]) > MAX_VOCAB:   # encode never writes one: a crafted file would build a model past the cap
            raise CorpusError(damaged)
        vocab = Vocab.from_list(meta["vocab"])
        if (meta["format"], meta["version"]) != (FORMAT, VERSION) or dtype != vocab.dtype \
                or entry["shape"] != [chars] or entry["data_offsets"] != [0, chars * dtype.itemsize] \
                or path.stat().st_size != 8 + size + chars * dtype.itemsize:
            raise CorpusError(damaged)
        ids = np.memmap(path, dtype=dtype, mode="r", offset=8 + size, shape=(chars,))
        return EncodedCorpus(vocab=vocab, ids=ids, name=str(meta["name"]), text_sha256=str(meta["text_sha256"]),
                             encoding=str(meta["encoding"]), notice=meta["notice"], path=path,
                             val_fraction=val_fraction, key=meta.get("key"))
    except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
        if isinstance(err, CorpusError):
            raise
        raise CorpusError(damaged) from None


def check(corpus: EncodedCorpus) -> None:
    """Every id is one of the vocabulary's (read a chunk at a time); CorpusError when one is not."""
    for start in range(0, len(corpus.ids), _CHUNK_CHARS):
        if int(corpus.ids[start:start + _CHUNK_CHARS].max()) >= len(corpus.vocab):
            raise CorpusError(f"the encoded corpus {corpus.path} is damaged; delete it and run again")


def _key_in_name(path: Path) -> str:
    """The key cache_path put in a cache's name (NAME.<16 hex>.corpus)."""
    return path.name.removesuffix(SUFFIX).rpartition(".")[2]


def _vocabulary(counts: np.ndarray, chars: int) -> tuple[Vocab, str | None]:
    """The vocabulary of a text with these character counts, as load_corpus makes it, and its notice."""
    refuse_too_short(chars)
    codes = np.flatnonzero(counts)
    return vocabulary(codes, counts[codes], chars, MAX_VOCAB)


def _header(meta: dict, dtype: np.dtype, chars: int) -> bytes:
    """A safetensors header for one tensor `ids` of chars elements, with meta as JSON in its metadata."""
    header = {"__metadata__": {"charlm": json.dumps(meta, ensure_ascii=False)},
              "ids": {"dtype": f"U{8 * dtype.itemsize}", "shape": [chars], "data_offsets": [0, chars * dtype.itemsize]}}
    raw = json.dumps(header, ensure_ascii=False).encode()
    raw += b" " * (-len(raw) % 8)   # safetensors pads its header with spaces, so the data is aligned
    return struct.pack("<Q", len(raw)) + raw


def _decoded(files: list[Path], encoding: str | None) -> Iterator[tuple[Path, str, str, str | None]]:
    """(file, text, encoding found, notice) for each file, read and decoded one at a time."""
    for file in files:
        try:
            text, found, notice = decode_bytes(file.read_bytes(), encoding)
        except CorpusError as err:
            if len(files) == 1:
                raise
            raise CorpusError(f"{file}: {err}") from None
        yield file, text, found, notice
