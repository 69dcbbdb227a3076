"""Bad configuration is refused up front with one clear message naming what is wrong, both by
the command line and when Dagster loads the code location (as `dagster dev` does), and nothing
runs: a catalog symbol carrying an SQL fragment, an unknown calendar, a negative history start,
and a `MASSIVE_DATABASE_URL` that does not parse (whose password never shows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance

from massive_pipeline.cli import main
from massive_pipeline.core.catalog import CatalogError
from massive_pipeline.definitions import build_definitions
from massive_pipeline.store import StoreConfigError
from massive_pipeline_tests.processes import BIN, pipeline_env, start
from massive_pipeline_tests.reliability.conftest import Figures

GOOD_ENTRY = '{symbol: EURUSD, ticker: "C:EURUSD", asset_class: forex, priority: critical, calendar: forex, start: 2026-09-01}'
INJECTED = "EURUSD'); DROP TABLE candles;--"
BAD_URL_PASSWORD = "hunter2-secret"

# name -> (catalog entry or None for the good one, MASSIVE_DATABASE_URL or None, expected error type,
#          text the message must contain)
CASES: dict[str, tuple[str | None, str | None, type[Exception], list[str]]] = {
    "sql in symbol": (
        GOOD_ENTRY.replace("symbol: EURUSD", f'symbol: "{INJECTED}"'), None, CatalogError,
        ["entry #1", "field 'symbol'", "DROP TABLE", "must be 2 to 12 upper-case letters or digits"],
    ),
    "unknown calendar": (
        GOOD_ENTRY.replace("calendar: forex", "calendar: moon"), None, CatalogError,
        ["entry #1 (EURUSD)", "field 'calendar'", "unknown calendar 'moon'", "known calendars: forex"],
    ),
    "negative history start": (
        GOOD_ENTRY.replace("start: 2026-09-01", "start: -30"), None, CatalogError,
        ["entry #1 (EURUSD)", "field 'start'", "-30"],
    ),
    "negative start date": (
        GOOD_ENTRY.replace("start: 2026-09-01", 'start: "-2026-09-01"'), None, CatalogError,
        ["entry #1 (EURUSD)", "field 'start'", "not a date in the form YYYY-MM-DD"],
    ),
    "unparsable database url": (
        None, f"postgresql://candles:{BAD_URL_PASSWORD}@db.internal:five-four-three-two/candles", StoreConfigError,
        ["MASSIVE_DATABASE_URL", "is not a valid SQLAlchemy URL", "***"],
    ),
}


def _environment(tmp_path: Path, entry: str | None, database_url: str | None) -> dict[str, str]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(f"symbols:\n  - {entry or GOOD_ENTRY}\n")
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return pipeline_env(
        DAGSTER_HOME=str(home), MASSIVE_CATALOG=str(catalog), MASSIVE_API_KEY="bad-input-key",
        MASSIVE_BASE_URL="http://127.0.0.1:9", MASSIVE_DATABASE_URL=database_url,
        MASSIVE_RATE_LIMIT_URL=f"sqlite:///{tmp_path / 'limiter.sqlite'}",
    )


def _apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("MASSIVE_DATABASE_URL", "MASSIVE_BASE_URL", "MASSIVE_RATE_LIMIT_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name.startswith(("MASSIVE_", "DAGSTER_HOME")):
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize("case", list(CASES))
def test_refused_by_the_command_line(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str], figures: Figures) -> None:
    entry, url, _, expected = CASES[case]
    env = _environment(tmp_path, entry, url)
    _apply(monkeypatch, env)
    code = main(["backfill", "--symbols", "EURUSD", "--timeframes", "M1", "--start", "2026-10-05",
                 "--end", "2026-10-05"])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("massive-pipeline: error: "), err
    for text in expected:
        assert text in err, f"{text!r} not in {err!r}"
    assert BAD_URL_PASSWORD not in err
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_runs() == []  # refused before any run was launched
    figures["message"] = err


@pytest.mark.parametrize("case", list(CASES))
def test_refused_when_the_definitions_load(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry, url, error_type, expected = CASES[case]
    _apply(monkeypatch, _environment(tmp_path, entry, url))
    with pytest.raises(error_type) as info:
        build_definitions()
    message = str(info.value)
    for text in expected:
        assert text in message
    assert BAD_URL_PASSWORD not in message


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sql in symbol", "unparsable database url"])
def test_refused_by_dagster_loading_the_code_location(case: str, tmp_path: Path) -> None:
    """What `dagster dev` and the code server show: the load fails with the same message."""
    entry, url, error_type, expected = CASES[case]
    proc = start([str(BIN / "dagster"), "definitions", "validate", "-m", "massive_pipeline.definitions"],
                 env=_environment(tmp_path, entry, url), log=tmp_path / "validate.log", name="definitions validate")
    proc.wait(180)
    output = proc.output(50000)
    assert "Validation for 1 code locations failed" in output, output
    assert error_type.__name__ in output
    for text in expected:
        assert text in output
    assert BAD_URL_PASSWORD not in output
