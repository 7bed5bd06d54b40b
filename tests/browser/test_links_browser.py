"""In real Chromium: a Learn part's share link opens the same part, model, text and settings in a fresh browser
context, and a published model's link lets a fresh visitor write with it and open the Surprise map on it."""

from __future__ import annotations

import re
from .browsing import REPO, expect, go_to, main, settle, visit


def copied_link(page) -> str:
    page.get_by_test_id("stSidebar").get_by_role("button", name="Copy link").click()
    block = page.get_by_test_id("stPopoverBody").locator("code")
    expect(block).to_be_visible()
    link = block.inner_text().strip()
    page.keyboard.press("Escape")
    return link


def test_a_learn_parts_link_opens_the_same_view_in_a_fresh_browser(server, browser):
    teacher = visit(browser, f"{server}/text-to-numbers")
    settle(teacher)
    teacher.get_by_role("combobox", name="Model to explore").click()
    teacher.get_by_role("option", name="Python docs model (shipped)", exact=True).click()
    settle(teacher)
    box = main(teacher).get_by_role("textbox", name="Type or edit a sentence")
    box.fill("def f(x): return 42")
    box.press("Enter")
    settle(teacher)
    link = copied_link(teacher)
    assert link.startswith(f"{server}/text-to-numbers?") and "session" not in link

    student = visit(browser, link)
    settle(student)
    expect(student.get_by_role("heading", name="Text to numbers", level=1)).to_be_visible()
    expect(main(student).get_by_role("combobox", name="Model to explore")).to_have_value("Python docs model (shipped)")
    expect(main(student).get_by_role("textbox", name="Type or edit a sentence")).to_have_value("def f(x): return 42")
    expect(main(student).get_by_test_id("stCode").nth(1)).to_have_text("def f(x): return 42")   # the indices, back
    expect(student).not_to_have_url(re.compile("model="))   # applied once: the link's values left the address


def test_a_published_models_link_lets_a_fresh_visitor_write_and_read_its_surprise_map(server, browser):
    owner = visit(browser, server)
    settle(owner)
    go_to(owner, "Train")
    owner.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "class.safetensors", "mimeType": "application/octet-stream",
                "buffer": (REPO / "checkpoints" / "seed-2017.safetensors").read_bytes()}])
    settle(owner)
    go_to(owner, "Generate")
    owner.get_by_role("combobox", name="Model").click()
    owner.get_by_role("option", name="Uploaded: class.safetensors", exact=True).click()
    settle(owner)
    main(owner).get_by_role("button", name="Publish to the class").click()
    owner.get_by_test_id("stPopoverBody").get_by_role("button", name="Publish", exact=True).click()
    settle(owner)
    link = copied_link(owner)
    assert "model=p-" in link and "session" not in link

    student = visit(browser, link)
    settle(student)
    chosen = main(student).get_by_role("combobox", name="Model")
    expect(chosen).to_have_value(owner.get_by_role("combobox", name="Model").input_value())
    main(student).get_by_role("button", name="Write").click()
    settle(student)
    expect(main(student).get_by_test_id("stCode").first).to_contain_text("The ")
    go_to(student, "Surprise map")
    expect(main(student).get_by_role("combobox", name="Model to explore")).to_have_value(chosen.input_value())
    expect(main(student).get_by_test_id("stVegaLiteChart").first).to_be_visible()
