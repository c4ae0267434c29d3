"""
VNC for viewers: C{GET /api/v0/desktop/vnc} (RFB over WebSocket), an
optional raw RFB listener, and the noVNC viewer page.

Every viewer gets its own connection to the desktop's RFB socket.  Bytes
are spliced unchanged both ways with Twisted's producer/consumer flow
control: when one side cannot keep up, reading from the other pauses, so a
slow viewer costs a bounded amount of memory.
"""

from __future__ import annotations

import errno
import struct
import os
from importlib import resources as importlib_resources
from typing import Any, cast

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.application import strports
from twisted.application.service import IService
from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.interfaces import ITransport
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server, static

from agentdesktop.errors import APIError
from agentdesktop.web import State, ensureDesktop, writeError

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

#: Bytes read at once from either side, and the write buffer at which a
#: side pauses the other.
SPLICE_BUFFER = 256 * 1024

_FINAL = (errno.ENOENT, errno.EACCES, errno.ENOTSOCK, errno.ENOTDIR)


def directWrite(transport: Any, parts: list[bytes]) -> None:
    """
    Write PARTS to TRANSPORT, in order.  When the transport's own buffer is
    empty, send them straight to its socket with one sendmsg (no joining
    copies in Python), and hand only what the kernel did not take to
    C{transport.write}, which then applies the usual flow control.  Any
    other transport (TLS, in-memory) just gets C{write}.
    """
    sock = getattr(transport, "socket", None)
    if (
        sock is None
        or getattr(transport, "disconnecting", True)
        or getattr(transport, "_tempDataBuffer", True)
        or len(getattr(transport, "dataBuffer", b"x")) - getattr(transport, "offset", 0) > 0
        or getattr(transport, "producerPaused", False)
    ):
        for part in parts:
            transport.write(part)
        return
    try:
        sent = sock.sendmsg(parts)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # Let the transport meet (and report) the error its own way.
        for part in parts:
            transport.write(part)
        return
    for part in parts:
        if sent >= len(part):
            sent -= len(part)
            continue
        transport.write(part[sent:] if sent else part)
        sent = 0


def _frameHeader(length: int) -> bytes:
    """An unmasked, final, binary WebSocket frame header for LENGTH bytes."""
    if length <= 125:
        return bytes((0x82, length))
    if length <= 0xFFFF:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class RFBConnection(protocol.Protocol):
    """
    Our connection to the desktop's RFB socket.  It reads nothing until a
    viewer is attached; then every byte goes to the viewer through
    C{sink(data)}, and the two transports are registered as each other's
    streaming producers.
    """

    def __init__(self) -> None:
        self.sink: Any = None
        self.onLost: Any = None
        self.pending: list[bytes] = []
        self.lost = False

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self.sink is None:
            self.pending.append(data)
        else:
            self.sink(data)

    def attach(self, viewerTransport: ITransport, sink: Any, onLost: Any) -> None:
        """
        Start the splice: our bytes go to SINK, each transport becomes the
        other's producer, reading resumes.  ONLOST is called once when the
        RFB connection closes.
        """
        transport: Any = self.transport
        assert transport is not None
        self.sink = sink
        self.onLost = onLost
        if self.lost:
            onLost()
            return
        # Read and buffer in bigger pieces than Twisted's 64 KiB: an RFB
        # update is megabytes.  This also sets the write-buffer size at
        # which each transport pauses the other, so memory stays bounded.
        viewer: Any = viewerTransport
        for t in (transport, viewer):
            if isinstance(getattr(t, "bufferSize", None), int):
                t.bufferSize = SPLICE_BUFFER
        # A twisted.web channel registered itself as producer on the
        # transport it handed over; replace it with ours.
        if getattr(viewer, "producer", None) is not None:
            viewer.unregisterProducer()
        viewer.registerProducer(transport, True)
        transport.registerProducer(viewer, True)
        pending, self.pending = self.pending, []
        for data in pending:
            sink(data)
        transport.resumeProducing()

    def write(self, data: bytes) -> None:
        if not self.lost and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if not self.lost and self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost = True
        if self.onLost is not None:
            onLost, self.onLost = self.onLost, None
            onLost()


