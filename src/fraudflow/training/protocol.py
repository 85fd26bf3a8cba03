"""The fraud team's protocol (spec/EVALUATION.md) as data: splits, folds, which days, the handbook's results.

A split that starts on day ``start`` trains on ``start .. start+6``, skips the 7 delay days and
tests on ``start+14 .. start+20`` (without the customers already known to be defrauded: the
query in ``training.datasets``). Fold i of a prequential evaluation is the split starting ``7*i``
days earlier; a score is the mean over the folds. Parameters are chosen on validation folds whose
newest tests on the oldest judged split's training days (``validation_start``).

Which splits are judged is a ``Plan``, chosen by a protocol (``Plan.of``):

- ``lake`` (the default): the newest splits whose labels are mature. A label is known
  ``DELAY_DAYS`` after its transaction, so on a lake whose last day is L the newest judged split
  tests on ``L-13 .. L-7`` and starts on ``L-27`` (``newest_mature_start``); ``train`` judges that
  split alone, ``evaluate`` and ``pipeline`` the 4 test folds it is the newest of.
- ``handbook``: the published days, whatever the lake: ``train`` on the split of 2018-07-25, the test
  folds from 2018-08-15, the validation folds from 2018-07-11.

A lake that does not hold the days a plan reads is refused with ``CoverageError`` (``Plan.check``).

Standard library only: the command line shows these defaults in its help without loading a stage.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, get_args

from fraudflow.errors import ConfigError, CoverageError

#: the two parts of a split
Kind = Literal["train", "test"]
#: how the judged splits are chosen: from the lake's days, or the handbook's published ones
Protocol = Literal["lake", "handbook"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
#: what a stage judges: one split (``train``), or the prequential test folds (``evaluate``, ``pipeline``)
Judged = Literal["split", "folds"]
#: days in the training part (and in the test part) of a split
SPLIT_DAYS = 7
#: label delay: days between the training part and the test part
DELAY_DAYS = 7

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


def newest_mature_start(last_day: dt.date, days: int = SPLIT_DAYS, delay: int = DELAY_DAYS) -> dt.date:
    """The start of the newest split whose test labels are known on ``last_day``: its test days end
    ``delay`` days before it (on the handbook's last day, 2018-09-30: 2018-09-03)."""
    reach = split_days(last_day, "test", days, delay)[1] - last_day  # from a split's first day to its last test day
    return last_day - dt.timedelta(days=delay) - reach


@dataclass(frozen=True)
class Plan:
    """The splits a stage fits and judges (by first training day, newest first), whether it first
    chooses parameters on their validation folds, and the protocol that chose them (None: given)."""

    judged: tuple[dt.date, ...]
    tuned: bool
    protocol: Protocol | None = None

    @property
    def validation(self) -> dt.date:
        """The newest validation fold's start: it tests on the oldest judged split's training days."""
        return validation_start(min(self.judged))

    @property
    def origin(self) -> str:
        """Where the judged splits come from, in words."""
        if self.protocol == "lake":
            return "the newest with mature labels"
        return "the handbook's" if self.protocol == "handbook" else "given"

    def days(self) -> tuple[dt.date, dt.date]:
        """The first and last day the stage reads."""
        first = fold_starts(self.validation)[-1] if self.tuned else min(self.judged)
        return first, split_days(max(self.judged), "test")[1]

    def check(self, first: dt.date, last: dt.date) -> None:
        """Raise ``CoverageError`` unless a lake holding the days ``first .. last`` holds every day read."""
        lo, hi = self.days()
        if first <= lo and hi <= last:
            return
        stage = "training" if len(self.judged) == 1 else "evaluation"
        has = f"the lake has {(last - first).days + 1} days ({first} .. {last})"
        if self.protocol == "lake":
            judged = "one split" if len(self.judged) == 1 else f"{len(self.judged)} test folds"
            what = f"{N_FOLDS} validation folds and {judged}" if self.tuned else judged
            raise CoverageError(
                f"too little data: {stage} needs {(last - lo).days + 1} days ({what}: {(hi - lo).days + 1} days, "
                f"then {DELAY_DAYS} for the newest labels to mature); {has}"
            )
        if self.protocol == "handbook":
            raise CoverageError(
                f"the handbook's protocol reads its published days {lo} .. {hi} for {stage}, which the lake "
                f"({first} .. {last}) does not cover; protocol 'lake' (the default) derives the days from the lake"
            )
        splits = "the split" if len(self.judged) == 1 else "the splits"
        starts = ", ".join(str(d) for d in self.judged)
        raise CoverageError(f"{stage} on {splits} starting {starts} reads {lo} .. {hi}; {has}")

    @classmethod
    def of(cls, protocol: Protocol, judged: Judged, last_day: dt.date, *, tune: bool) -> Plan:
        """What ``protocol`` judges on a lake whose last day is ``last_day`` (the handbook's ignores it)."""
        if protocol == "handbook":
            newest = SINGLE_SPLIT_START if judged == "split" else TEST_START
        elif protocol == "lake":
            newest = newest_mature_start(last_day)
        else:
            raise ConfigError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
        return cls((newest,) if judged == "split" else tuple(fold_starts(newest)), tune, protocol)
