"""The code location Dagster loads (`[tool.dagster]` in pyproject.toml, `workspace.yaml`,
`dagster code-server start -m massive_pipeline.definitions`): the composition of
`massive_pipeline.location`, built once when this module is imported, from the environment (the
catalog from `MASSIVE_CATALOG` or the packaged `catalog.yaml`).
"""

from massive_pipeline.location import build_definitions, default_resources

__all__ = ["build_definitions", "default_resources", "defs"]

defs = build_definitions()
