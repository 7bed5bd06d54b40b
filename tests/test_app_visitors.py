"""The sweeper: a session gone for the grace period is released (jobs, folder, memory), whoever else connects."""

from __future__ import annotations

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
