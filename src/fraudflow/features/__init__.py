"""Features: one definition per feature, computed by the batch engines and the online path."""

from fraudflow.features.batch import FeatureSummary, build_features, compute
from fraudflow.features.definitions import DEFAULT, DEFAULT_FEATURES, FEATURE_SETS, FRAUDFLOW, Feature, FeatureSet

__all__ = [
    "DEFAULT",
    "DEFAULT_FEATURES",
    "FEATURE_SETS",
    "FRAUDFLOW",
    "Feature",
    "FeatureSet",
    "FeatureSummary",
    "build_features",
    "compute",
]
