"""The fraud team's protocol (spec/EVALUATION.md) as data: splits, folds, the handbook's results.

A split that starts on day ``start`` trains on ``start .. start+6``, skips the 7 delay days and
tests on ``start+14 .. start+20`` (without the customers already known to be defrauded: the
query in ``training.datasets``). Fold i of a prequential evaluation is the split starting ``7*i``
days earlier; a score is the mean over the folds.

Standard library only: the command line shows these defaults in its help without loading a stage.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fraudflow.errors import ConfigError

#: the two parts of a split
Kind = Literal["train", "test"]
#: days in the training part (and in the test part) of a split
SPLIT_DAYS = 7
#: label delay: days between the training part and the test part
DELAY_DAYS = 7

VALIDATION_START = dt.date(2018, 7, 11)
TEST_START = dt.date(2018, 8, 15)
SINGLE_SPLIT_START = dt.date(2018, 7, 25)
N_FOLDS = 4
FOLD_STEP_DAYS = 7
#: Card Precision@K's K: the alerts the investigators can check a day
K = 100

#: The handbook's XGBoost grid.
HANDBOOK_GRID: dict[str, list[Any]] = {
    "max_depth": [3, 6, 9],
    "n_estimators": [25, 50, 100],
    "learning_rate": [0.1, 0.3],
}

#: Published test-fold results of the handbook (prequential means): AUC ROC, average precision, CP@100.
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "Logistic regression, validation-selected C": (0.868, 0.623, 0.297),
    "Random forest, validation-selected": (0.870, 0.678, 0.299),
    "XGBoost, validation-selected": (0.869, 0.687, 0.303),
    "XGBoost, best on test (optimistic)": (0.872, 0.694, 0.304),
    "Neural network (MLP)": (0.876, 0.675, 0.303),
}
#: the best CP@100 the handbook published (0.304)
PUBLISHED_BEST_CP = max(cp for _, _, cp in PUBLISHED.values())


def split_days(start: dt.date, kind: Kind, days: int = SPLIT_DAYS, delay: int = DELAY_DAYS) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the training or the test part of a split."""
    if kind == "train":
        return start, start + dt.timedelta(days=days - 1)
    if kind == "test":
        first = start + dt.timedelta(days=days + delay)
        return first, first + dt.timedelta(days=days - 1)
    raise ConfigError(f"kind must be 'train' or 'test', got {kind!r}")


def fold_starts(start: dt.date, n_folds: int = N_FOLDS) -> list[dt.date]:
    """The starts of the prequential folds of the split starting ``start``, newest first."""
    return [start - dt.timedelta(days=FOLD_STEP_DAYS * i) for i in range(n_folds)]


def validation_start(start: dt.date) -> dt.date:
    """Where the validation folds of a model trained from ``start`` begin: their test days are its training days."""
    return start - dt.timedelta(days=SPLIT_DAYS + DELAY_DAYS)
