"""2017 vs today: the 2017 tutorial's design and today's default, trained for the same minutes on the same text."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import streamlit as st

from app import charts, models, plain, state, training
from app import settings as settings_mod
from app.learn import figures, lab, path
from charlm.modelfile import checkpoint
from charlm.train import jobs
from charlm.presets import DEFAULT_PRESET, PRESETS
from charlm.units import format_duration

TITLE = "2017 vs today"
INTRO = (
    "In 2017 a typical tutorial cut the text into 100-character **windows**, fed each character to an "
    "LSTM(256) as a single number (its index divided by the vocabulary size), and asked it to predict only "
    "the one character after each window; to write, it re-read the whole window for every new character. "
    "Today's default reads the text as one long stream, carries its memory from one chunk to the next, gives "
    "each character a learned **embedding**, and learns from every position at once, with a learning-rate "
    "schedule. Same text, same minutes: which one learns more?"
)
DESIGNS = (("seed-2017", "2017 design"), (DEFAULT_PRESET, "today's default"))   # (preset, label), same order as
SHIPPED_KEYS = {"seed-2017": "shipped:seed-2017", DEFAULT_PRESET: "shipped"}  # the shipped pair's models
RACE = "then_and_now_race"


@dataclass
class Race:
    """The two designs training on the visitor's text, apart from the Train page's job."""
    jobs: dict[str, jobs.TrainingJob]   # label -> job, in DESIGNS' order
    minutes: float
    corpus_name: str


def eval_interval_s(minutes: float) -> float:
    """About ten evaluations a run, every 3 to 30 seconds: a race is watched as two curves, so it scores more
    often than a run on the Train page does."""
    return min(30.0, max(3.0, minutes * 60 / 10))


def curve(history: list[dict]) -> list[tuple[float, float]]:
    """(minutes of training, validation nats/char) at each evaluation."""
    return [(row["elapsed_s"] / 60, row["val_loss"]) for row in history
            if isinstance(row.get("elapsed_s"), (int, float)) and isinstance(row.get("val_loss"), (int, float))]


def last_sample(history: list[dict]) -> str | None:
    samples = [row["sample"] for row in history if row.get("sample")]
    return samples[-1] if samples else None


def side_by_side(entries: list[tuple[str, list[dict], str]], race: list[jobs.TrainingJob] | None = None) -> None:
    """The curves on one chart, then each run's figures and last sample in its own column.

    entries: (label, history rows, a line describing the run); race: the visitor's jobs behind them, whose
    models can be downloaded once they have ended.
    """
    chart = charts.runs_chart([(label, curve(history)) for label, history, _ in entries])
    if chart is not None:
        figures.show(chart, key="race_chart" if race is not None else "shipped_chart",
                     name="2017-vs-today", width="stretch", height=340)
    else:
        st.caption("The curves appear after each run's first evaluation.")
    for index, (column, (label, history, line)) in enumerate(zip(st.columns(len(entries), gap="large"), entries)):
        with column:
            st.markdown(f"**{plain.escape(label)}**")
            st.caption(plain.escape(line))
            best = lab.best_val_loss(history)
            last = history[-1] if history else {}
            steps = f"{last['step']:,} steps" if "step" in last else "no steps yet"
            seen = last.get("chars_seen")
            targets = f" · {seen:,} characters predicted in training" if isinstance(seen, int) else ""
            st.markdown(f"Best validation **{lab.bits(best)}** bits/char · {steps}{targets}")
            sample = last_sample(history)
            if sample:
                st.caption("Its last sample (temperature 0.8, written during training):")
                plain.block(sample)
            else:
                st.caption("No sample yet.")
            if race is not None:
                download(race[index])


def download(job: jobs.TrainingJob) -> None:
    """A run's model file once the run has ended (read once, not at every poll while it trains): its best
    evaluation's weights, as Generate and the Learn parts use them."""
    path = job.best_checkpoint()
    if job.is_alive() or path is None:
        return
    st.download_button("Download this model (.safetensors)", data=models.download_bytes(path),
                       file_name=models.download_name(job), mime="application/octet-stream",
                       icon=":material/download:", key=f"race_download_{job.preset}")
    st.caption("It is in Generate's and the Learn parts' model lists too.")


