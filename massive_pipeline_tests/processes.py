"""Starting, awaiting and stopping the real processes some tests drive (CLI runs, Dagster servers).

Every wait polls a condition with a deadline instead of sleeping a fixed time, and every process
started here is stopped by its own pid, with its output kept in a file the failure message quotes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
T = TypeVar("T")

PIPELINE_VARS = (
    "MASSIVE_API_KEY", "MASSIVE_BASE_URL", "MASSIVE_DATABASE_URL", "MASSIVE_CATALOG", "MASSIVE_RATE_LIMIT_URL",
    "MASSIVE_RATE_LIMIT_PER_MINUTE", "MASSIVE_CRITICAL_RESERVE", "DAGSTER_HOME",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1,
               on_timeout: Callable[[], str] | None = None) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s{': ' + detail if detail else ''}")
        time.sleep(interval)


def pipeline_env(**overrides: str | None) -> dict[str, str]:
    """This process's environment without any pipeline variable, plus `overrides` (None drops one)."""
    env = {k: v for k, v in os.environ.items() if k not in PIPELINE_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    return env


@dataclass
class Proc:
    """A started process with its output in `log`."""

    popen: subprocess.Popen[bytes]
    log: Path
    name: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL to the process group: the process and any children it started die at once."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not finish within {timeout:.0f} s:\n{self.output()}") from None


def start(argv: Sequence[str], *, env: Mapping[str, str], log: Path, name: str, cwd: Path = ROOT) -> Proc:
    """Start `argv` in its own process group (so a kill reaches its children too)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    try:
        popen = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        handle.close()
    return Proc(popen, log, name)


def cli(*args: str) -> list[str]:
    """The `massive-pipeline` console script of this environment."""
    return [str(BIN / "massive-pipeline"), *args]


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
