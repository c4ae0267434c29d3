"""
Knowing when the screen has settled, from the X server itself.

L{DamageWatcher} keeps one DAMAGE object on the root window for the
desktop's life, on an X connection and thread of its own, and notes the
moment of every change.  L{waitForQuiet} waits until no change has come for
a while: it sleeps exactly until the quiet period would end, and when a
change came meanwhile, until the new end.  No fixed sleep, no screenshots
compared.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from Xlib.ext import damage

from agentdesktop.interfaces import Settled
from agentdesktop.x11.session import connect

log = Logger()


class DamageWatcher:
    """
    The time (C{time.monotonic()}) of the last change anywhere on the
    screen, in L{lastChange}.  Creating a DAMAGE object makes the server
    report the whole screen once; that first report is not a change.
    """

    def __init__(self, display: str, xauthority: str) -> None:
        self.display = display
        self.xauthority = xauthority
        self.lastChange = 0.0
        self.changes = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._wake, self._woken = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="agentdesktop-damage", daemon=True
        )

    def start(self) -> None:
        """Start watching (in the watcher's own thread)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and wait for the thread to end."""
        if not self._stopping:
            self._stopping = True
            os.write(self._woken, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        for fd in (self._wake, self._woken):
            try:
                os.close(fd)
            except OSError:
                pass

    def _run(self) -> None:
        try:
            conn = connect(self.display, self.xauthority)
        except BaseException as e:
            self.error = e
            self.ready.set()
            log.error("Cannot watch the screen for changes: {error}", error=e)
            return
        try:
            if not conn.has_extension(damage.extname):
                raise RuntimeError("the X server has no DAMAGE extension")
            conn.damage_query_version()
            handle = conn.screen().root.damage_create(damage.DamageReportNonEmpty)
            conn.sync()
            self.ready.set()
            self._loop(conn, handle)
        except BaseException as e:
            self.error = e
            self.ready.set()
            if not self._stopping:
                log.error("Watching the screen for changes stopped: {error}", error=e)
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def _loop(self, conn: Any, handle: int) -> None:
        first = True
        fd = conn.fileno()
        # python-xlib registers a copy of the extension's event class, so
        # events are told apart by the code it was given, not isinstance.
        notify = conn.extension_event.DamageNotify
        while not self._stopping:
            # python-xlib reads whatever the server sent whenever it talks
            # to it (the subtract and flush below): events may already be
            # queued with nothing left on the socket.  Sleeping in select()
            # then would hide changes for its whole timeout.
            if not conn.pending_events():
                readable, _, _ = select.select([fd, self._wake], [], [], 1.0)
                if self._wake in readable:
                    return
            while conn.pending_events():
                event = conn.next_event()
                if event.type == notify:
                    if not first:
                        self.lastChange = time.monotonic()
                        self.changes += 1
                    first = False
                    # Re-arm: with DamageReportNonEmpty the server reports
                    # again only once the damage region was emptied.
                    conn.damage_subtract(handle)
            conn.flush()


def waitForQuiet(
    clock: IReactorTime,
    now: Callable[[], float],
    lastChange: Callable[[], float],
    settleMs: int,
    timeoutMs: int,
) -> defer.Deferred[Settled]:
    """
    Wait, from NOW(), until LASTCHANGE() is SETTLEMS in the past (or the
    start is, when nothing changed since), but at most TIMEOUTMS.  Both
    NOW and LASTCHANGE are on the same clock (C{time.monotonic} for the
    real desktop); CLOCK only schedules the wake-ups.
    """
    start = now()
    # Compared with a microsecond of slack, so that a timer firing a hair
    # early (float arithmetic) does not cost another round.
    settle, timeout = settleMs / 1000.0 - 1e-6, timeoutMs / 1000.0 - 1e-6
    pending: list[object] = []

    def cancel(_: object) -> None:
        for call in pending:
            call.cancel()  # type: ignore[attr-defined]

    result: defer.Deferred[Settled] = defer.Deferred(cancel)

    def check() -> None:
        pending.clear()
        t = now()
        quietSince = max(start, lastChange())
        waited = int(round((t - start) * 1000))
        if t - quietSince >= settle:
            result.callback(Settled(True, waited))
        elif t - start >= timeout:
            result.callback(Settled(False, waited))
        else:
            wake = min(quietSince + settle, start + timeout) - t
            pending.append(clock.callLater(max(wake, 0.0), check))

    check()
    return result
