"""
The control lease (SPEC section 16): while a person holds it, agent input
is refused and viewers allowed to send input may.  Pure: no reactor; time
comes from the clock it is given.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

log = Logger()

#: The message every agent input path answers while a person holds control.
CONTROLLED = "A person is controlling the desktop."


def rfc3339(seconds: float) -> str:
    """SECONDS since the epoch as an RFC 3339 UTC time, to the millisecond."""
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ControlLease:
    """
    Who controls the desktop: nobody (the agent may send input) or one
    person, until they hand back or send no input for L{idleTimeout}
    seconds.

    Input from a viewer allowed to send it calls L{touch}, which only
    notes the time: the one idle timer, when it fires early, sleeps again
    for what is left, so that a stream of pointer events costs no timer
    churn.

    @ivar holder: who holds control (a label for people), or C{None}.
    @ivar owner: an opaque key for the holder (which session or
        credential took control), or C{None}.
    @ivar since: when control was taken (clock seconds), or C{None}.
    @ivar changed: called with no arguments whenever control is taken or
        given back (the service releases every key and button then); one
        may return a Deferred, which L{settled} waits for.
    """

    def __init__(self, clock: IReactorTime, idleTimeout: float = 60.0) -> None:
        self.clock = clock
        self.idleTimeout = idleTimeout
        self.holder: str | None = None
        self.owner: object | None = None
        self.since: float | None = None
        self.lastInput = 0.0
        self.changed: list[Callable[[], Any]] = []
        self._timer: IDelayedCall | None = None
        self._pending: list[defer.Deferred[Any]] = []

    @property
    def held(self) -> bool:
        """Whether a person holds control."""
        return self.holder is not None

    def take(self, holder: str, owner: object | None = None) -> None:
        """
        HOLDER (on behalf of OWNER) takes control, from nobody or from
        whoever held it; the idle time starts again.  Taking it again
        while holding it only does that.
        """
        takenOver = self.holder is None or self.owner is not owner
        if takenOver:
            self.since = self.clock.seconds()
        self.holder = holder
        self.owner = owner
        self.touch()
        if self._timer is None:
            self._timer = self.clock.callLater(self.idleTimeout, self._idle)
        if takenOver:
            log.info("Control taken by {holder}", holder=holder)
            self._notify()

    def release(self, why: str = "handed back") -> None:
        """Give control back to the agent (nothing happens if nobody holds it)."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if self.holder is None:
            return
        log.info("Control {why} by {holder}", why=why, holder=self.holder)
        self.holder = None
        self.owner = None
        self.since = None
        self._notify()

    def close(self) -> None:
        """The service is stopping: cancel the idle timer, tell nobody."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.changed.clear()

    def touch(self) -> None:
        """Input from a viewer allowed to send it: the idle time starts again."""
        self.lastInput = self.clock.seconds()

    def status(self) -> dict[str, Any]:
        """C{{"held", "holder", "since"}} as C{GET /control} answers."""
        return {
            "held": self.held,
            "holder": self.holder,
            "since": rfc3339(self.since) if self.since is not None else None,
        }

    def _idle(self) -> None:
        self._timer = None
        left = self.lastInput + self.idleTimeout - self.clock.seconds()
        if left > 0:
            self._timer = self.clock.callLater(left, self._idle)
            return
        self.release("timed out after no input")

    def settled(self) -> defer.Deferred[None]:
        """
        A Deferred that fires once what the last change started (a
        C{changed} callback that returned a Deferred) has finished.
        """
        pending = [d for d in self._pending if not d.called]
        self._pending = pending
        return defer.DeferredList(pending, consumeErrors=True).addCallback(lambda _: None)

    def _notify(self) -> None:
        self._pending = []
        for f in list(self.changed):
            try:
                result = f()
            except Exception:
                log.failure("A control change callback failed")
                continue
            if isinstance(result, defer.Deferred):
                self._pending.append(result)
