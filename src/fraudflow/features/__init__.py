"""Features: one definition per feature, computed by the batch engines and the online path."""

from fraudflow.features.batch import FeatureSummary, build_features, compute
from fraudflow.features.definitions import (
    FEATURE_SETS,
    FRAUDFLOW,
    FRAUDFLOW2,
    FRAUDFLOW3,
    FRAUDFLOW4,
    HANDBOOK,
    HANDBOOK_FEATURES,
    Feature,
    FeatureSet,
)

__all__ = [
    "FEATURE_SETS",
    "FRAUDFLOW",
    "FRAUDFLOW2",
    "FRAUDFLOW3",
    "FRAUDFLOW4",
    "HANDBOOK",
    "HANDBOOK_FEATURES",
    "Feature",
    "FeatureSet",
    "FeatureSummary",
    "build_features",
    "compute",
]
