"""Small markdown tables for Dagster metadata: the UI renders `MetadataValue.md`, and a sample of
the failing rows says more than a count alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SAMPLE_ROWS = 10


def _cell(value: object) -> str:
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if value.second == 0 else value.isoformat()
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] | None = None, max_rows: int = SAMPLE_ROWS,
                   total: int | None = None) -> str:
    """The first `max_rows` rows as a markdown table, with a line saying how many were left out;
    `total`: how many rows there are when `frame` is only the first of them (a ranged run keeps a
    sample, not every row, of what its slices found)."""
    cols = list(columns) if columns is not None else list(frame.columns)
    if frame.empty:
        return "_none_"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame[cols].head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    rows = len(frame) if total is None else total
    if rows > max_rows:
        lines.append(f"\n_… and {rows - max_rows} more_")
    return "\n".join(lines)