def shipped_pair() -> None:
    st.subheader("The shipped pair: Nietzsche, 5 minutes each")
    entries, missing = [], []
    for preset, label in DESIGNS:
        try:
            model = models.shipped(SHIPPED_KEYS[preset])
        except checkpoint.CheckpointError as err:
            missing.append(f"{label}: {err}")
            continue
        minutes = max((row.get("elapsed_s") or 0 for row in model.history), default=0) / 60
        entries.append((f"{label} ({preset})", model.history, f"{model.summary} · trained {minutes:.1f} min"))
    for line in missing:
        st.warning(f"A shipped model could not be loaded: {plain.escape(line)}")
    if entries:
        side_by_side(entries)
        st.caption("Both were trained by `python -m charlm train` on the same CPU. The loss is measured on "
                   "held-out text in bits per character: the 2017 design predicts each character from the "
                   "100 before it, today's from everything before it.")


def design_problems(corpus, minutes: float, settings: settings_mod.Settings) -> list[str]:
    """What this server or this text cannot take for the race, each said for people."""
    problems = []
    if minutes > settings.max_train_minutes:
        problems.append(f"A run may last at most {settings.max_train_minutes:g} minutes on this server "
                        f"(CHARLM_MAX_TRAIN_MINUTES); you asked for {minutes:g}.")
    train_chars = len(corpus.split()[0])
    for preset_name, label in DESIGNS:
        preset = PRESETS[preset_name]
        model_cfg = preset.model_config(len(corpus.vocab))
        recipe = preset.train
        too_big = settings_mod.model_too_big(settings, model_cfg, recipe.window)
        if too_big:
            problems.append(f"The {label}: {too_big}")
        step_chars = recipe.batch_size * recipe.seq_len
        if step_chars > settings.max_batch_chars:
            problems.append(f"The {label} reads {step_chars:,} characters per step; this server allows "
                            f"{settings.max_batch_chars:,} (CHARLM_MAX_BATCH_CHARS).")
        if recipe.seq_len + 2 > train_chars:
            problems.append(f"The {label} needs a training text longer than {recipe.seq_len + 1} characters; "
                            f"this one has {train_chars:,}. Choose a longer text on the Corpus page.")
    return problems


def start_race(corpus, name: str, minutes: float, settings: settings_mod.Settings) -> None:
    """Both designs as background jobs, each in its own folder; or a plain message when the slots are taken."""
    if not training.ready_for_a_run():   # torch, and its share of the cores, before the first run loads it
        return
    slots = training.slots()
    if slots.limit < 2:
        st.warning(f"This server trains {slots.limit} model at a time (CHARLM_MAX_JOBS), so the two designs "
                   "cannot train side by side here.")
        return
    try:
        models.make_room(0)   # visitors' folders are within CHARLM_MAX_DISK_MB, this visitor's oldest going first
    except state.DiskFull as err:
        st.warning(str(err))
        return
    started: dict[str, jobs.TrainingJob] = {}
    for preset_name, label in DESIGNS:
        preset = PRESETS[preset_name]
        job = jobs.TrainingJob(corpus, preset_name, preset.model_config(len(corpus.vocab)),
                               preset.train_config(minutes=minutes, eval_interval_s=eval_interval_s(minutes)),
                               workdir=state.new_private_dir("compare-"), abandon_after_s=settings.abandon_after_s,
                               holder=training.holder(), **training.run_options())
        try:
            job.start(slots)
        except jobs.ServerBusy as err:
            shutil.rmtree(job.workdir, ignore_errors=True)
            for other in started.values():   # one design alone is no comparison
                other.stop()
            if isinstance(err, jobs.TooManyRuns):   # the visitor's own share, not the server's slots
                st.warning(f"{err} This comparison trains two models at once.")
                return
            busy = slots.limit - len(started)   # the slots others hold: all but the ones we took
            st.warning(f"The server is busy: {busy} of its {slots.limit} training slots are in use, and this "
                       "comparison needs two free at once. Try again in a few minutes.")
            return
        state.register_job(job)
        started[label] = job
    earlier: Race | None = st.session_state.get(RACE)
    st.session_state[RACE] = Race(started, minutes, name)
    if earlier is not None:   # only the last race is shown, so only its two folders (and models) are kept
        state.forget_runs(list(earlier.jobs.values()))
        files = st.session_state.get("then_and_now_files", {})
        for job in earlier.jobs.values():
            files.pop(job.workdir, None)
    # The visitor's runs like any other: in Generate's and Learn's model lists once each has a model file.
    state.keep_runs([(f"Train both: {label}", job) for label, job in started.items()])
    st.rerun()


