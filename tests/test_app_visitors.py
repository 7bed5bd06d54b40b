"""The registry of visitors: a session gone for the grace period is released (jobs, folder, memory), whoever else
connects; a new session of a browser adopts that browser's last disconnected session and nothing else."""

from __future__ import annotations

import re

from app import state, visitors


class FakeSessionState:
    """What the sweeper uses of Streamlit's SafeSessionState: membership, items and their deletion."""

    def __init__(self, **items):
        self.items = dict(items)

    @property
    def filtered_state(self) -> dict:
        return dict(self.items)

    def __contains__(self, key):
        return key in self.items

    def __getitem__(self, key):
        return self.items[key]

    def __delitem__(self, key):
        del self.items[key]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_disconnected_session_is_released_after_the_grace_period_and_not_before():
    folder = state._VisitorDir()
    session = FakeSessionState(visitor_dir=folder, corpus="a big text", uploaded_models={"m": "weights"})
    active = {"alice": True}
    clock = Clock()
    sweeper = visitors.Visitors(grace_s=120, is_active=lambda sid: active[sid], clock=clock)
    sweeper.track("alice", session)

    clock.now = 500
    assert sweeper.sweep() == []                  # connected: kept however long
    active["alice"] = False
    assert sweeper.sweep() == []                  # just left: the grace period starts now
    clock.now = 619
    assert sweeper.sweep() == [] and folder.path.exists() and session.items
    clock.now = 620
    assert sweeper.sweep() == [session]
    assert not folder.path.exists()
    assert session.items == {}                    # the text and models are dropped
    assert sweeper.tracked() == 0


def test_a_session_that_reconnects_within_the_grace_period_is_kept():
    session = FakeSessionState(corpus="text")
    active = {"bob": False}
    clock = Clock()
    sweeper = visitors.Visitors(grace_s=60, is_active=lambda sid: active[sid], clock=clock)
    sweeper.track("bob", session)
    sweeper.sweep()                               # gone since 0
    clock.now = 50
    active["bob"] = True
    sweeper.sweep()                               # back
    active["bob"] = False
    clock.now = 100
    assert sweeper.sweep() == []                  # gone again since 100, not since 0
    clock.now = 160
    assert sweeper.sweep() == [session] and session.items == {}


def test_release_stops_the_visitors_running_job_before_removing_its_folder(periodic_corpus):
    from charlm.train.jobs import TrainingJob
    from charlm.presets import PRESETS

    folder = state._VisitorDir()
    tiny = PRESETS["tiny"]
    job = TrainingJob(periodic_corpus, "tiny", tiny.model_config(len(periodic_corpus.vocab)),
                      tiny.train_config(minutes=5, device="cpu"), workdir=folder.path / "job")
    folder.jobs.append(job)
    job.start()
    state.release(FakeSessionState(visitor_dir=folder))
    assert not job.is_alive() and job.snapshot().status == "stopped"
    assert not folder.path.exists()


# --- sessions by browser ------------------------------------------------------------------------

def browsers(grace_s=120):
    """A registry whose sessions are connected while in `active`, on a fake clock: -> (registry, active, clock)."""
    active, clock = set(), Clock()
    return visitors.Visitors(grace_s, is_active=lambda sid: sid in active, clock=clock), active, clock


def test_a_key_is_long_and_random_and_the_registry_keeps_only_digests():
    registry, _, _ = browsers()
    keys = {visitors.new_key() for _ in range(50)}
    assert len(keys) == 50 and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", key) for key in keys)   # 256 bits
    for i, key in enumerate(keys):
        registry.track(f"s{i}", FakeSessionState(), key, token=f"old-token-{i:040d}")
    kept = repr(vars(registry))
    assert not any(key in kept for key in keys) and "old-token" not in kept
    assert all(registry.knows(key) for key in keys)


def test_a_reload_adopts_the_browsers_disconnected_session_which_is_then_no_longer_swept():
    folder = state._VisitorDir()
    first = FakeSessionState(visitor_dir=folder, corpus="a text")
    registry, active, clock = browsers(grace_s=120)
    key = visitors.new_key()
    active.add("first")
    registry.track("first", first, key)

    active.discard("first")                       # the page reloads: the old session is disconnected …
    registry.sweep()
    clock.now = 100
    active.add("second")
    second = FakeSessionState()
    assert registry.adopt(key, "second", second) is first   # … and the new one, from the same browser, takes it
    assert registry.owns(key, "second") and not registry.owns(key, "first")
    assert registry.adopt(key, "third", FakeSessionState()) is None   # once: the second tab is connected

    clock.now = 10_000                            # long after the old session's grace period
    assert registry.sweep() == []                 # no longer tracked: nothing of the visitor's is released
    assert folder.path.exists() and first.items["corpus"] == "a text"
    active.discard("second")
    registry.sweep()
    clock.now = 10_120
    assert registry.sweep() == [second] and registry.tracked() == 0
    assert not registry.knows(key)                # swept with its last session: a cookie holding it starts afresh
    assert registry.adopt(key, "fourth", FakeSessionState()) is None


