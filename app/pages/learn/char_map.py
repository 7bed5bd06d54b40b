"""Learn, part 9: Character map."""

from __future__ import annotations

from app.learn import common

TITLE = "Character map"
INTRO = "(being built)"

model = common.page_start(TITLE, INTRO)
