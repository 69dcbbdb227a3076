"""`massive-pipeline serve`: the arguments and settings it refuses, each with one line."""

from __future__ import annotations

import socket

import pytest

from massive_pipeline.cli import main


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_refused(port, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", port])
    assert exited.value.code == 2
    assert f"argument --port: not a port (0..65535): {port!r}" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_naming_host_and_port(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("MASSIVE_DATABASE_URL", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"massive-pipeline: error: --host/--port: cannot listen on 127.0.0.1:{port}"
    )


def test_a_malformed_store_url_is_refused_before_listening(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("MASSIVE_DATABASE_URL", "mysql://user:hunter2@db/candles")
    assert main(["serve", "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MASSIVE_DATABASE_URL" in err[0] and "hunter2" not in err[0]
