"""Learn, part 8: Inside the cell."""

from __future__ import annotations

from app.learn import common

TITLE = "Inside the cell"
INTRO = "(being built)"

model = common.page_start(TITLE, INTRO)