async def connectRFB(reactor: Any, path: str) -> RFBConnection:
    """
    Connect to the RFB socket at PATH, retrying briefly while its backlog
    is full.

    @raise APIError: 500 C{Failed to connect to VNC server.}
    """
    last: BaseException | None = None
    for attempt in range(CONNECT_ATTEMPTS):
        rfb = RFBConnection()
        try:
            await connectProtocol(UNIXClientEndpoint(reactor, path), rfb)
            return rfb
        except error.ConnectError as e:
            last = e
            # Twisted reports a unix connect that hit a full backlog
            # (EAGAIN) as ConnectError(ConnectionDone); retry everything
            # except a socket that is not there or not ours.
            if getattr(e, "osError", None) in _FINAL:
                break
        await deferLater(reactor, CONNECT_DELAY * min(attempt + 1, 4), lambda: None)
    raise APIError(500, "Failed to connect to VNC server.", _describe(last))


def _describe(e: BaseException | None) -> str:
    osError = getattr(e, "osError", None)
    if isinstance(osError, Failure):
        return osError.getErrorMessage()
    if isinstance(osError, int):
        return os.strerror(osError)
    return getattr(e, "string", "") or str(e) or "unknown error"


async def startAndConnect(state: State, reactor: Any) -> RFBConnection:
    """
    Make sure the desktop runs and open a new RFB connection to it.

    @raise APIError: 500 with the spec's message for either failure.
    """
    info = await ensureDesktop(state)
    return await connectRFB(reactor, info.rfbSocket)


# -- WebSocket


class RFBWebSocketProtocol(WebSocketServerProtocol):  # type: ignore[misc]
    """
    One viewer: binary WebSocket messages in and out, spliced to
    C{self.rfb}, which the resource sets before the handshake.
    """

    rfb: RFBConnection | None = None
    sessions: set[Any] | None = None
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
        rfb.attach(self.transport, self._fromRFB, self._rfbLost)

    def _fromRFB(self, data: bytes) -> None:
        if self.state == self.STATE_OPEN and self.send_state == self.SEND_STATE_GROUND:
            # What sendMessage would send (server frames are unmasked and we
            # never compress), without joining header and payload.
            directWrite(self.transport, [_frameHeader(len(data)), data])
        else:
            self.sendMessage(data, isBinary=True)

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
        if self._binary and not self.failedByMe and self.rfb is not None:
            self.rfb.write(payload)

    def onMessageFrameEnd(self) -> None:
        pass

    def onMessageEnd(self) -> None:
        pass

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.rfb is not None:
            self.rfb.close()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        try:
            super().connectionLost(reason)
        finally:
            cancelTimers(self)
            if self.rfb is not None:
                self.rfb.close()
            if self.sessions is not None:
                self.sessions.discard(self)
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
    """A factory view that hands one RFB connection to the protocol it builds."""

    def __init__(
        self, factory: WebSocketServerFactory, rfb: RFBConnection, sessions: set[Any]
    ) -> None:
        self.factory = factory
        self.rfb = rfb
        self.sessions = sessions

    def buildProtocol(self, addr: Any) -> RFBWebSocketProtocol:
        proto = cast(RFBWebSocketProtocol, self.factory.buildProtocol(addr))
        proto.rfb = self.rfb
        proto.sessions = self.sessions
        return proto


class VNCResource(resource.Resource):
    """
    C{GET /api/v0/desktop/vnc}: start the desktop, connect to its RFB
    socket, then accept the WebSocket and splice.
    """

    isLeaf = True

    def __init__(self, state: State, reactor: Any) -> None:
        super().__init__()
        self.state = state
        self.reactor = reactor
        self.factory = makeWebSocketFactory(reactor)
        #: The open viewer connections.
        self.sessions: set[RFBWebSocketProtocol] = set()

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        gone = [False]
        request.notifyFinish().addBoth(lambda _: gone.__setitem__(0, True))

        async def respond() -> None:
            try:
                if self.state.shuttingDown:
                    raise APIError(503, "Desktop API is shutting down.")
                if request.method not in (b"GET", b"HEAD"):
                    request.setHeader(b"allow", b"GET")
                    raise APIError(405, "Method not allowed.", "Use GET for this path.")
                rfb = await startAndConnect(self.state, self.reactor)
            except APIError as e:
                if not gone[0]:
                    writeError(request, e)
                    request.finish()
                return
            except Exception:
                log.failure("Unexpected error opening a VNC session")
                if not gone[0]:
                    writeError(request, APIError(500, "Internal error.", "see the service log"))
                    request.finish()
                return
            if gone[0] or request.channel is None or request.channel.transport is None:
                rfb.close()
                return
            if b"websocket" not in (request.getHeader(b"upgrade") or b"").lower():
                # Same order as the reference API: desktop, VNC, then accept.
                rfb.close()
                request.setHeader(b"upgrade", b"websocket")
                writeError(
                    request,
                    APIError(426, "WebSocket upgrade required.",
                             "Connect with a WebSocket client such as noVNC."),
                )
                request.finish()
                return
            result = WebSocketResource(_Bound(self.factory, rfb, self.sessions)).render(request)
            if result is not server.NOT_DONE_YET:
                # Not an upgrade autobahn could take over (e.g. HTTP/2).
                rfb.close()
                if isinstance(result, bytes):
                    request.write(result)
                request.finish()

        defer.Deferred.fromCoroutine(respond())
        return server.NOT_DONE_YET


