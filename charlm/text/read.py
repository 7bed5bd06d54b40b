"""bytes (an upload) or a paste -> validated text: the encoding found, newlines and NFC, binary and size refused.

Encodings: a byte-order mark, else UTF-8, else charset-normalizer's guess (Shift-JIS, GBK, Cyrillic,
Greek, UTF-16 without a mark...), else Windows-1252. A caller that knows better names the encoding.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from charlm.errors import UserError
from charlm.text import marks
from charlm.units import plural


class CorpusError(UserError):
    """A corpus the user gave cannot be used; the message says why and what to do."""


MIN_CHARS = 1_000  # fewer characters than this cannot train a model
DEFAULT_MAX_CHARS = 200_000_000  # size cap; callers (e.g. the hosted app) pass a smaller one
MAX_BYTES_PER_CHAR = 4  # raw uploads over 4 bytes per allowed character are refused undecoded
_CONTROL_SHARE_LIMIT = 0.10  # more control characters than this share means binary data
_CONTROL_SAMPLE_CHARS = 1_000_000  # the share is measured on the start of the text; binary is binary throughout
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # Cc, less \t \n \v \f \r

# Leading bytes of common non-text files: (pattern at the start, what it is, what to do). The app and the
# command line both show these messages: they say what to do with the file, not where to put it.
_EXTRACT = "Extract it and use the plain-text file inside."
_EXPORT = "Export or copy its text into a .txt file and use that."
_NOT_TEXT = "Use a plain-text (.txt) file instead."
_MAGIC = [
    (rb"%PDF-", "a PDF document", _EXPORT),
    (rb"PK(\x03\x04|\x05\x06)", "a ZIP archive (DOCX, EPUB and ODT files are ZIP archives too)", _EXPORT),
    (rb"\x1f\x8b", "a gzip-compressed file", _EXTRACT),
    (rb"\x89PNG\r\n\x1a\n", "a PNG image", _NOT_TEXT),
    (rb"\xff\xd8\xff", "a JPEG image", _NOT_TEXT),
    (rb"GIF8[79]a", "a GIF image", _NOT_TEXT),
    (rb"\x7fELF", "an ELF executable (a program)", _NOT_TEXT),
    (rb"7z\xbc\xaf\x27\x1c", "a 7z archive", _EXTRACT),
    (rb"Rar!\x1a\x07", "a RAR archive", _EXTRACT),
    (rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", "a bzip2-compressed file", _EXTRACT),
    (rb"\xfd7zXZ\x00", "an xz-compressed file", _EXTRACT),
    (rb"SQLite format 3\x00", "an SQLite database", _EXPORT),
    # "MZ" alone could start a sentence; a real executable has NUL bytes in its 64-byte header.
    (rb"MZ.{0,62}\x00", "a Windows executable (.exe or .dll)", _NOT_TEXT),
]

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
# The codec named decodes the whole data, mark included, and drops the mark.
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_SAVE_AS_UTF8 = "Save it as UTF-8 and try again."
_IF_WRONG = "If characters look wrong, name the file's encoding, or save it as UTF-8 and try again."
_LEGACY_NAMES = {
    "cp1252": "Windows-1252 (cp1252)", "latin-1": "Latin-1 (ISO-8859-1)",
    "cp932": "Shift-JIS (Japanese, cp932)", "shift_jis": "Shift-JIS (Japanese)", "euc_jp": "EUC-JP (Japanese)",
    "gb18030": "GB18030 (Chinese, a superset of GBK)", "gbk": "GBK (Chinese)", "gb2312": "GB2312 (Chinese)",
    "big5": "Big5 (Chinese)", "cp949": "CP949 (Korean)", "euc_kr": "EUC-KR (Korean)",
    "cp1251": "Windows-1251 (Cyrillic)", "koi8_r": "KOI8-R (Russian)", "cp866": "CP866 (Cyrillic, DOS)",
    "cp1253": "Windows-1253 (Greek)", "iso8859_7": "ISO-8859-7 (Greek)", "cp1255": "Windows-1255 (Hebrew)",
    "cp1256": "Windows-1256 (Arabic)", "tis_620": "TIS-620 (Thai)", "cp874": "CP874 (Thai)",
    "utf_16_le": "UTF-16 little-endian, without a byte-order mark",
    "utf_16_be": "UTF-16 big-endian, without a byte-order mark",
}
_GUESS_SAMPLE_BYTES = 256_000   # the detector reads the start of a file: a whole 20 MB upload would take seconds
# A guess whose letters are all Latin is left to Windows-1252: the detector confuses the close Latin code
# pages (it reads French as Central European, "cœur" as "cśur"), and Windows-1252 is the Western one.


def read_text(data: bytes | str, max_chars: int = DEFAULT_MAX_CHARS,
              encoding: str | None = None) -> tuple[str, str, str | None]:
    """-> (text, encoding_name, notice_or_None) of an upload (bytes) or a paste (str, encoding "text").

    `encoding` names the bytes' encoding when the caller knows it (None: found from the bytes).
    Raises CorpusError for binary data, an empty text, one under MIN_CHARS or one over max_chars.
    """
    if isinstance(data, str):
        # Measured before normalising: NFC's cost, not just the text's size, is what a cap bounds.
        _refuse_over(len(data), max_chars)
        text, encoding, notice = data, "text", None
    else:
        if len(data) > MAX_BYTES_PER_CHAR * max_chars:  # refuse cheaply, before decoding
            raise CorpusError(f"The file is {plural(len(data), 'byte')}; {_limit(max_chars)}")
        # No copy of bytes we were given: for a 100 MB upload that copy was a fifth of the peak memory.
        text, encoding, notice = _decoded(data if isinstance(data, bytes) else bytes(data), encoding)
        _refuse_over(len(text), max_chars)
    text = _normalise(text)
    _refuse_empty_or_binary(text)
    refuse_too_short(len(text))
    _refuse_over(len(text), max_chars)   # again: NFC lengthens a few characters (U+0344 becomes two)
    return text, encoding, notice


def refuse_too_short(chars: int) -> None:
    """CorpusError for a text of chars characters (a whole corpus, however it was read) too short to train on."""
    if chars < MIN_CHARS:
        raise CorpusError(f"The text has {plural(chars, 'character')}; at least {MIN_CHARS:,} are needed to train "
                          "a model. Use a longer text.")


def _refuse_over(chars: int, max_chars: int) -> None:
    if chars > max_chars:
        raise CorpusError(f"The text has {plural(chars, 'character')}; {_limit(max_chars)}")


def decode_bytes(data: bytes, encoding: str | None = None) -> tuple[str, str, str | None]:
    """-> (text, encoding_name, notice_or_None).

    `data.decode(encoding_name)` gives the text before newline and NFC normalisation. `encoding`, when
    given, is used as it is (a wrong one is an error, not a guess).
    Raises CorpusError for empty input and for binary data (naming the kind where it can).
    """
    text, encoding, notice = _decoded(data, encoding)
    text = _normalise(text)
    _refuse_empty_or_binary(text)
    return text, encoding, notice


def _decoded(data: bytes, encoding: str | None) -> tuple[str, str, str | None]:
    """(text as the bytes hold it, before any normalisation; encoding name; notice); binary kinds refused."""
    for pattern, kind, advice in _MAGIC:
        if re.match(pattern, data, re.DOTALL):  # re caches the compiled patterns
            raise CorpusError(f"This file looks like {kind}, not plain text. {advice}")
    return _decode(data) if encoding is None else _decode_as(data, encoding)


def _decode(data: bytes) -> tuple[str, str, str | None]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding, None
            except UnicodeDecodeError:
                name = encoding.upper().removesuffix("-SIG")
                message = f"The file has a {name} byte-order mark but is not valid {name}. {_SAVE_AS_UTF8}"
                raise CorpusError(message) from None
    utf16 = _utf16_without_mark(data)
    if utf16 is not None:
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError:
            pass
        else:
            return text, utf16, f"The file was read as {_LEGACY_NAMES[utf16]}. {_IF_WRONG}"
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    guessed = _guess(data)
    if guessed is not None:
        text, encoding = guessed
        return text, encoding, f"The file is not UTF-8; it was read as {_LEGACY_NAMES.get(encoding, encoding)}. {_IF_WRONG}"
    try:  # cp1252 leaves five bytes undefined; latin-1 decodes anything
        text, encoding = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "latin-1"
    return text, encoding, f"The file is not UTF-8; it was read as {_LEGACY_NAMES[encoding]}. {_IF_WRONG}"


def _utf16_without_mark(data: bytes) -> str | None:
    """'utf_16_le' or 'utf_16_be' when NUL bytes sit on one side of the byte pairs only, as the high bytes of
    spaces, digits and Latin letters do in UTF-16 (which is then valid UTF-8 too, NULs and all); else None."""
    sample = data[:_GUESS_SAMPLE_BYTES // 4]
    if len(sample) < 2 or len(data) % 2:
        return None
    even, odd = sample[0::2].count(0) / (len(sample) // 2), sample[1::2].count(0) / (len(sample) // 2)
    if odd > 0.1 and even < 0.01:
        return "utf_16_le"
    if even > 0.1 and odd < 0.01:
        return "utf_16_be"
    return None


def _guess(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) from charset-normalizer's guess on the start of data; None for Latin-script text or no guess."""
    from charset_normalizer import from_bytes   # imported on first use: most uploads are UTF-8

    best = from_bytes(data[:_GUESS_SAMPLE_BYTES]).best()
    if best is None:
        return None
    encoding = best.encoding
    letters = {c for c in str(best) if c.isalpha() and not c.isascii()}
    if all(unicodedata.name(c, "").startswith("LATIN") for c in letters):
        return None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:   # the start was not the whole story
        return None


