"""The service following the registry's ``production`` alias: a promoted model answers without a restart.

Every ``every`` seconds the follower reads the alias (in a worker thread: the lake may be S3);
when it names another model, the model is loaded in the thread too, then put in use on the event
loop between two batches (``Scorer.use_model``): no request fails or waits for it, and each answer
names the model that scored it. A model the service cannot use (another feature-set version, gone
from the lake) is refused with a warning and the current one kept. A service started with a named
model (``--model``) does not follow.
"""

from __future__ import annotations

import asyncio
import sys

from fraudflow.errors import FraudflowError
from fraudflow.lake import Lake
from fraudflow.serving.engine import Scorer, served_model
from fraudflow.training import registry
from fraudflow.training.model import Model


class ModelFollower:
    """Puts the ``production`` model in ``scorer``'s use when it changes (``run`` is the task)."""

    def __init__(self, lake: Lake, scorer: Scorer, threshold: float | None, every: float) -> None:
        self.lake = lake
        self.scorer = scorer
        self.threshold = threshold  # given by the operator: kept for every model; None: each model's own
        self.every = every

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.check()

    async def check(self) -> bool:
        """Switch to the production model if it changed; whether it did."""
        try:
            wanted = await asyncio.to_thread(registry.production, self.lake)
            if wanted is None or wanted == self.scorer.model_id:
                return False
            model, threshold = await asyncio.to_thread(self._load, wanted)
        except FraudflowError as exc:
            print(f"warning: production model not taken: {exc}", file=sys.stderr, flush=True)
            return False
        self.scorer.use_model(model, wanted, threshold)  # on the loop: between two batches
        print(f"serving model {wanted} (the registry's production)", file=sys.stderr, flush=True)
        return True

    def _load(self, model_id: str) -> tuple[Model, float]:
        return served_model(self.lake, model_id, self.scorer.feature_set.version, self.threshold)