# -- raw RFB listener


class _RawViewer(protocol.Protocol):
    def __init__(self, state: State, reactor: Any) -> None:
        self.state = state
        self.reactor = reactor
        self.rfb: RFBConnection | None = None
        self.closed = False

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
        assert self.transport is not None
        transport = self.transport
        rfb.attach(
            transport, lambda data: directWrite(transport, [data]), transport.loseConnection
        )
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self.rfb is not None:
            self.rfb.write(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.closed = True
        if self.rfb is not None:
            self.rfb.close()


class RawRFBFactory(protocol.Factory):
    """Accepts raw RFB viewers and splices each to the desktop."""

    noisy = False

    def __init__(self, state: State, reactor: Any) -> None:
        self.state = state
        self.reactor = reactor

    def buildProtocol(self, addr: Any) -> protocol.Protocol:
        if self.state.shuttingDown:
            return None  # type: ignore[return-value]
        proto = _RawViewer(self.state, self.reactor)
        proto.factory = self
        return proto


def vncListenService(endpoint: str, state: State, reactor: Any) -> IService:
    """A listener on ENDPOINT (strports) that exposes the desktop's raw RFB."""
    return strports.service(endpoint, RawRFBFactory(state, reactor), reactor=reactor)


# -- viewer page


def novncDirectory() -> str:
    """noVNC's files: C{$AGENTDESKTOP_NOVNC_DIR}, else Debian's package."""
    return os.environ.get("AGENTDESKTOP_NOVNC_DIR") or DEFAULT_NOVNC_DIR


def viewerHTML() -> bytes:
    return importlib_resources.files("agentdesktop").joinpath("viewer.html").read_bytes()


class ViewerPage(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.page = viewerHTML()

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"referrer-policy", b"no-referrer")
        return self.page

    def render_HEAD(self, request: server.Request) -> bytes:
        return self.render_GET(request)


class _MissingNoVNC(resource.Resource):
    isLeaf = True

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.directory = directory

    def render(self, request: server.Request) -> Any:  # type: ignore[override]
        writeError(
            request,
            APIError(404, "noVNC is not installed.", f"No noVNC files in {self.directory}."),
        )
        return b""


class _NoVNCFiles(static.File):
    """Static files with a JavaScript type browsers accept for modules, no listings."""

    contentTypes = dict(
        static.File.contentTypes, **{".js": "text/javascript", ".mjs": "text/javascript"}
    )

    def directoryListing(self) -> resource.Resource:
        return _MissingNoVNC(self.path)


def viewerResource() -> resource.Resource:
    """C{GET /api/v0/desktop/}: the noVNC viewer page."""
    return ViewerPage()


def novncResource(directory: str | None = None) -> resource.Resource:
    """noVNC's ES modules, served from DIRECTORY (default L{novncDirectory})."""
    directory = directory or novncDirectory()
    if not os.path.isfile(os.path.join(directory, "core", "rfb.js")):
        return _MissingNoVNC(directory)
    return _NoVNCFiles(directory)


def vncChildren(state: State, reactor: Any) -> dict[bytes, resource.Resource]:
    """The children of C{/api/v0/desktop} this module adds."""
    return {
        b"vnc": VNCResource(state, reactor),
        b"": viewerResource(),
        b"novnc": novncResource(),
    }