def _decode_as(data: bytes, encoding: str) -> tuple[str, str, str | None]:
    """data in the encoding a person chose; CorpusError when Python does not know it, it is not one a text is
    saved in, or the bytes do not fit it."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise CorpusError(f"The encoding {encoding!r} is not one Python knows. {_TRY_ENCODINGS}") from None
    if not codec._is_text_encoding or codec.name in _NOT_FOR_TEXTS:
        why = _NOT_FOR_TEXTS.get(codec.name, "it turns bytes into bytes (or text into text), not bytes into text")
        raise CorpusError(f"The encoding {encoding!r} is not one a text file is saved in: {why}. {_TRY_ENCODINGS}")
    try:
        return data.decode(codec.name), codec.name, None
    except UnicodeDecodeError as err:
        raise CorpusError(f"The file is not valid {encoding}: the bytes at position {err.start:,} cannot be read "
                          "as it. Try another encoding, or let it be found from the file.") from None
    except UnicodeError:   # codecs whose errors carry no position (idna's are per label)
        raise CorpusError(f"The file is not valid {encoding}. Try another encoding, or let it be found from the "
                          "file.") from None


_TRY_ENCODINGS = "Try utf-8, cp1252, shift_jis, gbk, cp1251, cp1253 or utf-16-le."
# Text encodings to Python that no text file is saved in; punycode's decoder also takes quadratic time.
_NOT_FOR_TEXTS = {
    "undefined": "Python's 'undefined' codec refuses every byte",
    "punycode": "punycode is for domain names, and decoding a long text with it takes quadratic time",
    "idna": "idna is for domain names",
}


def _normalise(text: str) -> str:
    """Unix newlines and composed characters (NFC), so 'é' is one character however it was typed.

    What NFC cannot do in linear time is refused first: long runs of combining marks (charlm.text.marks).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    _refuse_lone_surrogates(text)
    _refuse_long_mark_runs(text)
    return _nfc(text)


