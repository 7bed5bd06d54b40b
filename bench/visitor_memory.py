"""How much server memory one visitor can hold at the hosted defaults, measured: python bench/visitor_memory.py

One visitor (Streamlit's AppTest, in this process) brings the largest text the server accepts and then
uploads models at the server's caps until the per-visitor upload budget is full; the resident memory
of the process is read before and after each step. Prints one line per step and the total.
"""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
import sys
from pathlib import Path

os.environ.setdefault("CHARLM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from app import settings as settings_mod  # noqa: E402
from charlm.modelfile import checkpoint  # noqa: E402
from charlm.config import MAX_VOCAB, ModelConfig  # noqa: E402
from charlm.nn.model import CharLSTM  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def largest_model(seed: int) -> bytes:
    """A model at every cap of the hosted defaults (its weights random)."""
    caps = settings_mod.Settings()
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=MAX_VOCAB, hidden_size=caps.max_hidden, num_layers=caps.max_layers,
                      embed_dim=caps.max_embed)
    model = CharLSTM(cfg)
    vocab = [chr(0x100 + i) for i in range(MAX_VOCAB)]
    ckpt = checkpoint.Checkpoint(model_config=cfg.to_dict(), vocab=vocab, state_dict=model.state_dict(),
                                 preset="largest")
    return checkpoint.to_bytes(ckpt)


def main() -> None:
    caps = settings_mod.Settings()
    words = "river stone light garden walks under over slowly bright the a of".split()
    rng = random.Random(0)
    text = " ".join(rng.choice(words) for _ in range(caps.max_corpus_chars // 4))[: caps.max_corpus_chars]
    models = [largest_model(seed) for seed in range(3)]
    first = AppTest.from_file(APP, default_timeout=300)
    first.run()
    start = rss_mb()
    print(f"server process after the first page view: {start:,.0f} MB")
    for who in ("first", "second"):
        before = rss_mb()
        tracemalloc.start()
        at = visitor(text, models, who)
        held, peak = (n / 1e6 for n in tracemalloc.get_traced_memory())
        tracemalloc.stop()
        engines_mb = sum(m.nbytes for m in at.session_state["uploaded_models"].values()) / 1e6
        print(f"the {who} visitor: resident memory {rss_mb() - before:+,.0f} MB (the first pays one-time costs "
              f"too: imports, the training-time estimate; later ones reuse freed memory); held by the session "
              f"(Python and numpy objects, the models' numpy engines included: {engines_mb:,.0f} MB): {held:,.0f} MB, "
              f"peak {peak:,.0f} MB while working")
    print(f"caps: CHARLM_MAX_CORPUS_MB={caps.max_corpus_mb:g}, CHARLM_MAX_UPLOAD_MB={caps.max_upload_mb:g}")


def visitor(text: str, models: list[bytes], who: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    start = rss_mb()
    at.switch_page("app/pages/corpus.py").run()
    at.file_uploader(key="corpus_upload").set_value(("big.txt", text.encode(), "text/plain"))
    at.run()
    assert not at.error, at.error
    print(f"  {who}: + a text of {len(text):,} characters: {rss_mb() - start:+,.0f} MB")
    at.switch_page("app/pages/train.py").run()
    for i, data in enumerate(models):
        at.file_uploader(key="checkpoint_upload").set_value((f"largest{i}.pt", data, "application/octet-stream"))
        at.run()
        assert not at.error, at.error
        kept = at.session_state["uploaded_models"]
        print(f"  {who}: + upload {i + 1} of a model at the caps ({len(data) / 1e6:.1f} MB file; {len(kept)} kept, "
              f"{sum(m.nbytes for m in kept.values()) / 1e6:.0f} MB of weights): {rss_mb() - start:+,.0f} MB")
    VISITORS.append(at)   # kept alive, as a connected session is
    return at


VISITORS: list[AppTest] = []


if __name__ == "__main__":
    main()
