"""
An optional raw RFB listener (C{--vnc-listen}): each client gets its own
connection to the desktop's RFB socket, spliced as C{/vnc} does.  It has
no authentication of its own: its clients count as the operator's, who may
send input while a person holds control (SPEC section 16).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from agentdesktop.endpoints import Listener
from agentdesktop.errors import APIError
from agentdesktop.metrics import RAW
from agentdesktop.state import ServiceState
from agentdesktop.vnc.rfb import RFBError
from agentdesktop.vnc.websocket import RFBConnection, ViewerInput, startAndConnect

log = Logger()


class _RawViewer(protocol.Protocol):
    factory: RawRFBFactory

    def __init__(self, state: ServiceState, reactor: Any) -> None:
        self.state = state
        self.reactor = reactor
        self.rfb: RFBConnection | None = None
        self.closed = False
        self.viewerInput: ViewerInput | None = None
        self.uncount: Callable[[], None] | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        # RFB is request/response: do not let Nagle hold an update's tail.
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)
        self.transport.pauseProducing()  # type: ignore[attr-defined]
        defer.Deferred.fromCoroutine(self._connect())

    async def _connect(self) -> None:
        try:
            rfb = await startAndConnect(self.state, self.reactor)
        except Exception as e:
            detail = e.detail if isinstance(e, APIError) else repr(e)
            log.error("Raw VNC viewer refused: {detail}", detail=detail)
            if self.transport is not None:
                self.transport.loseConnection()
            return
        if self.closed:
            rfb.close()
            return
        self.rfb = rfb
        self.viewerInput = ViewerInput(self.state, True, rfb)
        assert self.transport is not None
        transport = self.transport
        self.factory.sessions.add(self)
        self.uncount = self.state.metrics.vncOpened(RAW)
        rfb.attach(transport, transport.loseConnection)
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self.rfb is None or self.viewerInput is None:
            return
        try:
            self.viewerInput.feed(data)
        except RFBError as e:
            log.info("Raw VNC viewer closed: {why}", why=str(e))
            self.rfb.close()
            if self.transport is not None:
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.closed = True
        self.factory.sessions.discard(self)
        if self.uncount is not None:
            self.uncount()
        if self.viewerInput is not None:
            self.viewerInput.close()
        if self.rfb is not None:
            self.rfb.close()


class RawRFBFactory(protocol.Factory):
    """Accepts raw RFB viewers and splices each to the desktop."""

    noisy = False

    def __init__(self, state: ServiceState, reactor: Any) -> None:
        self.state = state
        self.reactor = reactor
        #: The viewers spliced to the desktop.
        self.sessions: set[_RawViewer] = set()

    def buildProtocol(self, addr: Any) -> protocol.Protocol:
        if self.state.shuttingDown:
            return None  # type: ignore[return-value]
        proto = _RawViewer(self.state, self.reactor)
        proto.factory = self
        return proto


def vncListenService(endpoint: str, state: ServiceState, reactor: Any) -> Listener:
    """A listener on ENDPOINT (an endpoint string) that exposes the desktop's raw RFB."""

    def announce(where: str, secure: bool) -> str:
        return f"Raw VNC (no authentication) on {where}"

    return Listener(reactor, "--vnc-listen", endpoint, RawRFBFactory(state, reactor), announce)


