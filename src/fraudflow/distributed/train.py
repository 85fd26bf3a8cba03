"""Training on Spark: the training-set SQL in Spark's dialect, XGBoost's Spark estimator.

The split is built by ``training.datasets.training_set_sql(..., dialect="spark")`` over the lake's
``transactions`` and ``features`` (read by Spark tasks), standardised with statistics Spark
computes, and fitted by ``xgboost.spark.SparkXGBClassifier``. The result is the same ``Model``
(an XGBoost booster and its scaler) the local engine saves, so evaluation, reports and the
scoring service cannot tell them apart.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fraudflow import schema
from fraudflow.distributed.lake_io import read_table
from fraudflow.distributed.session import spark_job, spark_session
from fraudflow.errors import ConfigError
from fraudflow.features import registry
from fraudflow.features.definitions import FeatureSet
from fraudflow.lake import Lake
from fraudflow.store import offline
from fraudflow.training import model
from fraudflow.training.datasets import training_set_sql
from fraudflow.training.engine import FitOptions, SplitFitter
from fraudflow.training.protocol import DELAY_DAYS, SPLIT_DAYS, Kind, split_days

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: XGBoost parameters the Spark estimator takes as they are (the rest are refused, not dropped).
ESTIMATOR_PARAMS = (
    "max_depth",
    "n_estimators",
    "learning_rate",
    "tree_method",
    "max_bin",
    "base_score",
    "min_child_weight",
)


def register_split(
    spark: SparkSession, lake: Lake, start: dt.date, days: int = SPLIT_DAYS, delay: int = DELAY_DAYS
) -> None:
    """Views ``transactions`` and ``features`` over the days the split's two queries read."""
    first, last = start, split_days(start, "test", days, delay)[1]
    for table in ("transactions", offline.TABLE):
        present = [d for d in lake.partitions(table) if first <= d <= last]
        if not present:
            raise ConfigError(f"{lake.url}/{table}: no partitions between {first} and {last}")
        read_table(spark, lake, table, present).createOrReplaceTempView(table)


def training_set(
    spark: SparkSession,
    lake: Lake,
    start: dt.date,
    kind: Kind = "train",
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
) -> DataFrame:
    """The training (or test) set of the split starting ``start``, by Spark SQL over the lake."""
    feature_set = registry.required(lake)
    register_split(spark, lake, start, days, delay)
    return _split_query(spark, feature_set, start, kind, days, delay)


def _split_query(
    spark: SparkSession,
    feature_set: FeatureSet,
    start: dt.date,
    kind: Kind,
    days: int = SPLIT_DAYS,
    delay: int = DELAY_DAYS,
) -> DataFrame:
    return spark.sql(training_set_sql(start, feature_set.names, kind=kind, days=days, delay=delay, dialect="spark"))


def fit(train: DataFrame, features: list[str], version: str, params: dict[str, Any], seed: int = 0) -> model.Model:
    """Standardise (population statistics, as the local fit) and fit SparkXGBClassifier on one worker."""
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier

    # XGBoost's distributed training has no exact tree method: histograms (256 bins unless max_bin) stand in.
    params = {**params, "tree_method": "hist"} if params.get("tree_method", "exact") == "exact" else dict(params)
    unknown = sorted(set(params) - set(ESTIMATOR_PARAMS))
    if unknown:
        raise ConfigError(f"parameters {unknown} are not passed to the Spark estimator; use {ESTIMATOR_PARAMS}")
    with spark_job("training"):
        row = train.agg(
            *(F.avg(c).alias(f"m{i}") for i, c in enumerate(features)),
            *(F.stddev_pop(c).alias(f"s{i}") for i, c in enumerate(features)),
            F.count("*").alias("n"),
            F.sum(schema.TX_FRAUD).alias("frauds"),
        ).collect()[0]
    if not row["n"]:
        raise ConfigError("the training set is empty")
    mean = np.array([row[f"m{i}"] for i in range(len(features))], dtype=np.float64)
    scale = np.array([row[f"s{i}"] for i in range(len(features))], dtype=np.float64)
    scale[scale == 0] = 1.0
    scaled = train.select(
        *(
            ((F.col(c).cast("double") - float(m)) / float(sd)).alias(c)
            for c, m, sd in zip(features, mean, scale, strict=True)
        ),
        F.col(schema.TX_FRAUD).cast("double").alias(schema.TX_FRAUD),
    )
    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)
    estimator = SparkXGBClassifier(
        features_col=features, label_col=schema.TX_FRAUD, num_workers=1, random_state=seed, verbose=False, **params
    )
    with spark_job("training"):
        booster = estimator.fit(scaled).get_booster()
    booster.feature_names = list(features)
    return model.Model(
        booster,
        list(features),
        version,
        mean,
        scale,
        dict(params),
        {"train_rows": int(row["n"]), "train_frauds": int(row["frauds"]), "seed": seed, "engine": "spark"},
    )


def split_fitter(options: FitOptions) -> SplitFitter:
    """The spark training engine (``training.engine.TrainingEngine``, registered in ``fraudflow.engines``)."""
    spark = spark_session(options.spark_master)
    return lambda start: fit_split(spark, options, start)


def fit_split(spark: SparkSession, options: FitOptions, start: dt.date) -> tuple[model.Model, pa.Table]:
    """Fit on the split's training days with Spark; return the model and the split's test set (Arrow)."""
    feature_set = options.feature_set
    register_split(spark, options.lake, start)
    fitted = fit(
        _split_query(spark, feature_set, start, "train"),
        options.inputs,
        feature_set.version,
        options.params,
        options.seed,
    )
    with spark_job("the test set"):
        test = _split_query(spark, feature_set, start, "test").toArrow()
    return fitted, test
