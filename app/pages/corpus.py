"""Corpus page: upload, paste or pick a built-in text; see what the engine makes of it and how long training takes."""

from __future__ import annotations

import math

import streamlit as st

from app import charts, plain, state, torch_side, training
from app import settings as settings_mod
from charlm.text import datasets
from charlm.text.corpus import CorpusError, load_corpus
from charlm.presets import DEFAULT_PRESET, PRESETS, Preset
from charlm.text.read import MAX_BYTES_PER_CHAR
from charlm.units import format_duration
from charlm.errors import UserError

_DONE = "corpus_upload_done"   # ((file_id, encoding), error or None, the text in use then): read once, not per rerun
# Streamlit's uploader states its own limit in megabytes of file ("21MB per file": four bytes for each character
# allowed, the most a character can take). People think of a text's size in characters, which the label says.
_HIDE_BYTE_LIMIT = ("<style>.st-key-corpus_upload [data-testid='stFileUploaderDropzoneInstructions']"
                    " {display: none;}</style>")

# The encodings a visitor may choose when the app's guess reads a file wrongly: codec -> label.
ENCODINGS = {
    "auto": "Find it from the file (recommended)", "utf-8": "UTF-8", "cp1252": "Windows-1252 (Western European)",
    "latin-1": "Latin-1 (ISO-8859-1)", "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)", "koi8_r": "KOI8-R (Russian)", "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)", "cp1255": "Windows-1255 (Hebrew)", "cp1256": "Windows-1256 (Arabic)",
    "shift_jis": "Shift-JIS (Japanese)", "euc_jp": "EUC-JP (Japanese)", "gbk": "GBK (Chinese, simplified)",
    "big5": "Big5 (Chinese, traditional)", "euc_kr": "EUC-KR (Korean)", "utf-16-le": "UTF-16 little-endian",
    "utf-16-be": "UTF-16 big-endian",
}
PYTHON_DOCS = "Python reference documentation (always available)"
NIETZSCHE = "Nietzsche (2017 tutorial)"


def use_text(data: bytes | str, name: str, source: str) -> None:
    """Read a text with the server's size cap; the engine's message is shown if it cannot be used."""
    try:
        corpus = load_corpus(data, name=name, max_chars=settings.max_corpus_chars)
    except CorpusError as err:
        st.error(plain.escape(str(err)))
        return
    state.set_corpus(corpus, source)
    st.toast(f"Using {plain.escape(source)}.", icon=":material/check_circle:")


def upload_tab() -> str | None:
    """The uploader; -> the name of an uploaded file that could not be used while the text in use stayed."""
    limit_mb = min(int(st.get_option("server.maxUploadSize")),
                   math.ceil(MAX_BYTES_PER_CHAR * settings.max_corpus_mb) + 1)
    st.html(_HIDE_BYTE_LIMIT)
    upload = st.file_uploader(
        f"A plain-text file (.txt, .md, .py, .csv …) in any common encoding, up to "
        f"{settings.max_corpus_chars:,} characters", key="corpus_upload", max_upload_size=limit_mb,
        help=f"About {settings.max_corpus_chars / 1e6:g} MB of English plain text (a long novel is about a million "
             "characters); the cap is set on this server by CHARLM_MAX_CORPUS_MB.")
    encoding = st.selectbox("Encoding", list(ENCODINGS), format_func=ENCODINGS.get, key="corpus_encoding",
                            persist_state="session",
                            help="How the file's bytes become characters. The app finds it by itself; choose one "
                                 "when the text it shows looks wrong.")
    if upload is None:
        return None
    done = st.session_state.get(_DONE)
    if done is None or done[0] != (upload.file_id, encoding):
        try:
            corpus = load_corpus(upload.getvalue(), name=upload.name, max_chars=settings.max_corpus_chars,
                                 encoding=None if encoding == "auto" else encoding)
            state.set_corpus(corpus, f"uploaded file {upload.name}")
            done = ((upload.file_id, encoding), None, None)
        except CorpusError as err:
            done = ((upload.file_id, encoding), str(err), state.corpus())
        st.session_state[_DONE] = done
    if not done[1]:
        return None
    st.error(plain.escape(f"The file {upload.name} was not used. {done[1]}"))
    # The text in use is the one from before this file, unless another was chosen since.
    return upload.name if done[2] is not None and done[2] is state.corpus() else None


def paste_tab() -> None:
    with st.form("paste_form", border=False):
        text = st.text_area("Paste text", height=180, key="paste_text",
                            placeholder="Paste at least a few thousand characters: a story, poems, code, lyrics …")
        if st.form_submit_button("Use this text", type="primary"):
            use_text(text, "pasted text", f"pasted text ({len(text):,} characters)")