def test_a_session_still_open_in_another_tab_is_never_adopted():
    registry, active, _ = browsers()
    key = visitors.new_key()
    active.update({"tab1", "tab2"})
    registry.track("tab1", FakeSessionState(corpus="text"), key)
    assert registry.adopt(key, "tab2", FakeSessionState()) is None   # a second tab of the browser starts afresh
    registry.track("tab2", FakeSessionState(), key)
    assert registry.tracked() == 2 and registry.owns(key, "tab1") and registry.owns(key, "tab2")
    assert registry.adopt(key, "tab1", FakeSessionState()) is None   # nor does a session adopt itself


def test_of_several_disconnected_sessions_the_one_that_ran_last_is_adopted_then_the_next():
    registry, active, clock = browsers()
    key = visitors.new_key()
    older, newer = FakeSessionState(corpus="older"), FakeSessionState(corpus="newer")
    registry.track("older", older, key)
    clock.now = 10
    registry.track("newer", newer, key)
    clock.now = 20
    registry.track("older", older, key)           # the older tab ran again, last: it is the one the visitor left last
    clock.now = 30
    assert registry.adopt(key, "r1", FakeSessionState()) is older
    active.add("r1")
    assert registry.adopt(key, "r2", FakeSessionState()) is newer   # a restored second tab gets the other
    active.add("r2")
    assert registry.adopt(key, "r3", FakeSessionState()) is None


def test_another_browsers_key_or_a_made_up_one_reaches_nothing():
    registry, active, _ = browsers()
    alice, bob = visitors.new_key(), visitors.new_key()
    registry.track("alice-tab", FakeSessionState(corpus="alice's"), alice)
    registry.track("bob-tab", FakeSessionState(corpus="bob's"), bob)
    made_up = alice[:-1] + ("A" if alice[-1] != "A" else "B")
    assert not registry.knows(made_up) and not registry.knows("")
    assert registry.adopt(made_up, "mallory", FakeSessionState()) is None
    assert registry.adopt(bob, "bob-reload", FakeSessionState()).items == {"corpus": "bob's"}   # his own only
    active.add("bob-reload")
    assert registry.adopt(bob, "bob-again", FakeSessionState()) is None
    assert registry.owns(alice, "alice-tab") and registry.tracked() == 2


def test_an_old_addresss_token_picks_its_session_only_in_its_own_browser():
    registry, active, clock = browsers()
    alice, bob = visitors.new_key(), visitors.new_key()
    named, latest = FakeSessionState(corpus="named"), FakeSessionState(corpus="latest")
    registry.track("named", named, alice, token="the-old-token")
    clock.now = 10
    registry.track("latest", latest, alice)
    registry.track("bob-tab", FakeSessionState(corpus="bob's"), bob)

    assert registry.adopt(visitors.new_key(), "stranger", FakeSessionState(), "the-old-token") is None
    bob_reload = registry.adopt(bob, "bob-reload", FakeSessionState(), "the-old-token")
    assert bob_reload.items == {"corpus": "bob's"}   # the token is ignored: Bob gets his own session, not Alice's
    alice1, alice2, alice3 = FakeSessionState(), FakeSessionState(), FakeSessionState()
    clock.now = 20
    assert registry.adopt(alice, "alice-1", alice1, "the-old-token") is named   # not the one that ran last
    active.add("alice-1")
    assert registry.adopt(alice, "alice-2", alice2, "the-old-token") is latest  # its holder is open: ignored
    active.add("alice-2")
    active.discard("alice-1")                     # the token went with its session: a reload of that tab …
    assert registry.adopt(alice, "alice-3", alice3, "the-old-token") is alice1   # … still finds it by the token

    registry.restart("alice-3", alice3)           # Start afresh: the old address no longer reaches it
    clock.now = 30
    registry.track("alice-2", alice2, alice)      # alice-2 runs last, then both tabs close
    active.discard("alice-2")
    assert registry.adopt(alice, "alice-4", FakeSessionState(), "the-old-token") is alice2
