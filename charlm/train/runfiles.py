"""A run's files: the model file (the best weights so far, the whole history) and the resume file beside it.

RunFiles turns a Trainer's parts into a Checkpoint (a snapshot), writes it as a model file or a resume file
(rank 0 alone), and puts a resume file's contents back into a new Trainer's parts. The files' contents are
charlm.modelfile.checkpoint's fields; the progress in them is RunState.progress(). The model file is written
at every evaluation with the run's history and progress as they are, and the weights of its best evaluation,
which RunFiles keeps (and the resume file holds, so a resumed run keeps them too).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from charlm.config import ModelConfig, TrainConfig
from charlm.errors import UserError
from charlm.modelfile import checkpoint as ckpt_io
from charlm.text.corpus import Corpus, Vocab
from charlm.train import precision
from charlm.train import resume as resume_file
from charlm.train.averaging import cpu_weights
from charlm.train.batches import rank_rows
from charlm.train.distributed import rank_seed
from charlm.train.resume import Resume, check_fits, last_path_for
from charlm.train.state import checked_progress

if TYPE_CHECKING:
    from charlm.train.trainer import Trainer


class RunFiles:
    """Where a run writes: `out` (the model file; None writes nothing) and its resume file, out's NAME.last.pt."""

    def __init__(self, out: str | Path | None):
        self.out = Path(out) if out else None
        self.last_path = last_path_for(self.out) if self.out else None
        self.best_weights: dict | None = None   # the model file's: the saved model's at the best evaluation

    @staticmethod
    def read_resume(corpus: Corpus, resume: Resume) -> tuple[Corpus, ckpt_io.Checkpoint, ModelConfig, TrainConfig]:
        """-> (the corpus in the run's order of characters, the resume file's contents, the run's model config,
        its training config for this session with the budget resume gives)."""
        state = resume_file.load(resume.path)
        if state.vocab != corpus.vocab.to_list():
            if set(corpus.vocab.chars) - set(state.vocab):
                raise UserError("this checkpoint was trained on a text with other characters; resume it on the same "
                                 "corpus")
            # The same text in the run's own order of characters (a run started from a model appended its new ones).
            corpus = corpus.in_memory() if hasattr(corpus, "in_memory") else corpus
            vocab = Vocab.from_list(state.vocab)
            corpus = replace(corpus, vocab=vocab, ids=vocab.encode(corpus.text))
        saved = state.train_cfg()
        if saved.window != state.window:
            raise UserError(f"the resume file is damaged: its window ({state.window}) is not its sequence length")
        cfg = resume.config_after(saved, checked_progress(state.progress), len(corpus.split()[0]))
        return corpus, state, state.model_cfg(), cfg

    def restore(self, trainer: Trainer, state: ckpt_io.Checkpoint) -> None:
        """Weights, optimizer, weight average, arithmetic, random and carried state from a resume file into
        trainer's parts; the trainer's RunState was read from it already (RunState.from_file)."""
        check_fits(state, trainer.model, trainer.optimizer)
        trainer.model.load_state_dict({name: torch.as_tensor(v) for name, v in state.state_dict.items()})
        if state.optimizer:
            trainer.optimizer.load_state_dict(state.optimizer)
        trainer.averaging.load_state_dict(state.average)
        if state.info.get("arithmetic") in (precision.FP32, precision.BF16):
            # A resumed run keeps the arithmetic it was trained in (a new probe might choose otherwise).
            trainer.arithmetic, trainer.arithmetic_why = state.info["arithmetic"], precision.RESUMED
        # A run started from another model says so in every file it writes, resumed or not.
        trainer.identity.update({k: v for k, v in state.info.items()
                                 if k.startswith("started_from") or k == "new_chars"})
        group, device = trainer.group, trainer.device
        if state.rng:
            trainer.generator.set_state(state.rng["batches"])   # the data order: the same for every process
            # Each process's own dropout stream (files from one process, or older ones: "torch" alone).
            ranks = state.rng.get("ranks") or [{"torch": state.rng.get("torch")}]
            # The model's generator of masks: a CPU one's state is "torch", a GPU one's "cuda".
            saved = ranks[group.rank].get("cuda" if device.type == "cuda" else "torch") \
                if group.rank < len(ranks) else None
            if saved is not None:
                trainer.model.generator.set_state(saved)
            else:   # more processes than the run had, or another device: a stream of its own, not an earlier one
                trainer.model.generator.manual_seed(rank_seed(trainer.cfg.seed, group.rank, trainer.state.step))
        self.best_weights = state.best_weights or self._weights_on_disk(state)
        if state.carry:
            # The file holds every row of the global batch; this process carries its own rows on.
            rows = rank_rows(state.carry[0].shape[1], group.rank, group.world_size)
            trainer.carry = tuple(part[:, rows].contiguous().to(device) for part in state.carry[:2])

    def _weights_on_disk(self, state: ckpt_io.Checkpoint) -> dict | None:
        """The best weights of a run whose resume file predates holding them: its model file's, when that file
        is still the run's (the same best loss); else None, and the file waits for a new best."""
        try:
            saved = ckpt_io.load(self.out) if self.out is not None and self.out.exists() else None
        except ckpt_io.CheckpointError:
            return None
        if saved is None or saved.best_val_loss is None or saved.best_val_loss != state.best_val_loss:
            return None
        return {name: torch.from_numpy(value) for name, value in saved.state_dict.items()}

    def snapshot(self, trainer: Trainer, with_optimizer: bool, carry: list | None = None,
                 rng: dict | None = None) -> ckpt_io.Checkpoint:
        """The run as a checkpoint: the model alone, or (with_optimizer) all an exact resume needs, with the
        carried and random state given (save_resume gathers them from every process)."""
        # A model file holds the averaged weights, once there are some; a resume file both.
        resume, saved = {}, trainer.averaging.model
        if with_optimizer:   # a resume file: the weights as trained, their average and the best beside them
            resume = {"optimizer": copy.deepcopy(trainer.optimizer.state_dict()), "carry": carry, "rng": rng,
                      "average": trainer.averaging.state_dict(), "best_weights": self.best_weights}
            saved = trainer.model
        run, cfg = trainer.state, trainer.cfg
        return ckpt_io.Checkpoint(
            model_config=trainer.model_cfg.to_dict(), vocab=trainer.corpus.vocab.to_list(),
            state_dict=cpu_weights(saved), preset=trainer.preset, train_config=cfg.to_dict(),
            history=list(run.history), progress=run.progress(trainer.batches.position()), best_val_loss=run.best_val,
            best_step=run.best_step, window=cfg.window, info={**trainer.identity, "device": str(trainer.device)},
            **resume)

    def save_model(self, trainer: Trainer, best: bool) -> bool:
        """Write the model file (rank 0 calls it): the run's history and progress now, with the weights of its
        best evaluation; `best`: the saved model's weights are that evaluation's. -> whether a file was written
        (none without `out`, or before the run has best weights)."""
        if best:
            self.best_weights = cpu_weights(trainer.averaging.model)
        if self.out is None or self.best_weights is None:
            return False
        ckpt = self.snapshot(trainer, with_optimizer=False)
        ckpt.state_dict = self.best_weights
        ckpt_io.save(ckpt, self.out)
        return True

    def save_resume(self, trainer: Trainer) -> None:
        """Write the resume file (rank 0) with every process's carried rows and random state; under torchrun
        every process calls it at once."""
        if self.last_path is None:
            return
        masks = trainer.model.generator.get_state()   # this process's dropout masks
        mine = {"carry": [t.detach().float().cpu() for t in trainer.carry] if trainer.carry is not None else None,
                "rng": {"cuda": masks} if trainer.device.type == "cuda" else {"torch": masks}}
        every = trainer.group.gather(mine)
        if trainer.group.is_main:
            carry = None
            if all(share["carry"] is not None for share in every):   # the global batch's rows, in rank order
                carry = [torch.cat([share["carry"][k] for share in every], dim=1) for k in (0, 1)]
            rng = {"batches": trainer.generator.get_state(), "ranks": [share["rng"] for share in every]}
            resume_file.save(self.snapshot(trainer, with_optimizer=True, carry=carry, rng=rng), self.last_path)

    def best_path(self) -> Path | None:
        """The model file, once the run has written one."""
        return self.out if self.out is not None and self.out.exists() else None
