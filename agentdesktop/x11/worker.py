"""
L{XWorker}: one thread with its own X connection, so blocking python-xlib
calls stay off the reactor thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from agentdesktop.x11.session import XSession

T = TypeVar("T")


class XWorker:
    """
    X calls are made in the worker's one thread only.  A failed call drops
    the connection so the next one reconnects (except a C{LookupError},
    such as an unknown window, which says nothing about the connection).
    """

    def __init__(self, reactor: Any, name: str) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(1, 1, name=name)
        self.session: XSession | None = None
        self.key: object = None
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.pool.start()
            self.started = True

    def stop(self) -> None:
        if self.started:
            self.started = False
            self.pool.callInThread(self._close)
            self.pool.stop()

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def run(
        self, key: object, display: str, xauthority: str, f: Callable[..., T], *args: Any
    ) -> defer.Deferred[T]:
        """
        Call C{f(session, *args)} in the worker thread, connected to
        DISPLAY with the cookie in XAUTHORITY.  KEY names one X server's
        life: a new key (a restarted Xvnc may reuse the display number)
        means a new connection.
        """

        def work() -> T:
            if self.session is not None and self.key is not key:
                self._close()
            if self.session is None:
                self.session = XSession(display, xauthority)
                self.key = key
            try:
                return f(self.session, *args)
            except LookupError:
                raise  # a lookup that found nothing: the connection is fine
            except BaseException:
                self._close()
                raise

        return deferToThreadPool(self.reactor, self.pool, work)
