"""The code location's composition: `build_definitions` and the resources it binds by default.

Dagster loads `massive_pipeline.definitions`, which builds the location at import; everything that
composes a location of its own (the CLI, the simulation, tests) imports `build_definitions` from
here, so importing it builds nothing.
"""

from massive_pipeline.location.compose import build_definitions, default_resources

__all__ = ["build_definitions", "default_resources"]