def stop_race() -> None:
    race = st.session_state.get(RACE)
    if race is not None:
        for job in race.jobs.values():
            job.stop()


def job_history(job: jobs.TrainingJob) -> list[dict]:
    """A job's evaluation rows: all of them once it has ended, else those in its best model file so far."""
    snap = job.snapshot()
    if snap.result is not None:
        return list(snap.result.history)
    path = job.best_checkpoint()
    if path is None:
        return []
    cache = st.session_state.setdefault("then_and_now_files", {})
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
        if cache.get(job.workdir, (None,))[0] != stamp:
            history = checkpoint.load(path, limits=settings_mod.get().limits()).history
            cache[job.workdir] = (stamp, history)
    except (OSError, checkpoint.CheckpointError):   # being replaced just now: the next poll reads it
        return cache.get(job.workdir, (None, []))[1]
    return cache[job.workdir][1]


def race_view(was_running: bool) -> None:
    """Progress, curves and samples of the visitor's two runs; polled while either runs."""
    race: Race | None = st.session_state.get(RACE)
    if race is None:
        return
    entries = []
    for label, job in race.jobs.items():
        job.heartbeat()
        snap = job.snapshot()
        latest = snap.latest
        if job.is_alive():
            fraction = min(max(latest.fraction if latest else 0.0, 0.0), 1.0)
            eta = f" · about {format_duration(latest.eta_s)} left" if latest and latest.eta_s else ""
            st.progress(fraction, text=f"{label}: {fraction:.0%}{eta}")
        if snap.error:
            st.error(f"{label}: {plain.escape(snap.error)}")
        line = f"preset {job.preset} · {snap.status}"
        if latest is not None:
            line += f" · {latest.chars_per_sec:,.0f} characters/s"
        entries.append((f"{label} ({job.preset})", job_history(job), line))
    side_by_side(entries, list(race.jobs.values()))
    running = any(job.is_alive() for job in race.jobs.values())
    if running:
        st.button("Stop both", icon=":material/stop:", on_click=stop_race, key="race_stop")
    if was_running and not running:
        st.rerun()   # once: the whole page shows the final state, and polling stops


def own_text() -> None:
    st.subheader("On your own text")
    settings = settings_mod.get()
    race: Race | None = st.session_state.get(RACE)
    running = race is not None and any(job.is_alive() for job in race.jobs.values())
    chosen = state.corpus()
    if chosen is None and race is None:
        st.info("Choose a text on the Corpus page, then come back to train both designs on it side by side.")
        st.page_link("app/pages/corpus.py", label="Choose a text", icon=":material/description:")
        return
    if chosen is not None and not running:
        st.markdown(f"**Text:** {plain.escape(chosen.source)} · {chosen.stats.chars:,} characters")
        cap = settings.max_train_minutes
        c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
        minutes = float(c1.number_input("Minutes for each", min_value=0.05, value=min(2.0, cap), step=0.5,
                                        key="race_minutes", persist_state="session",
                                        help=f"Both train this long, at the same time (at most {cap:g} minutes "
                                             "on this server)."))
        problems = design_problems(chosen.corpus, minutes, settings)
        for problem in problems:
            st.error(problem)
        if c2.button("Train both", type="primary", icon=":material/play_arrow:", disabled=bool(problems),
                     key="race_start"):
            start_race(chosen.corpus, chosen.source, minutes, settings)
        st.caption("They train at the same time, each on half of this server's share of the cores. Keep this "
                   f"page open while they train: a run whose page is closed stops by itself after "
                   f"{format_duration(settings.abandon_after_s)}.")
    if race is not None:
        st.markdown(f"**Your run:** {race.minutes:g} minutes each on {plain.escape(race.corpus_name)}")
        st.fragment(run_every=training.POLL_S if running else None)(race_view)(running)


figures.projector_toggle()
st.title(TITLE)
path.header(TITLE)
st.markdown(INTRO)
shipped_pair()
st.divider()
own_text()
