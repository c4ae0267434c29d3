"""
L{ConnectionThread}: one thread that owns one blocking connection (to the X
server, to the accessibility bus), so blocking calls stay off the reactor
thread and the connection is only ever touched by that thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")


class Closeable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closeable)


class ConnectionThread(Generic[C]):
    """
    Calls run in the one thread, with the connection made on first use.
    KEY names the life of what the connection goes to (one X server's life,
    one accessibility bus): a call with a new key closes the old connection
    and makes a new one.  What a failed call does to the connection is
    L{failed}'s decision.

    @ivar connection: the open connection, or C{None}.
    """

    def __init__(self, reactor: Any, name: str) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(1, 1, name=name)
        self.connection: C | None = None
        self.key: object = None
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.pool.start()
            self.started = True

    def stop(self) -> None:
        """Close the connection in its thread and let the thread end."""
        if self.started:
            self.started = False
            self.pool.callInThread(self._close)
            self.pool.stop()

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def failed(self, error: BaseException) -> BaseException | None:
        """
        A call raised ERROR: return C{None} to let it through and keep the
        connection, or the exception to raise instead after the connection
        is dropped (the next call reconnects).  By default every error
        drops the connection.
        """
        return error

    def call(self, key: object, connect: Callable[[], C], f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """C{f(connection, *args)} in the thread; C{connect()} makes the connection when there is none for KEY."""

        def work() -> T:
            if self.connection is not None and self.key is not key:
                self._close()
            if self.connection is None:
                self.connection = connect()
                self.key = key
            try:
                return f(self.connection, *args)
            except BaseException as e:
                instead = self.failed(e)
                if instead is None:
                    raise
                self._close()
                if instead is e:
                    raise
                raise instead from None

        return deferToThreadPool(self.reactor, self.pool, work)
