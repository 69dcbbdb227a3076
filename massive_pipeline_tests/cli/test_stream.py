"""`massive-pipeline stream`: an unknown symbol is one line; SIGTERM stops a live stream cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from massive_pipeline.cli import main
from massive_pipeline.store import CandleStore
from massive_pipeline.testing.binance_server import BinanceServer
from massive_pipeline.testing.binance_server.stream import KlineStream

CATALOG = """\
symbols:
  - {symbol: BTCUSD, ticker: "X:BTCUSD", asset_class: crypto, priority: critical, calendar: crypto, start: 2026-01-01}
  - {symbol: BTCUSDT, ticker: BTCUSDT, provider: binance, asset_class: crypto, priority: high, calendar: crypto,
     start: 2026-01-01}
"""


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    monkeypatch.setenv("MASSIVE_CATALOG", str(path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", f"sqlite:///{tmp_path}/candles.sqlite")
    return path


@pytest.mark.parametrize(("symbols", "says"), [
    ("ETHUSDT", "no catalog entry with provider binance and ticker ETHUSDT (entries that can stream: BTCUSDT)"),
    ("BTCUSD", "no catalog entry with provider binance and ticker BTCUSD (entries that can stream: BTCUSDT)"),
])
def test_a_symbol_no_binance_entry_streams_is_one_line(catalog: Path, capsys, symbols: str, says: str):
    assert main(["stream", "--symbols", symbols]) == 2
    err = capsys.readouterr().err
    assert err == f"massive-pipeline: error: {says}\n"


def test_a_bad_stream_url_is_one_line(catalog: Path, capsys, monkeypatch):
    monkeypatch.setenv("BINANCE_WS_URL", "https://stream.example")
    assert main(["stream", "--symbols", "btcusdt"]) == 2
    assert capsys.readouterr().err == (
        "massive-pipeline: error: BINANCE_WS_URL must be a ws:// or wss:// URL, got 'https://stream.example'\n")


def test_sigterm_stops_a_live_stream_cleanly_and_status_shows_what_it_wrote(catalog: Path, tmp_path: Path):
    stream = KlineStream()
    with BinanceServer(now="2026-03-02T12:00:05Z", speed=120, extensions=[stream.mount]) as server:
        env = {**os.environ, "BINANCE_WS_URL": server.url.replace("http://", "ws://"),
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen([sys.executable, "-m", "massive_pipeline.cli", "stream", "--symbols", "BTCUSDT"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        stderr: list[str] = []
        threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()  # never let it block
        try:
            first = proc.stdout.readline()
            assert first.startswith("streaming BTCUSDT from ws://127.0.0.1:") and "Ctrl-C or SIGTERM" in first
            written = [proc.stdout.readline() for _ in range(2)]
            assert all(line.startswith("BTCUSDT M1 2026-03-02 12:") and "written" in line for line in written), written
            proc.send_signal(signal.SIGTERM)
            rest, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, "".join(stderr)[-2000:]
    last = rest.strip().splitlines()[-1]
    assert last.startswith("stream stopped: ") and "closed klines written" in last
    assert "Traceback" not in "".join(stderr)
    with CandleStore(f"sqlite:///{tmp_path}/candles.sqlite") as store:
        status = store.sync_status().set_index("symbol").loc["BTCUSDT"]
        stored = store.read("BTCUSDT", "M1")
    assert status["status"] == "ok" and status["timeframe"] == "M1" and status["rows"] == len(stored) >= 2
    assert status["last_bar_ts"] == stored["ts"].max() >= pd.Timestamp("2026-03-02 12:00", tz="UTC")
