"""Score arriving transactions: online features from the store, the model, the answer.

For each transaction, alone (inside the store's ``exclusive()``, which with SQLite holds across
processes): an answered TRANSACTION_ID gets its stored feature vector back (same answer, counted
once); otherwise its entities' events are read, the features computed
(``features.online``), and the transaction committed with its feature vector, atomically. The
score is a pure function of the vector and the model, so it is computed after the commit, in
batches when many transactions arrive together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fraudflow.errors import ConfigError, FeatureError
from fraudflow.features import registry
from fraudflow.features.definitions import FeatureSet
from fraudflow.features.online import OnlineFeatures
from fraudflow.lake import Lake, open_lake
from fraudflow.records import ENTITIES, Transaction
from fraudflow.serving.schemas import Contribution, ScoreOut
from fraudflow.store.online import codec
from fraudflow.store.online.connect import open_store
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.materialize import materialize
from fraudflow.training import model as models
from fraudflow.training.model import Model

#: The strongest contributions each answer names.
TOP_FEATURES = 3


@dataclass(frozen=True)
class ServedFeatures:
    """The feature vector a transaction is served: computed now, or its first one when sent again."""

    transaction_id: int
    features: dict[str, float]
    duplicate: bool  # answered before: the stored vector, counted once


class Scorer:
    """Answers transactions: their online features, committed to the store, and the model's score."""

    def __init__(
        self,
        store: OnlineStore,
        feature_set: FeatureSet,
        model: Model | None = None,
        model_id: str = "",
        threshold: float = 0.5,
    ) -> None:
        if model is not None:
            missing = [f for f in model.features if f not in feature_set.names]
            if missing:
                raise FeatureError(
                    f"model {model_id} needs features {missing} that feature set {feature_set.name} lacks"
                )
        self.store = store
        self.online = OnlineFeatures(feature_set)
        self.model = model
        self.model_id = model_id
        self.threshold = threshold
        self._keep = {kind: self.online.history_us[kind] for kind in ENTITIES}  # history each entity keeps
        self._read = [kind for kind in ENTITIES if self.online.needs(kind)]

    @classmethod
    def from_lake(
        cls,
        data: str | os.PathLike[str] | Lake,
        model_id: str | None = None,
        online: str | None = None,
        threshold: float = 0.5,
    ) -> Scorer:
        """The lake's feature set and model (the newest unless named), with the online store ``online``
        (a URL; None: SQLite in a local lake root) brought up to the lake's last day."""
        lake = open_lake(data)
        feature_set = registry.registered(lake)
        if feature_set is None:
            raise ConfigError(f"{lake.url}: no features; run `fraudflow features --data {lake.url}` and train a model")
        model_id = model_id or models.latest_model(lake)
        model = models.load(lake, model_id, expect_version=feature_set.version)
        store = open_store(online, lake.root if lake.local else None)
        materialize(lake, store, feature_set)
        return cls(store, feature_set, model, model_id, threshold)

    def score(self, txs: Sequence[Transaction]) -> list[ScoreOut]:
        """The answers to ``txs``, in order: each one's features committed alone, then one model call."""
        served = [self.features(tx) for tx in txs]
        scores, tops = self._explain(served)
        return [
            ScoreOut(
                TRANSACTION_ID=x.transaction_id,
                score=score,
                alert=score >= self.threshold,
                threshold=self.threshold,
                model_id=self.model_id,
                features=x.features,
                duplicate=x.duplicate,
                top_features=[Contribution(feature=f, contribution=c) for f, c in top],
            )
            for x, score, top in zip(served, scores.tolist(), tops, strict=True)
        ]

    def features(self, tx: Transaction) -> ServedFeatures:
        """Online features of ``tx``, committed to the store (or the stored ones if answered before)."""
        with self.store.exclusive():
            stored = self.store.answer(tx.transaction_id)
            if stored is not None:
                return ServedFeatures(tx.transaction_id, codec.decode(stored).features, True)
            t = tx.ts_us
            events = {kind: self.store.events(kind, tx.entity(kind), t - self._keep[kind]) for kind in self._read}
            values = self.online.compute(tx, events)
            if not self.store.commit(tx, codec.encode(values, tx), self._keep):
                # answered meanwhile by another process (Redis serializes only within one)
                stored = self.store.answer(tx.transaction_id)
                return ServedFeatures(
                    tx.transaction_id, values if stored is None else codec.decode(stored).features, True
                )
            return ServedFeatures(tx.transaction_id, values, False)

    def _explain(self, served: Sequence[ServedFeatures]) -> tuple[np.ndarray, list[list[tuple[str, float]]]]:
        """Scores and each one's ``TOP_FEATURES`` strongest contributions, from one call to XGBoost.

        XGBoost's contributions (SHAP values, plus the bias) add up to the margin, so the score is
        their sum through the logistic function: one model call gives both.
        """
        if self.model is None or not served:
            return np.zeros(len(served)), [[] for _ in served]
        x = np.array([[row.features[f] for f in self.model.features] for row in served], dtype=np.float64)
        contrib = self.model.contributions(self.model.standardize(x))
        scores = 1.0 / (1.0 + np.exp(-contrib.sum(axis=1, dtype=np.float64)))
        tops = []
        for row in contrib[:, :-1]:
            order = np.argsort(-np.abs(row))[:TOP_FEATURES]
            tops.append([(self.model.features[i], float(row[i])) for i in order])
        return scores, tops
