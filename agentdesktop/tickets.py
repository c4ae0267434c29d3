"""
One-time tickets and the viewer sessions they open (SPEC section 16).
Pure: no reactor; time comes from the clock each is given.

A ticket (C{POST /tickets}, bearer token only) is a short-lived secret
with a scope, C{view} or C{control}.  It is good once: for the viewer page
(which then holds a L{Session}, an HttpOnly cookie, for its own requests
and its reconnecting C{/vnc} connections) or for one C{/vnc} connection.

Secrets are found by the SHA-256 of what the client sent, so the lookup's
timing tells nothing about a stored secret, and the found secret is then
compared in constant time.  Neither is ever logged.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from twisted.internet.interfaces import IReactorTime

from agentdesktop.errors import APIError

SCOPES = ("view", "control")

#: Seconds a ticket lives unless asked otherwise, and the range allowed.
DEFAULT_TTL = 30
MIN_TTL, MAX_TTL = 1, 300

#: A session ends this many seconds after its last use (a request, or one
#: of its /vnc connections closing); never while a connection is open.
SESSION_IDLE = 300.0

#: Live tickets and sessions at most; more are refused (503).
MAX_LIVE = 1000


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "replace")).digest()


@dataclass
class Ticket:
    secret: str
    scope: str
    expires: float


@dataclass(eq=False)
class Session:
    """
    A viewer page's session.

    @ivar scope: C{"view"}, or C{"control"} (a control ticket, or the
        bearer token given in the page's URL).
    @ivar label: how the control lease names this viewer.
    @ivar connections: its open C{/vnc} connections.
    @ivar lastUsed: clock seconds of its last use.
    """

    secret: str
    scope: str
    label: str
    lastUsed: float
    connections: int = field(default=0)


T = TypeVar("T", Ticket, Session)


class _Secrets(abc.ABC, Generic[T]):
    """Values found by a secret, in constant time, that expire."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._items: dict[bytes, T] = {}

    @abc.abstractmethod
    def _expired(self, item: T, now: float) -> bool:
        """Whether ITEM is no longer good at clock time NOW."""

    def _prune(self) -> None:
        now = self.clock.seconds()
        for key, item in list(self._items.items()):
            if self._expired(item, now):
                del self._items[key]

    def _add(self, item: T, what: str) -> None:
        if len(self._items) >= MAX_LIVE:
            self._prune()
            if len(self._items) >= MAX_LIVE:
                raise APIError(503, f"Too many live {what}.", f"At most {MAX_LIVE} at a time.")
        self._items[_digest(item.secret)] = item

    def _find(self, secret: str | None) -> tuple[bytes, T] | None:
        if not secret:
            return None
        key = _digest(secret)
        item = self._items.get(key)
        if item is None or not hmac.compare_digest(
            item.secret.encode("utf-8"), secret.encode("utf-8", "replace")
        ):
            return None
        if self._expired(item, self.clock.seconds()):
            del self._items[key]
            return None
        return key, item

    def __len__(self) -> int:
        return len(self._items)


class TicketBook(_Secrets[Ticket]):
    """The tickets issued and not yet used or expired."""

    def _expired(self, item: Ticket, now: float) -> bool:
        return now >= item.expires

    def issue(self, scope: str, ttl: float = DEFAULT_TTL) -> Ticket:
        """
        A new ticket for SCOPE, good for TTL seconds.

        @raise APIError: 503 when too many are live.
        """
        assert scope in SCOPES and MIN_TTL <= ttl <= MAX_TTL
        ticket = Ticket(secrets.token_urlsafe(32), scope, self.clock.seconds() + ttl)
        self._add(ticket, "tickets")
        return ticket

    def redeem(self, secret: str | None) -> str | None:
        """
        Use the ticket SECRET: its scope, or C{None} when it is unknown,
        expired or already used.  It cannot be used again.
        """
        found = self._find(secret)
        if found is None:
            return None
        key, ticket = found
        del self._items[key]
        return ticket.scope


class Sessions(_Secrets[Session]):
    """The viewer pages' sessions."""

    def __init__(self, clock: IReactorTime, idle: float = SESSION_IDLE) -> None:
        super().__init__(clock)
        self.idle = idle
        self._opened = 0

    def _expired(self, item: Session, now: float) -> bool:
        return item.connections == 0 and now - item.lastUsed >= self.idle

    def open(self, scope: str) -> Session:
        """
        A new session with SCOPE.

        @raise APIError: 503 when too many are live.
        """
        self._opened += 1
        session = Session(
            secrets.token_urlsafe(32), scope, f"viewer {self._opened}", self.clock.seconds()
        )
        self._add(session, "viewer sessions")
        return session

    def find(self, secret: str | None) -> Session | None:
        """The live session SECRET names (now used), or C{None}."""
        found = self._find(secret)
        if found is None:
            return None
        session = found[1]
        session.lastUsed = self.clock.seconds()
        return session

    def connected(self, session: Session) -> None:
        """One of SESSION's /vnc connections opened."""
        session.connections += 1
        session.lastUsed = self.clock.seconds()

    def disconnected(self, session: Session) -> None:
        """One of SESSION's /vnc connections closed."""
        session.connections = max(0, session.connections - 1)
        session.lastUsed = self.clock.seconds()