def builtin_tab() -> None:
    which = st.radio("Built-in corpus", [PYTHON_DOCS, NIETZSCHE], key="builtin_choice", persist_state="session",
                     label_visibility="collapsed",
                     captions=["Python's own reference documentation (pydoc_data), shipped with every Python.",
                               f"The text of the 2017 Keras tutorial, downloaded once from {datasets.nietzsche_url()} "
                               "into a local cache."])
    if not st.button("Load", type="primary", key="builtin_load"):
        return
    if which == PYTHON_DOCS:
        try:
            use_text(datasets.python_docs(), "python-docs.txt", "the Python reference documentation")
        except datasets.DatasetError as err:
            st.error(plain.escape(str(err)))
        return
    with st.spinner("Downloading the Nietzsche text…"):
        try:
            data = datasets.nietzsche(settings.cache_path)
        except datasets.DatasetError as err:
            st.error(plain.escape(str(err)))
            return
    use_text(data, "nietzsche.txt", "Nietzsche (2017 tutorial)")


def show_corpus(chosen: state.ChosenCorpus, still: bool = False) -> None:
    """What the engine makes of the text in use; `still`: an upload just failed and this text stayed in use."""
    stats = chosen.stats
    st.subheader(f"{'Still using' if still else 'Using'} {plain.escape(chosen.source)}")
    cols = st.columns(4)
    cols[0].metric("Characters", f"{stats.chars:,}")
    cols[1].metric("Distinct characters", f"{stats.distinct:,}",
                   help="The model's vocabulary: it writes one of these at each step.")
    cols[2].metric("Lines", f"{stats.lines:,}")
    cols[3].metric("Words", f"{stats.words:,}")
    encoding = "given as text, nothing to decode" if stats.encoding == "text" else f"read as {stats.encoding}"
    st.markdown(f"**Encoding:** {encoding} · **Split:** the first {stats.train_chars:,} characters for training, "
                f"the last {stats.val_chars:,} for validation (held out to measure how well it generalises).")
    if stats.notice:
        st.info(stats.notice)   # our words: encodings and counts

    st.markdown("**The most common characters**")
    st.altair_chart(charts.frequency_chart(stats.frequencies, stats.chars), width="stretch", height=300)
    st.markdown("**The beginning of the text**")
    st.code(stats.preview, language=None, wrap_lines=True)
    show_estimate(stats.train_chars, len(chosen.corpus.vocab))
    st.page_link("app/pages/train.py", label="Train a model on it", icon=":material/model_training:")


def show_estimate(train_chars: int, vocab_size: int) -> None:
    """A few measured training steps per preset, turned into time per pass; one line instead without torch."""
    if not torch_side.available():
        st.caption(torch_side.ESTIMATE_NEEDS)
        return
    from charlm.nn.device import describe, pick_device   # torch-side: only once torch is known to be here

    training.share_cores()   # measured with the threads a run gets here, not every core
    device = pick_device("auto")
    chosen = st.session_state.get("train_preset", DEFAULT_PRESET)
    names = [chosen] + [name for name in ("tiny",) if name != chosen]
    with st.spinner(f"Timing a few training steps on {describe(device)}…"):
        lines = [estimate_line(PRESETS[name], train_chars, vocab_size, device) for name in names]
    st.markdown(f"**Rough training time on this device** ({describe(device)})")
    st.markdown("\n".join(lines))
    st.caption("Measured from a few steps on random data; a server shared with other visitors may be slower. "
               "A model usually needs several passes to write well; the Train page stops at its time budget.")


def estimate_line(preset: Preset, train_chars: int, vocab_size: int, device) -> str:
    """One preset's time per pass over the text, as a markdown list item (or why it was not measured)."""
    from charlm.train import estimate   # torch-side, like show_estimate's imports
    model, recipe = preset.model_config(vocab_size), preset.train_config()
    if settings_mod.model_too_big(settings, model, recipe.window):
        return f"- **{preset.name}**: over this server's limits, so not measured"
    try:
        rate = estimate.estimate(model, recipe, device)
    except (UserError, RuntimeError) as err:   # out of memory (said for people), or torch failing on this device
        return f"- **{preset.name}**: could not be measured ({err})"
    per_pass = format_duration(rate.seconds_per_epoch(train_chars))
    per_pass = per_pass if per_pass.startswith("under") else f"about {per_pass}"
    return (f"- **{preset.name}** ({model.num_layers} × {model.hidden_size}): {per_pass} per pass over "
            f"the training text ({rate.chars_per_sec:,.0f} characters/s)")


settings = settings_mod.get()
st.title("Corpus")
st.caption("The text the model learns from, one character at a time. It stays in this browser session: "
           "other visitors cannot see it.")
upload, paste, builtin = st.tabs(["Upload a file", "Paste text", "Built-in corpora"])
with upload:
    failed_upload = upload_tab()
with paste:
    paste_tab()
with builtin:
    builtin_tab()

chosen = state.corpus()
if chosen is not None:
    st.divider()
    show_corpus(chosen, still=failed_upload is not None)
