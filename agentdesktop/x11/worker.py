"""
L{XWorker}: one thread with its own X connection, so blocking python-xlib
calls stay off the reactor thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer

from agentdesktop.threads import ConnectionThread
from agentdesktop.x11.session import XSession

T = TypeVar("T")


class XWorker(ConnectionThread[XSession]):
    """
    X calls are made in the worker's one thread only.  A failed call drops
    the connection so the next one reconnects (except a C{LookupError},
    such as an unknown window, which says nothing about the connection).
    """

    def failed(self, error: BaseException) -> BaseException | None:
        if isinstance(error, LookupError):
            return None  # a lookup that found nothing: the connection is fine
        return error

    def run(
        self, key: object, display: str, xauthority: str, f: Callable[..., T], *args: Any
    ) -> defer.Deferred[T]:
        """
        Call C{f(session, *args)} in the worker thread, connected to
        DISPLAY with the cookie in XAUTHORITY.  KEY names one X server's
        life: a new key (a restarted Xvnc may reuse the display number)
        means a new connection.
        """
        return self.call(key, lambda: XSession(display, xauthority), f, *args)
