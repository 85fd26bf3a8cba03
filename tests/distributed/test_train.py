"""Training on Spark: XGBoost's Spark estimator on the Spark SQL training set."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from fraudflow import Lake, generate
from fraudflow.distributed import train as spark_train
from fraudflow.errors import ConfigError
from fraudflow.features import build_features
from fraudflow.features.definitions import HANDBOOK
from fraudflow.training import metrics, model, workflow
from fraudflow.training.datasets import training_set
from fraudflow.training.evaluation import load_split
from fraudflow.training.protocol import SINGLE_SPLIT_START

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def handbook_features(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The handbook's world (the default one) with its 15 features."""
    lake = Lake(tmp_path_factory.mktemp("spark-train"))
    generate(lake)
    build_features(lake, HANDBOOK)
    return lake


def auc(test, scores) -> float:
    return metrics.performance(
        test["tx_date"].to_numpy(), test["CUSTOMER_ID"].to_numpy(), test["TX_FRAUD"].to_numpy(), scores
    ).auc_roc


@pytest.mark.slow
def test_spark_model_auc_is_within_0_005_of_the_local_model(spark, handbook_features: Lake) -> None:
    lake, start = handbook_features, SINGLE_SPLIT_START
    local_split = load_split(lake, start)
    spark_test = spark_train.training_set(spark, lake, start, "test").toArrow()
    spark_train_set = spark_train.training_set(spark, lake, start, "train")
    # the Spark SQL sets are the DuckDB sets
    assert spark_train_set.count() == local_split.train.num_rows == 67_240
    assert spark_test.num_rows == local_split.test.num_rows == 58_264
    assert np.array_equal(spark_test["TRANSACTION_ID"].to_numpy(), local_split.test["TRANSACTION_ID"].to_numpy())
    params = model.HANDBOOK_PARAMS
    local = model.fit(local_split.train, HANDBOOK.names, HANDBOOK.version, params)
    distributed = spark_train.fit(spark_train_set, HANDBOOK.names, HANDBOOK.version, params)
    assert distributed.params["tree_method"] == "hist"  # XGBoost's distributed training has no exact
    np.testing.assert_allclose(distributed.mean, local.mean, rtol=1e-9)
    np.testing.assert_allclose(distributed.scale, local.scale, rtol=1e-9)
    local_auc = auc(local_split.test, local.predict(local_split.test))
    spark_auc = auc(local_split.test, distributed.predict(local_split.test))
    assert local_auc == pytest.approx(0.862, abs=5e-4)  # the handbook's published figure
    assert abs(spark_auc - local_auc) < 0.005


@pytest.mark.slow
def test_workflow_train_on_spark_saves_a_model_the_service_loads(spark, handbook_features: Lake) -> None:
    start = dt.date(2018, 8, 1)
    trained = workflow.train(handbook_features, start, engine="spark")
    loaded = model.load(handbook_features, trained.model_id, HANDBOOK.version)
    assert loaded.metadata["engine"] == "spark" and loaded.params["tree_method"] == "hist"
    test = training_set(handbook_features, start, kind="test")
    np.testing.assert_allclose(loaded.predict(test), trained.folds[0].scores, rtol=1e-6)
    assert 0.8 < trained.results.summary.auc_roc.mean < 0.95


def test_spark_estimator_refuses_parameters_it_would_drop(spark, handbook_features: Lake) -> None:
    train = spark_train.training_set(spark, handbook_features, SINGLE_SPLIT_START, "train")
    with pytest.raises(ConfigError, match=r"\['subsample'\]"):
        spark_train.fit(train, HANDBOOK.names, HANDBOOK.version, {"subsample": 0.5})
    with pytest.raises(ConfigError, match="unknown training engine 'ray'"):
        workflow.train(handbook_features, SINGLE_SPLIT_START, engine="ray")
