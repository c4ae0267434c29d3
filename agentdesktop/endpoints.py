"""
The service's listening endpoints (Twisted endpoint strings, from
C{--listen} and C{--vnc-listen}): checked when the options are read,
without listening (L{planListen}, L{checkServerEndpoint},
L{isLocalEndpoint}), then listened on by a L{Listener} service that logs
the address it really bound (C{tcp:0} included) and turns a failure to
bind into L{ListenFailed}, one line naming the option.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.application import service
from twisted.internet import defer, endpoints, protocol
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

EXAMPLE = "tcp:8790:interface=127.0.0.1"


@dataclass
class ListenPlan:
    """
    Where an endpoint string would listen, found by listening on a
    L{MemoryReactor} (which records the call and binds nothing).

    @ivar tcp: (port, interface) of each TCP or TLS listener.
    @ivar unix: the path of each unix socket.
    @ivar other: whether it listens some other way (e.g. a socket systemd passed).
    """

    tcp: list[tuple[int, str]] = field(default_factory=list)
    unix: list[str] = field(default_factory=list)
    other: bool = False


def planListen(description: str) -> ListenPlan:
    """
    Where DESCRIPTION would listen.

    @raise ValueError: DESCRIPTION is not an endpoint string this machine
        can listen on (the message says why).
    """
    reactor = MemoryReactor()
    failures: list[Failure] = []
    try:
        endpoint = endpoints.serverFromString(reactor, description)
        endpoint.listen(protocol.Factory()).addErrback(failures.append)
    except Exception as e:
        raise ValueError(str(e) or repr(e)) from None
    if failures:
        raise ValueError(failures[0].getErrorMessage())
    plan = ListenPlan(
        tcp=[(s[0], s[3]) for s in reactor.tcpServers] + [(s[0], s[4]) for s in reactor.sslServers],
        unix=[s[0] for s in reactor.unixServers],
        other=bool(reactor.adoptedPorts),
    )
    for port, _ in plan.tcp:
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is not between 0 and 65535")
    return plan


def checkServerEndpoint(option: str, description: str) -> ListenPlan:
    """
    L{planListen}, with an error that names OPTION and shows an example.

    @raise ValueError: one line, e.g. C{--listen tcp:99999: port 99999 is
        not between 0 and 65535 (an endpoint string like ...)}.
    """
    try:
        return planListen(description)
    except ValueError as e:
        raise ValueError(
            f"{option} {description}: {e} (give a Twisted endpoint string like {EXAMPLE})"
        ) from None


def isLocalEndpoint(description: str) -> bool:
    """
    Whether the server endpoint DESCRIPTION can only be reached from this
    machine: unix sockets, or TCP/TLS bound to a loopback address.

    @raise ValueError: DESCRIPTION is not an endpoint string.
    """
    plan = planListen(description)
    if plan.other:
        return False
    for _, interface in plan.tcp:
        try:
            if not ipaddress.ip_address(interface.split("%", 1)[0]).is_loopback:
                return False
        except ValueError:
            return False
    return True


def describeAddress(address: Any) -> str:
    """A bound address as a person reads it: C{127.0.0.1:8790}, C{[::1]:8790}, a path."""
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}"
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name
        return f"unix socket {name.decode() if isinstance(name, bytes) else name}"
    return str(address)


class ListenFailed(Exception):
    """An endpoint could not be listened on at start-up (one line: the option, the endpoint, why)."""


class Listener(service.Service):
    """
    Listens on the endpoint string DESCRIPTION (given as OPTION) with
    FACTORY while running.  Once bound it logs where, as ANNOUNCE makes it
    from the bound address (a URL for the HTTP API).  A failure to bind
    while starting raises L{ListenFailed}; one that comes later is logged.
    """

    def __init__(
        self,
        reactor: Any,
        option: str,
        description: str,
        factory: IProtocolFactory,
        announce: Callable[[str, bool], str],
    ) -> None:
        self.reactor = reactor
        self.option = option
        self.description = description
        self.factory = factory
        self.announce = announce
        self.port: IListeningPort | None = None
        self._listening: defer.Deferred[IListeningPort] | None = None

    @property
    def secure(self) -> bool:
        return self.description.split(":", 1)[0].lower() == "ssl"

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if self._listening is None:
            self._listen()

    def _listen(self) -> None:
        d = endpoints.serverFromString(self.reactor, self.description).listen(self.factory)
        if not d.called:
            # Endpoints that bind later (none of tcp, ssl, unix, systemd).
            d.addCallback(self._bound)
            d.addErrback(lambda f: log.failure("{option} {endpoint} failed", f,
                                               option=self.option, endpoint=self.description))
            self._listening = d
            return
        result: list[Any] = []
        d.addBoth(result.append)
        if isinstance(result[0], Failure):
            raise ListenFailed(f"{self.option} {self.description}: {result[0].getErrorMessage()}")
        self._listening = defer.succeed(self._bound(result[0]))

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        where = describeAddress(port.getHost())
        log.info("{what}", what=self.announce(where, self.secure), address=where,
                 option=self.option, endpoint=self.description)
        return port

    def whenListening(self) -> defer.Deferred[IListeningPort]:
        """The listening port, once bound."""
        if self.port is not None:
            return defer.succeed(self.port)
        assert self._listening is not None, "not started"
        d: defer.Deferred[IListeningPort] = defer.Deferred()

        def bound(port: IListeningPort) -> IListeningPort:
            d.callback(port)
            return port

        self._listening.addCallback(bound)
        return d

    def stopService(self) -> defer.Deferred[Any] | None:
        super().stopService()
        listening, self._listening = self._listening, None
        port, self.port = self.port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)  # type: ignore[arg-type]
        if listening is not None:
            listening.cancel()
        return None
