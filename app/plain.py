"""The one way a text from a file or a visitor is shown: literally, never as markdown.

Strings that come from outside (a model file's metadata, a file name, a pasted text's name, an error that
quotes them) are shown in one of two ways, and every page uses these two only:
- block(): a text on its own (a sample, a passage) goes in a code block, which Streamlit never reads as markdown;
- escape(): a name inside our own sentence (a caption, a heading, a message, a label) is escaped first.

Backslashes stop markdown's own syntax, but Streamlit 1.67 also rewrites the text after parsing: bare
addresses become links (GitHub's autolinks), `:material/name:`, `:streamlit:` and emoji codes become icons
and images, and ` -> `, ` <= ` and the like become arrows. Escaping cannot reach those, since they match the
parsed text, so an invisible zero-width space breaks each pattern: the page shows the same characters.
"""

from __future__ import annotations

import re

import streamlit as st

ZWSP = "\u200b"   # zero width: breaks a pattern without changing what a reader sees

# Every ASCII mark with a meaning in Streamlit's markdown: its syntax, directives (:red[...]), LaTeX ($) and
# character references (&amp;). Quotes have none, and stay as they are.
_SPECIAL = set("\\`*_{}[]()<>#+-.!|~$:&")
_BREAKS = (
    (re.compile(r":(?=\S)"), ":" + ZWSP),          # https://, :material/...:, :streamlit:, :smile: (not "a: b")
    (re.compile(r"(?i)www\."), lambda m: m.group()[:3] + ZWSP + "."),   # www.example.com
    (re.compile(r"@"), "@" + ZWSP),                # a@b.c, an email address
    (re.compile(r"([<>~-])(?=[<>=-])"), r"\1" + ZWSP),   # -> <- <-> -- >= <= ~= as typed, not arrows
)


def escape(text) -> str:
    """Text for a place where Streamlit reads markdown (st.markdown, captions, messages, labels), shown as it is."""
    text = str(text)
    for pattern, broken in _BREAKS:
        text = pattern.sub(broken, text)
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def block(text: str, slot=None) -> None:
    """A text on its own (model output, a visitor's text), exactly as it is: a code block, never markdown."""
    (slot or st).code("\n" + text + "\n", language=None, wrap_lines=True)