_NFC_CHUNK = 1 << 16   # characters normalised per call: one call holds the interpreter's lock, so other visitors wait
_ASCII = re.compile("[\x00-\x7f]")


def _nfc(text: str) -> str:
    """NFC a piece at a time, each piece cut just before an ASCII character: no character composes with or
    reorders across one (it has combining class 0 and is never the second of a composed pair), so the pieces
    normalise exactly as the whole. A 5-million-character text of 30-mark runs held the lock for 0.8-2.4 s."""
    if text.isascii():
        return text
    pieces, start = [], 0
    while start < len(text):
        cut = _ASCII.search(text, start + _NFC_CHUNK) if start + _NFC_CHUNK < len(text) else None
        end = cut.start() if cut else len(text)
        pieces.append(unicodedata.normalize("NFC", text[start:end]))
        start = end
    return "".join(pieces)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(text: str) -> None:
    found = None if text.isascii() else _SURROGATE.search(text)
    if found:
        raise CorpusError(f"The text has a lone surrogate (U+{ord(found.group()):04X}) at character "
                          f"{found.start() + 1:,}: half of a UTF-16 pair, not a character. Save the text as UTF-8 "
                          "(or choose the encoding it is saved in) and try again.")


def _refuse_long_mark_runs(text: str) -> None:
    found = marks.long_run(text)
    if found:
        first, length = found
        raise CorpusError(
            f"The text has {plural(length, 'combining mark')} in a row (accents stacked on one letter) "
            f"from character {first + 1:,}; at most {marks.MAX_RUN} are accepted, as Unicode's stream-safe "
            "form allows, since longer runs are not writing and take a long time to normalise. "
            "Remove that run and try again.")


def _refuse_empty_or_binary(text: str) -> None:
    if not text or text.isspace():
        raise CorpusError("There is no text: the input is empty or only whitespace. Use a text with words in it.")
    advice = "If it is text, save it as UTF-8 and try again."
    # Checked on decoded text: UTF-16/32 bytes hold NULs legitimately, their characters do not.
    if "\x00" in text:
        raise CorpusError(f"This looks like binary data, not plain text (it contains NUL bytes). {advice}")
    sample = text[:_CONTROL_SAMPLE_CHARS]
    control_share = len(_CONTROL_CHARS.findall(sample)) / len(sample)
    if control_share > _CONTROL_SHARE_LIMIT:
        raise CorpusError(
            f"This looks like binary data, not plain text ({control_share:.0%} of its characters "
            f"are control codes). {advice}"
        )



def _limit(max_chars: int) -> str:
    return f"the limit is {plural(max_chars, 'character')}. Use a shorter text (or a part of it)."

