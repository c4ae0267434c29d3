"""
VNC for viewers over WebSocket: C{GET /api/v0/desktop/vnc}.

Every viewer gets its own connection to the desktop's RFB socket.  Bytes
are spliced unchanged both ways with Twisted's producer/consumer flow
control: when one side cannot keep up, reading from the other pauses, so a
slow viewer costs a bounded amount of memory.  The byte-moving itself (the
RFB socket's transport and the pump toward the viewer) is in
L{agentdesktop.vnc.splice}.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet import protocol
from twisted.internet.interfaces import ITransport
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server

from agentdesktop.errors import APIError
from agentdesktop.metrics import WEBSOCKET, Relayed
from agentdesktop.state import ServiceState
from agentdesktop.tickets import Session
from agentdesktop.vnc.rfb import ClientStream, RFBError
from agentdesktop.vnc.splice import ViewerPump, connectUnix
from agentdesktop.web.apischema import START_FAILED, Operation, Param, Response, string
from agentdesktop.web.resource import TAKEN_OVER, Call, Endpoint, ensureDesktop

log = Logger()

#: Where Debian's C{novnc} package puts noVNC; C{AGENTDESKTOP_NOVNC_DIR}
#: overrides it.
DEFAULT_NOVNC_DIR = "/usr/share/novnc"

#: Seconds between keep-alive pings, and how long a pong may take.
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0

#: How often and how long to retry connecting to the RFB socket when its
#: small listen backlog is full (EAGAIN) or it refuses (about 3.5 s).
CONNECT_ATTEMPTS = 40
CONNECT_DELAY = 0.025

_FINAL = (errno.ENOENT, errno.EACCES, errno.ENOTSOCK, errno.ENOTDIR)


class RFBConnection(protocol.Protocol):
    """
    Our connection to the desktop's RFB socket (an L{RFBSocket}).  It reads
    nothing until a viewer is attached; then every byte goes to the viewer
    through a L{ViewerPump}, and the viewer's transport, as a streaming
    producer, is paused while Xvnc is slow to take the viewer's input.
    """

    def __init__(self, relayed: Relayed | None = None) -> None:
        self.pump: ViewerPump | None = None
        self.onLost: Callable[[], None] | None = None
        self.lost = False
        #: Where the bytes moved are counted (the service's metrics).
        self.relayed = relayed if relayed is not None else Relayed()

    def dataReceived(self, data: bytes) -> None:
        # One add per read (up to 256 KiB), never per byte.
        self.relayed.toViewer += len(data)
        if self.pump is not None:
            self.pump.send(data)

    def attach(
        self,
        viewerTransport: ITransport,
        onLost: Callable[[], None],
        framed: bool = False,
        isOpen: Callable[[], bool] = lambda: True,
    ) -> ViewerPump:
        """
        Start the splice to VIEWERTRANSPORT (in binary WebSocket frames if
        FRAMED, while ISOPEN() says so).  ONLOST is called once when the RFB
        connection closes.
        """
        transport: Any = self.transport
        assert transport is not None
        viewer: Any = viewerTransport
        self.onLost = onLost
        self.pump = ViewerPump(viewer, transport, framed, isOpen)
        if self.lost:
            onLost()
            return self.pump
        # A twisted.web channel registered itself as producer on the
        # transport it handed over; replace it with ours.
        if getattr(viewer, "producer", None) is not None:
            viewer.unregisterProducer()
        transport.registerProducer(viewer, True)
        self.pump.start()
        return self.pump

    def write(self, data: bytes) -> None:
        if not self.lost and self.transport is not None:
            self.relayed.toServer += len(data)
            self.transport.write(data)

    def close(self) -> None:
        if not self.lost and self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost = True
        if self.pump is not None:
            self.pump.stopProducing()
        if self.onLost is not None:
            onLost, self.onLost = self.onLost, None
            onLost()


async def connectRFB(reactor: Any, path: str, relayed: Relayed | None = None) -> RFBConnection:
    """
    Connect to the RFB socket at PATH, retrying briefly while its backlog
    is full or it refuses; the bytes moved are counted in RELAYED.

    @raise APIError: 500 C{Failed to connect to VNC server.}
    """
    last: OSError | None = None
    for attempt in range(CONNECT_ATTEMPTS):
        rfb = RFBConnection(relayed)
        try:
            connectUnix(reactor, path, rfb)
            return rfb
        except OSError as e:
            last = e
            # A full backlog (EAGAIN) or a refusal while Xvnc restarts is
            # worth another try; a socket that is not there or not ours is not.
            if e.errno in _FINAL:
                break
        await deferLater(reactor, CONNECT_DELAY * min(attempt + 1, 4), lambda: None)
    raise APIError(500, "Failed to connect to VNC server.", _describe(last))


def _describe(e: OSError | None) -> str:
    if e is None:
        return "unknown error"
    return e.strerror or str(e)


async def startAndConnect(state: ServiceState, reactor: Any) -> RFBConnection:
    """
    Make sure the desktop runs and open a new RFB connection to it.

    @raise APIError: 500 with the spec's message for either failure.
    """
    info = await ensureDesktop(state)
    return await connectRFB(reactor, info.rfbSocket, state.metrics.relayed)


# -- WebSocket


class RFBWebSocketProtocol(WebSocketServerProtocol):  # type: ignore[misc]
    """
    One viewer: binary WebSocket messages in and out, spliced to
    C{self.rfb}, which the resource sets before the handshake.
    """

    rfb: RFBConnection | None = None
    sessions: set[Any] | None = None
    #: What of the viewer's bytes reaches the desktop.
    viewerInput: ViewerInput | None = None
    #: Called once when the connection is lost.
    onLost: Callable[[], None] | None = None
    _binary = False

    def onConnect(self, request: ConnectionRequest) -> str | None:
        return "binary" if "binary" in request.protocols else None

    def onOpen(self) -> None:
        rfb = self.rfb
        if rfb is None:
            self.dropConnection(abort=True)
            return
        log.info("VNC viewer {peer} connected", peer=self.peer)
        if self.sessions is not None:
            self.sessions.add(self)
        assert self.transport is not None
        # RFB is request/response: do not let Nagle hold an update's tail.
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)
        # Server frames are unmasked and never compressed: the pump frames
        # RFB bytes itself, one binary message per read, while we are open.
        rfb.attach(
            self.transport, self._rfbLost, framed=True,
            isOpen=lambda: self.state == self.STATE_OPEN,
        )

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """
        Every frame autobahn sends (pings, pongs, close) comes through here;
        the pump must queue behind it.  We never ask for chopped or
        synchronous writes, which autobahn would send later from a queue.
        """
        if self.rfb is not None and self.rfb.pump is not None:
            self.rfb.pump.noteWrite()
        super().sendData(data)

    def _rfbLost(self) -> None:
        if self.state == self.STATE_OPEN:
            self.sendClose(code=1000, reason="VNC server closed the connection")
        elif self.state != self.STATE_CLOSED:
            self.dropConnection(abort=False)

    # Stream frames straight through instead of collecting whole messages.

    def onMessageBegin(self, isBinary: bool) -> None:
        self._binary = isBinary
        if not isBinary:
            self._fail_connection(1003, "this socket carries binary RFB messages only")

    def onMessageFrameBegin(self, length: int) -> None:
        pass

    def onMessageFrameData(self, payload: bytes) -> None:
        if not self._binary or self.failedByMe or self.viewerInput is None:
            return
        try:
            self.viewerInput.feed(payload)
        except RFBError as e:
            log.info("VNC viewer {peer} closed: {why}", peer=self.peer, why=str(e))
            self._closeRFB()
            self._fail_connection(1008, "unsupported RFB message")

    def _closeRFB(self) -> None:
        if self.viewerInput is not None:
            self.viewerInput.close()
        if self.rfb is not None:
            self.rfb.close()

    def onMessageFrameEnd(self) -> None:
        pass

    def onMessageEnd(self) -> None:
        pass

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self._closeRFB()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        try:
            super().connectionLost(reason)
        finally:
            cancelTimers(self)
            self._closeRFB()
            if self.sessions is not None:
                self.sessions.discard(self)
            if self.onLost is not None:
                onLost, self.onLost = self.onLost, None
                onLost()
            log.info("VNC viewer {peer} disconnected", peer=self.peer)


def makeWebSocketFactory(reactor: Any) -> WebSocketServerFactory:
    """The WebSocket settings: binary, no compression, no size limits, pings."""
    factory = WebSocketServerFactory(reactor=reactor)
    factory.protocol = RFBWebSocketProtocol
    factory.setProtocolOptions(
        maxFramePayloadSize=0,
        maxMessagePayloadSize=0,
        autoFragmentSize=0,
        perMessageCompressionAccept=lambda offers: None,
        autoPingInterval=PING_INTERVAL,
        autoPingTimeout=PING_TIMEOUT,
        failByDrop=False,
        webStatus=False,
        openHandshakeTimeout=30,
        closeHandshakeTimeout=5,
    )
    factory.noisy = False
    # autobahn's timers (handshake timeouts, pings) run on txaio's global
    # loop unless told otherwise; use the reactor we were given.
    factory._batched_timer = ReactorTimers(reactor)
    return factory


class _Timer:
    def __init__(self, call: Any) -> None:
        self.call = call

    def cancel(self) -> None:
        if self.call.active():
            self.call.cancel()


class ReactorTimers:
    """
    What autobahn needs of its "batched timer", on a given reactor (and so
    on a test's clock), with timers that are really cancelled.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def call_later(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> _Timer:
        return _Timer(self.reactor.callLater(delay, f, *args, **kwargs))


def cancelTimers(proto: Any) -> None:
    """Cancel the timers autobahn leaves running after a connection is lost."""
    for name in ("closeHandshakeTimeoutCall", "autoPingPendingCall", "autoPingTimeoutCall",
                 "openHandshakeTimeoutCall", "serverConnectionDropTimeoutCall"):
        call = getattr(proto, name, None)
        if call is not None:
            try:
                call.cancel()
            except Exception:
                pass
            setattr(proto, name, None)


class _Bound:
    """
    A factory view that hands one RFB connection, and what of its viewer's
    bytes may reach it, to the protocol it builds.
    """

    def __init__(
        self,
        factory: WebSocketServerFactory,
        rfb: RFBConnection,
        sessions: set[Any],
        viewerInput: ViewerInput,
        onLost: Callable[[], None] | None,
    ) -> None:
        self.factory = factory
        self.rfb = rfb
        self.sessions = sessions
        self.viewerInput = viewerInput
        self.onLost = onLost

    def buildProtocol(self, addr: Any) -> RFBWebSocketProtocol:
        proto = cast(RFBWebSocketProtocol, self.factory.buildProtocol(addr))
        proto.rfb = self.rfb
        proto.sessions = self.sessions
        proto.viewerInput = self.viewerInput
        proto.onLost = self.onLost
        return proto


class ViewerInput:
    """
    One viewer's bytes on their way to the desktop (SPEC section 16): a
    L{ClientStream} drops the input it may not send (and touches the control
    lease with what it may); when the viewer loses the right to send input,
    or goes away, the keys and buttons it still holds are released.  (Xvnc
    releases a departed viewer's keys, but not its buttons; an XTEST release
    does not undo a button Xvnc's own pointer pressed.)
    """

    def __init__(self, state: ServiceState, mayControl: bool, rfb: RFBConnection) -> None:
        self.control = state.control
        self.stream = ClientStream(lambda: state.viewerMayInput(mayControl), state.control.touch)
        self.rfb = rfb
        self.closed = False
        self.control.changed.append(self.controlChanged)

    def feed(self, data: bytes) -> None:
        """
        Forward what of DATA may reach the desktop.

        @raise RFBError: the stream cannot be followed: close the viewer.
        """
        if self.closed:
            return
        try:
            forward = self.stream.feed(data)
        except RFBError:
            self.close()
            raise
        if forward:
            self.rfb.write(forward)

    def controlChanged(self) -> None:
        if not self.stream.mayInput():
            self.letGo()

    def letGo(self) -> None:
        """Release what the viewer holds pressed."""
        releases = self.stream.releases()
        if releases:
            self.rfb.write(releases)

    def close(self) -> None:
        """The viewer is going: let go, and stop following the lease."""
        if self.closed:
            return
        self.closed = True
        self.letGo()
        if self.controlChanged in self.control.changed:
            self.control.changed.remove(self.controlChanged)


class VNCEndpoint(Endpoint):
    """
    C{GET /api/v0/desktop/vnc}: start the desktop, connect to its RFB
    socket, then accept the WebSocket and splice.  A viewer page's session
    or a ticket admits it too; the viewer's input reaches the desktop only
    when SPEC section 16 allows.
    """

    viewer = True
    ticketed = True
    api = {"GET": Operation(
        "vnc", "RFB (VNC) over WebSocket", tags=["viewer"],
        description="A WebSocket (send Upgrade: websocket) whose binary messages carry the "
                    "desktop's raw RFB protocol both ways; subprotocol binary when offered.",
        query=(Param("ticket", string("A one-time ticket from POST /tickets.")),),
        responses={
            101: Response("Switching protocols: the WebSocket is open.", contentType=None),
            426: "`WebSocket upgrade required.`: a plain request without Upgrade: websocket.",
            500: "`Failed to connect to VNC server.`, or " + START_FAILED,
        },
    )}

    def __init__(self, state: ServiceState, reactor: Any) -> None:
        super().__init__(state)
        self.reactor = reactor
        self.factory = makeWebSocketFactory(reactor)
        #: The open viewer connections.
        self.sessions: set[RFBWebSocketProtocol] = set()

    async def handle_GET(self, call: Call) -> Any:
        request = call.request
        call.action = "vnc"
        grant = call.grant
        assert grant is not None
        rfb = await startAndConnect(self.state, self.reactor)
        if call.gone or request.channel is None or request.channel.transport is None:
            rfb.close()
            return None
        if b"websocket" not in (request.getHeader(b"upgrade") or b"").lower():
            # Same order as the reference API: desktop, VNC, then accept.
            rfb.close()
            request.setHeader(b"upgrade", b"websocket")
            raise APIError(426, "WebSocket upgrade required.",
                           "Connect with a WebSocket client such as noVNC.")
        viewerInput = ViewerInput(self.state, grant.mayControl, rfb)
        onLost = self.countConnection(grant.session)
        bound = _Bound(self.factory, rfb, self.sessions, viewerInput, onLost)
        result = WebSocketResource(bound).render(request)
        if result is server.NOT_DONE_YET:
            return TAKEN_OVER
        # Not an upgrade autobahn could take over (e.g. HTTP/2).
        viewerInput.close()
        rfb.close()
        onLost()
        if isinstance(result, bytes):
            request.write(result)
        return None

    def countConnection(self, session: Session | None) -> Callable[[], None]:
        """
        Count this connection as open (and keep SESSION alive meanwhile).

        @return: what to call, once, when it closes.
        """
        closed = self.state.metrics.vncOpened(WEBSOCKET)
        if session is None:
            return closed
        sessions = self.state.sessions
        sessions.connected(session)

        def lost() -> None:
            closed()
            sessions.disconnected(session)

        return lost
