"""The prequential fits: settings that differ only in their number of trees share one fit, and give
what fitting each alone gives; the test folds judge the observable ceiling."""

from __future__ import annotations

import datetime as dt

import pytest

from fraudflow import WorldParams, generate
from fraudflow.features import FRAUDFLOW, build_features
from fraudflow.lake import Lake
from fraudflow.training.evaluation import Split, load_split, prequential


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> list[Split]:
    root = tmp_path_factory.mktemp("prequential")
    generate(root, WorldParams(n_customers=600, n_terminals=800, nb_days=70, radius=10.0))
    lake = Lake(root)
    build_features(lake, FRAUDFLOW)
    first = lake.partitions("transactions")[0]
    return [load_split(lake, first + dt.timedelta(days=d), ceiling=True) for d in (35, 42)]


def test_settings_differing_in_trees_share_a_fit_and_give_each_ones_own(splits: list[Split]) -> None:
    base = {"tree_method": "hist", "max_bin": 256, "base_score": 0.5, "max_depth": 3, "learning_rate": 0.3}
    settings = [{**base, "n_estimators": n} for n in (5, 20)]
    together = prequential(splits, settings, FRAUDFLOW.names, FRAUDFLOW.version)
    for params, shared in zip(settings, together, strict=True):
        (alone,) = prequential(splits, [params], FRAUDFLOW.names, FRAUDFLOW.version)
        assert shared.params == params
        assert shared.folds == alone.folds
    assert together[0].folds != together[1].folds  # 5 trees are not 20
    judged = together[1].summary
    assert judged.card_precision_observable is not None
    assert 0 < judged.card_precision_observable.mean <= judged.card_precision_bound.mean
