"""
L{Outcome}: the result of one piece of work that any number of callers may
wait for, before or after it is known.  Pure: no reactor.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


class Outcome(Generic[T]):
    """
    Each L{wait} gets its own Deferred, so a caller that gives up (cancels
    its Deferred) does not disturb the work or the other callers.
    """

    def __init__(self) -> None:
        self.done = False
        self.result: T | Failure | None = None
        self._waiters: list[defer.Deferred[T]] = []

    def run(self, d: defer.Deferred[T]) -> None:
        """Take the outcome of D, whenever it fires."""
        d.addBoth(self._set)

    def succeed(self, value: T) -> None:
        """Set the outcome to VALUE (later calls are ignored)."""
        self._set(value)

    def fail(self, error: BaseException) -> None:
        """Set the outcome to ERROR (later calls are ignored)."""
        self._set(Failure(error))

    def _set(self, result: Any) -> None:
        if self.done:
            return
        self.done = True
        self.result = result
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            self._give(w)

    def _give(self, w: defer.Deferred[T]) -> None:
        if w.called:
            return
        if isinstance(self.result, Failure):
            w.errback(Failure(self.result.value, self.result.type, self.result.tb))
        else:
            w.callback(self.result)  # type: ignore[arg-type]

    def wait(self) -> defer.Deferred[T]:
        """@return: a new Deferred with the outcome."""
        w: defer.Deferred[T] = defer.Deferred()
        if self.done:
            self._give(w)
        else:
            self._waiters.append(w)
        return w
