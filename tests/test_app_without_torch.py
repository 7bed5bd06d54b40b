"""The app on a server without PyTorch: Generate writes, Corpus and every Learn part work, Train says what to install.

The pytest process has torch loaded already (conftest), so the app runs in a fresh Python process whose
imports of torch are refused; it reports what each page showed as JSON, and the checks are made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.learn import LEARN_PAGES
from app.torch_side import ESTIMATE_NEEDS, NEEDED

from helpers import APP, NO_TORCH_HOOK

# The controls each Learn part shows on the shipped model with the Python documentation chosen on the Corpus
# page (so 2017 vs today offers its race; the demo model's own text is not at hand, so Baselines offers no Write),
# besides the model picker every part but 2017 vs today starts with.
MAIN_CONTROLS = {
    "text_to_numbers": {"numbers_sentence"},
    "windows_targets": {"windows_start", "windows_length"},
    "the_model": {"model_batch", "model_seq"},
    "next_character": {"next_prime", "next_temperature", "next_top_k", "next_top_p", "next_min_p"},
    "surprise_map": {"surprise_text", "surprise_at", "surprise_explain"},
    "neuron_explorer": {"neuron_feature", "neuron_pick", "neuron_text", "neuron_prime", "neuron_clamp"},
    "looked_back": {"lb_text", "lb_at", "lb_prev", "lb_next", "lb_back"},
    "inside_cell": {"cell_text", "cell_layer", "cell_unit", "cell_at"},
    "char_map": {"cmap_method", "cmap_char"},
    "training_over_time": {"tot_step:shipped"},
    "then_and_now": {"race_minutes", "race_start"},
    "baselines_page": {"bl_sample_seed"},
    "decoding_lab": {"dl_prime", "dl_strategies", "dl_length", "dl_seed"},
    "guess_game": {"guess_input", "guess_new", "guess_give_up"},
}
# Charts and tables each part draws as it opens: Windows and targets shows numbers (metrics), the Decoding lab
# its table of each strategy's measures (its texts are code blocks), the guessing game its figure after a guess.
FIGURES = {"text_to_numbers": 3, "windows_targets": 0, "the_model": 2, "next_character": 2, "surprise_map": 2,
           "neuron_explorer": 2, "looked_back": 3, "inside_cell": 4, "char_map": 2, "training_over_time": 1,
           "then_and_now": 1, "baselines_page": 2, "decoding_lab": 1, "guess_game": 0}
METRICS = {"windows_targets": 4}

# Run in the fresh process: every `import torch` fails as it would where torch is not installed.
SCRIPT = NO_TORCH_HOOK + r'''
import json
from streamlit.testing.v1 import AppTest

APP, PAGES = sys.argv[1], json.loads(sys.argv[2])
CHART_KINDS = ("vega_lite_chart", "dataframe", "graphviz_chart")   # AppTest names a table "dataframe"


def seen(at):
    """What a page run showed: its title, exceptions, errors, infos, captions, widget keys and figures."""
    return {"title": [t.value for t in at.title], "exceptions": [e.value for e in at.exception],
            "errors": [e.value for e in at.error], "infos": [i.value for i in at.info],
            "captions": [c.value for c in at.caption], "markdown": [m.value for m in at.markdown],
            "keys": sorted(widget_keys(at)), "figures": sum(len(at.get(kind)) for kind in CHART_KINDS),
            "metrics": len(at.metric)}


def widget_keys(at):
    keys, stack = set(), [at._tree]
    while stack:
        node = stack.pop()
        key = getattr(node, "key", None)
        if isinstance(key, str):
            keys.add(key)
        children = getattr(node, "children", None)
        stack.extend(children.values() if isinstance(children, dict) else children or [])
    return keys


def generate(at):
    at.run()
    report["generate"] = seen(at)
    at.slider(key="gen_length").set_value(20)
    at.button(key="write").click().run()
    report["written"] = at.code[0].value
    report["generate_after_write"] = seen(at)
    at.segmented_control(key="gen_mode").set_value("Step").run()
    before = at.code[0].value
    at.button(key="step_next").click().run()
    report["stepped"] = [before, at.code[0].value]
    report["generate_after_step"] = seen(at)


def corpus(at):
    at.switch_page("app/pages/corpus.py").run()
    at.button(key="builtin_load").click().run()
    report["corpus"] = seen(at)


def learn(at):
    report["learn"] = {}
    for module in PAGES:
        at.switch_page(f"app/pages/learn/{module}.py").run()
        report["learn"][module] = seen(at)
    at.switch_page("app/pages/learn/then_and_now.py").run()
    at.button(key="race_start").click().run()
    report["race_start"] = seen(at)


def train(at):
    at.switch_page("app/pages/train.py").run()
    report["train"] = seen(at)


report, at = {"broken": {}}, AppTest.from_file(APP, default_timeout=120)
for part in (generate, corpus, learn, train):   # one visitor, page after page; a part that fails is reported
    try:
        part(at)
    except Exception:
        import traceback
        report["broken"][part.__name__] = traceback.format_exc()[-3000:]
report["torch_loaded"] = "torch" in sys.modules
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("cache")
    pages = [module for module, *_ in LEARN_PAGES]
    done = subprocess.run([sys.executable, "-c", SCRIPT, APP, json.dumps(pages)], capture_output=True, text=True,
                          timeout=600, cwd=Path(APP).parent,
                          env={**_env(), "CHARLM_CACHE_DIR": str(cache), "CHARLM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict:
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTEST")}


def part(report: dict, name: str) -> dict:
    """The report, once the part of the script that visits these pages has run through."""
    assert name not in report["broken"], report["broken"][name]
    return report


def clean(page: dict) -> bool:
    return page["exceptions"] == [] and page["errors"] == []


def test_torch_is_never_loaded(report):
    assert report["broken"] == {} and report["torch_loaded"] is False


def test_generate_writes_and_steps_with_the_shipped_model(report):
    report = part(report, "generate")
    assert report["generate"]["title"] == ["Generate"] and clean(report["generate"])
    assert clean(report["generate_after_write"]) and clean(report["generate_after_step"])
    written = report["written"]
    assert written.startswith("The ") and len(written) == len("The ") + 20
    before, after = report["stepped"]
    assert before == "The ▌" and after.startswith("The ") and len(after) == len(before) + 1


def test_the_corpus_page_says_the_estimate_needs_pytorch(report):
    corpus = part(report, "corpus")["corpus"]
    assert clean(corpus) and corpus["title"] == ["Corpus"]
    assert any(m.startswith("**The most common characters**") for m in corpus["markdown"])   # the text is in use
    assert corpus["captions"].count(ESTIMATE_NEEDS) == 1
    assert not any("Rough training time" in m for m in corpus["markdown"])


@pytest.mark.parametrize("module, title", [(module, title) for module, title, *_ in LEARN_PAGES])
def test_each_learn_part_renders_with_its_controls(report, module, title):
    page = part(report, "learn")["learn"][module]
    assert clean(page) and page["title"] == [title]
    picker = set() if module == "then_and_now" else {"learn_model"}
    assert picker | MAIN_CONTROLS[module] <= set(page["keys"])
    assert page["figures"] == FIGURES[module]
    assert page["metrics"] >= METRICS.get(module, 0)


def test_2017_vs_today_says_training_needs_pytorch(report):
    page = part(report, "learn")["race_start"]
    assert clean(page) and page["infos"].count(NEEDED) == 1


def test_the_train_page_says_how_to_install_pytorch(report):
    train = part(report, "train")["train"]
    assert clean(train) and train["title"] == ["Train"]
    assert train["infos"] == [NEEDED]
    assert "pip install torch==2.13.0" in NEEDED and "-r requirements.txt" in NEEDED
