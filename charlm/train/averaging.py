"""The moving average of a model's weights (TrainConfig.average_from, average_decay): once it starts, it is the model.

From a fraction of the budget on, a copy of the weights follows them step by step (an exponential moving average);
from then on the run evaluates, writes its samples with and saves the copy, and its resume file holds the copy beside
the weights as trained, so a resumed run carries the same average on.
"""

from __future__ import annotations

import copy

import torch

from charlm.nn.model import CharLSTM


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict as CPU copies that later steps (which update in place) leave alone."""
    return {name: value.detach().cpu().clone() for name, value in model.state_dict().items()}


class WeightAverage:
    """The average of `trained`'s weights: none until `start` of the budget is spent (None: never), then a copy
    of the weights that each step moves towards them by 1 - decay."""

    def __init__(self, trained: CharLSTM, start: float | None, decay: float):
        self.trained = trained             # the model the optimizer steps
        self.start = start                 # the fraction of the budget at which the average begins; None: never
        self.decay = decay                 # per step (its memory is about 1 / (1 - decay) steps)
        self.averaged: CharLSTM | None = None   # the copy that holds the average, once it has begun

    @property
    def started(self) -> bool:
        return self.averaged is not None

    @property
    def model(self) -> CharLSTM:
        """The model to evaluate, sample from and save: the average once it has begun, else the weights as trained."""
        return self.trained if self.averaged is None else self.averaged

    def fold(self, fraction: float) -> None:
        """Fold the weights just stepped into the average, `fraction` through the budget. At `start` the average
        begins as a copy of the weights; each later step moves it towards them."""
        if self.start is None or fraction < self.start:
            return
        if self.averaged is None:
            self.averaged = self._copy()
            return
        with torch.no_grad():
            for mean, weight in zip(self.averaged.parameters(), self.trained.parameters()):
                mean.lerp_(weight, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """The averaged weights for a snapshot or resume file (CPU copies); None before the average begins."""
        return cpu_weights(self.averaged) if self.averaged is not None else None

    def load_state_dict(self, weights: dict | None) -> None:
        """Back to a state_dict() (a snapshot's, or a resume file's): None or empty means not begun yet."""
        if not weights:
            self.averaged = None
            return
        if self.averaged is None:
            self.averaged = self._copy()
        self.averaged.load_state_dict({name: torch.as_tensor(value) for name, value in weights.items()})

    def _copy(self) -> CharLSTM:
        """A copy of the trained model to hold the average: no gradients, always in eval mode."""
        averaged = copy.deepcopy(self.trained)
        averaged.requires_grad_(False)
        return averaged.eval()
