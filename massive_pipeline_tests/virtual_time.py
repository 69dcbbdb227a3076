"""A virtual clock on which several actors (threads standing in for processes) play a scenario.

Only one actor runs at a time; `sleep` hands over to whichever actor wakes earliest (ties: the one
that went to sleep first), and the clock jumps to that moment. So a scenario of minutes on a
60-second window plays in well under a second, and the same way every time, with the limiter's
real backend and real `acquire` loop, given `clock=vt.now, sleep=vt.sleep`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable


class VirtualTime:
    def __init__(self, start: float = 0.0, stall_timeout: float = 30.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._wakeups: list[tuple[float, int, int]] = []  # (time, order, actor)
        self._order = itertools.count()
        self._running: int | None = None
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._local = threading.local()
        self._stall_timeout = stall_timeout

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        """Called by the running actor: resume it `seconds` later on the virtual clock."""
        actor = self._local.actor
        with self._cond:
            heapq.heappush(self._wakeups, (self._now + max(0.0, seconds), next(self._order), actor))
            self._running = None
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._running == actor)

    def spawn(self, at: float, body: Callable[[], None]) -> None:
        """An actor that starts `body` at virtual time `at`."""
        actor = len(self._threads)

        def run() -> None:
            self._local.actor = actor
            with self._cond:
                self._cond.wait_for(lambda: self._running == actor)
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                self._errors.append(exc)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()

        with self._cond:
            heapq.heappush(self._wakeups, (at, next(self._order), actor))
        thread = threading.Thread(target=run, daemon=True, name=f"actor-{actor}")
        self._threads.append(thread)
        thread.start()

    def run(self) -> None:
        """Play until every actor has finished; an actor's exception is raised here."""
        with self._cond:
            while True:
                if not self._cond.wait_for(lambda: self._running is None, timeout=self._stall_timeout):
                    raise TimeoutError(
                        f"actor {self._running} ran {self._stall_timeout:.0f} s without yielding")
                if not self._wakeups:
                    break
                at, _, actor = heapq.heappop(self._wakeups)
                self._now = max(self._now, at)
                self._running = actor
                self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=self._stall_timeout)
        if self._errors:
            raise self._errors[0]
