"""Why a transaction scored as it did: its TreeSHAP contributions, recomputed from the logged vector.

The prediction log keeps each answer's feature vector, not its contributions; the model that served
it gives them again, exactly (``training.forest``: the same compiled trees as the answers'). The
model serving now is the scorer's; an earlier one (before a promotion) is loaded once from the lake.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fraudflow.lake import Lake
from fraudflow.serving.engine import Scorer
from fraudflow.training import model as models
from fraudflow.training.forest import Forest
from fraudflow.training.model import Model

#: the contributions a card's page names
SHOWN = 6


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's value (before scaling)
    contribution: float  # to the margin (log-odds)


class Explainer:
    """Contributions by the model that served a row; models other than the scorer's kept once loaded."""

    def __init__(self, lake: Lake, scorer: Scorer) -> None:
        self.lake = lake
        self.scorer = scorer
        self._models: dict[str, tuple[Model, Forest]] = {}
        self._lock = threading.Lock()

    def explain(self, model_id: str, names: Sequence[str], vector: np.ndarray, n: int = SHOWN) -> list[Contribution]:
        """The ``n`` strongest contributions to the score of ``vector`` (values of ``names``) by ``model_id``."""
        model, forest = self._model(model_id)
        inputs = np.array([list(names).index(f) for f in model.features])
        raw = np.asarray(vector, dtype=np.float64)[inputs]
        _, contributions = forest.explain(model.standardize(raw[None, :]))
        values = contributions[0, :-1]  # the last column is the bias
        strongest = np.argsort(-np.abs(values), kind="stable")[:n]
        return [Contribution(model.features[j], float(raw[j]), float(values[j])) for j in strongest.tolist()]

    def _model(self, model_id: str) -> tuple[Model, Forest]:
        scorer = self.scorer
        current, current_id = scorer.model, scorer.model_id
        with self._lock:
            if model_id not in self._models:
                model = current if current is not None and current_id == model_id else models.load(self.lake, model_id)
                self._models[model_id] = (model, Forest.from_json(model.booster.save_raw("json")))
            return self._models[model_id]
