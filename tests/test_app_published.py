"""App tests (AppTest) for publishing a model to the class (app/published.py): published from Generate, reached by
another visitor's link (Generate and the Learn parts), never offered to train from; capped, expiring, withdrawn."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app import published

from helpers import APP, choose_text


@pytest.fixture(autouse=True)
def _fresh(app_env):
    published.clear()
    yield
    published.clear()


def owner_with_upload(trained) -> AppTest:
    """A visitor who uploaded the trained model on the Train page and chose it on Generate."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app/pages/train.py").run()
    at.file_uploader(key="checkpoint_upload").set_value(("cat.pt", trained.path.read_bytes(), "application/octet-stream"))
    at.run()
    at.switch_page("app/pages/generate.py").run()
    at.selectbox(key="gen_model").set_value(upload_key(at)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload_key(at: AppTest) -> str:
    return next(iter(at.session_state["uploaded_models"]))


def publish(at: AppTest) -> str:
    at.button(key="publish_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at.session_state["gen_model"]


def visit(params: dict, page: str = "generate") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    if page != "generate":
        for name, value in params.items():
            at.query_params[name] = value
        at.switch_page(f"app/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_published_model_reaches_another_visitor_by_its_link_for_writing_and_every_learn_part(trained):
    owner = owner_with_upload(trained)
    assert any(m.value.startswith("This model lives in your session only, which a link never carries. Publish it")
               for m in owner.sidebar.markdown)   # no link to a model of one's own session
    key = publish(owner)
    assert key.startswith("p-") and len(key) >= 2 + 8
    assert not owner.error
    assert owner.selectbox(key="gen_model").value == key   # chosen, ready to share: its link is in the sidebar
    link = [m.value for m in owner.sidebar.markdown if m.value.startswith("```text")][0]
    assert f"model={key}" in link and "session" not in link

    student = visit({"model": key})
    assert student.selectbox(key="gen_model").value == key
    assert student.text[0].value.startswith("preset tiny · ")   # its summary, as plain text
    student.text_area(key="gen_prime").set_value("the cat ")
    student.number_input(key="gen_seed").set_value(3)
    student.button(key="write").click().run()
    assert not student.exception and student.code[0].value.startswith("the cat ")
    assert len(student.code[0].value) > len("the cat ")
    assert "publish_model" not in [b.key for b in student.button]   # it is not theirs to publish again
    assert "uploaded_models" not in student.session_state and "job" not in student.session_state   # not the owner's

    surprise = visit({"model": key}, "learn/surprise_map")
    assert surprise.selectbox(key="learn_model").value == key
    assert not surprise.warning and not surprise.error

    train = visit({})
    train.session_state["published_seen"] = [key]
    choose_text(train)
    assert key not in train.selectbox(key="train_start_from").options   # never trained over
    assert all(not o.startswith("Published") for o in train.selectbox(key="train_start_from").options)


def test_caps_per_visitor_and_per_server(trained, monkeypatch):
    monkeypatch.setenv("CHARLM_PUBLISH_MAX_PER_VISITOR", "1")
    owner = owner_with_upload(trained)
    publish(owner)
    owner.selectbox(key="gen_model").set_value(upload_key(owner)).run()
    owner.button(key="publish_model").click().run()
    assert [e.value for e in owner.error] == [
        "You have published 1 models, as many as a visitor may at once (CHARLM_PUBLISH_MAX_PER_VISITOR): "
        "withdraw one first."]

    monkeypatch.setenv("CHARLM_PUBLISH_MAX_PER_VISITOR", "5")
    monkeypatch.setenv("CHARLM_PUBLISH_MAX_MODELS", "1")
    other = owner_with_upload(trained)
    other.button(key="publish_model").click().run()
    assert [e.value for e in other.error] == [
        "This server holds 1 published models, as many as it may (CHARLM_PUBLISH_MAX_MODELS): try again when one "
        "has expired or been withdrawn."]

    monkeypatch.setenv("CHARLM_PUBLISH_MAX_MODELS", "10")
    monkeypatch.setenv("CHARLM_PUBLISH_MAX_MB", "0.001")
    other.button(key="publish_model").click().run()
    assert [e.value for e in other.error] == [
        "Published models would hold more than 0.001 MB on this server (CHARLM_PUBLISH_MAX_MB): try again when "
        "one has expired or been withdrawn."]


def test_a_published_model_expires_after_its_time(trained, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(published, "now", lambda: clock[0])
    monkeypatch.setenv("CHARLM_PUBLISH_TTL_S", "3600")
    key = publish(owner_with_upload(trained))
    clock[0] += 3599
    assert visit({"model": key}).selectbox(key="gen_model").value == key
    clock[0] += 2
    late = visit({"model": key})
    assert [w.value for w in late.warning] == [
        "This link's model is not on this server (a published model is withdrawn by its owner or expires): the "
        "page opens on another model, with its own defaults."]
    assert late.selectbox(key="gen_model").value == "shipped"
    assert key not in late.selectbox(key="gen_model").options


def test_the_owner_withdraws_it_and_its_link_stops_working(trained):
    owner = owner_with_upload(trained)
    key = publish(owner)
    student = visit({"model": key})
    owner.button(key=f"withdraw_{key}").click().run()
    assert not owner.exception
    assert key not in owner.selectbox(key="gen_model").options
    assert published.find(key) is None
    student.run()
    assert key not in student.selectbox(key="gen_model").options   # gone from the lists of those who had it
    assert visit({"model": key}).warning
    assert not published.withdraw(key)   # nothing left to withdraw
