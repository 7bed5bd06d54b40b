"""Learn, part 7: What it looked back at."""

from __future__ import annotations

from app.learn import common

TITLE = "What it looked back at"
INTRO = "(being built)"

model = common.page_start(TITLE, INTRO)
