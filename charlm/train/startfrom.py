"""Starting a new run from a trained model (fine-tuning): its weights, widened to a new text's characters.

The architecture comes from the model. The vocabulary is the model's, in its order, with the new text's
unseen characters appended, so every row the model learned keeps its meaning. A new character starts
as the average character: its embedding row and head row are the means of the learned ones, and its
head bias gives it its share of the new text under the model's own bias-only distribution. The new
run keeps a record of where it started. Resume is something else: it continues one run on its own text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from charlm.modelfile.checkpoint import Checkpoint
from charlm.config import MAX_VOCAB, ModelConfig
from charlm.text.corpus import Corpus, Vocab
from charlm.errors import UserError
from charlm.units import plural


@dataclass
class StartFrom:
    corpus: Corpus                       # the new text, encoded with the widened vocabulary
    model_cfg: ModelConfig               # the model's shape, over the widened vocabulary
    weights: dict[str, torch.Tensor]     # the model's weights with a row for each new character
    origin: dict                         # where the run started (plain values, kept in the model file's info)


def start_from(ckpt: Checkpoint, corpus: Corpus, name: str, max_vocab: int = MAX_VOCAB) -> StartFrom:
    """The new run's text, config and first weights; ValueError (said for people) when the model cannot start it."""
    known = list(ckpt.vocab)
    new = [c for c in corpus.vocab.chars if c not in set(known)]
    cfg = ckpt.model_cfg()
    if new and cfg.input_mode != "embedding":
        raise UserError(f"{name} is a 2017-design model: it reads each character as its index divided by the number "
                         f"of characters, so the {plural(len(new), 'new one')} of this text ({''.join(new[:10])!r}) would "
                         "change every input it learned. Start this text from scratch, or from a modern model.")
    if len(known) + len(new) > max_vocab:
        raise UserError(f"{name} knows {len(known)} characters and this text brings {len(new)} more: over the cap "
                         f"of {max_vocab} together. Start from scratch, or use a text with fewer distinct characters.")
    vocab = Vocab.from_list(known + new)
    widened = Corpus(text=corpus.text, vocab=vocab, ids=vocab.encode(corpus.text), encoding=corpus.encoding,
                     notice=corpus.notice, name=corpus.name, val_fraction=corpus.val_fraction)
    weights = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in ckpt.state_dict.items()}
    if new:
        weights = _widen(weights, widened, len(known), len(new))
    origin = {"started_from": Path(name).name, "started_from_preset": ckpt.preset,
              "started_from_corpus": ckpt.info.get("corpus", "unknown"), "started_from_steps": ckpt.progress.get("step", 0),
              "started_from_loss": ckpt.best_val_loss, "new_chars": "".join(new)}
    origin = {k: v for k, v in origin.items() if v is not None}
    return StartFrom(widened, ModelConfig.from_dict({**cfg.to_dict(), "vocab_size": len(vocab)}), weights, origin)


def _widen(weights: dict[str, torch.Tensor], corpus: Corpus, n_known: int, n_new: int) -> dict[str, torch.Tensor]:
    """Rows for the new characters: the mean embedding and head row, and a bias giving each its share of the text."""
    out = dict(weights)
    if "embed.weight" in out:
        embed = out["embed.weight"]
        out["embed.weight"] = torch.cat([embed, embed.mean(0, keepdim=True).expand(n_new, -1)])
    head_w, head_b = out["head.weight"], out["head.bias"]
    counts = np.bincount(corpus.ids, minlength=n_known + n_new)[n_known:].astype(np.float64) + 1.0
    share = torch.as_tensor(counts / (len(corpus.ids) + n_new), dtype=head_b.dtype)
    # softmax over the biases alone gives a new character about its share of the text next to the known ones.
    new_bias = torch.log(share) + torch.logsumexp(head_b, 0)
    out["head.weight"] = torch.cat([head_w, head_w.mean(0, keepdim=True).expand(n_new, -1)])
    out["head.bias"] = torch.cat([head_b, new_bias])
    return out
