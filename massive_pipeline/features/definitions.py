"""The features part of the code location: the example consumers of the candle assets.

Only assets: nothing schedules them, so they cost no runs until a user materializes them. The
candle IO manager they read through is bound by the composition root with the other resources.
"""

from __future__ import annotations

from dagster import Definitions

from massive_pipeline.core.catalog import Catalog
from massive_pipeline.features.assets import build_feature_assets


def build_features_definitions(catalog: Catalog) -> Definitions:
    """The `features` group: log returns, realized volatility and ATR per symbol × H1/D1."""
    return Definitions(assets=build_feature_assets(catalog))
