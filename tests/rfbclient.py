"""
A small RFB 3.8 client for tests and benchmarks: security type None,
32 bpp true colour, Raw encoding only.  It runs over a raw stream (TCP or
unix socket) or over a WebSocket (autobahn's Twisted client).
"""

from __future__ import annotations

import struct
from typing import Any
from urllib.parse import urlparse

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, protocol
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    UNIXClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.python.failure import Failure

from agentdesktop.vnc.websocket import ReactorTimers, cancelTimers


class ByteReader:
    """Buffered bytes with C{await read(n)}."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.want = 0
        self.waiter: defer.Deferred[bytes] | None = None
        self.closed: Failure | None = None
        self.received = 0

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        self.buf += data
        self._check()

    def close(self, reason: Failure) -> None:
        self.closed = reason
        self._check()

    def _check(self) -> None:
        if self.waiter is None:
            return
        if len(self.buf) - self.pos >= self.want:
            d, self.waiter = self.waiter, None
            d.callback(self._take(self.want))
        elif self.closed is not None:
            d, self.waiter = self.waiter, None
            d.errback(ConnectionError(f"closed: {self.closed.getErrorMessage()}"))

    def _take(self, n: int) -> bytes:
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0
        return out

    def read(self, n: int) -> defer.Deferred[bytes]:
        assert self.waiter is None
        if len(self.buf) - self.pos >= n:
            return defer.succeed(self._take(n))
        self.want = n
        self.waiter = defer.Deferred()
        d = self.waiter
        self._check()
        return d


class RFBClient:
    """The RFB conversation, given a reader and a send function."""

    def __init__(self, reader: ByteReader, send: Any, close: Any) -> None:
        self.reader = reader
        self.send = send
        self.close = close
        self.width = 0
        self.height = 0
        self.name = b""
        self.pixels = bytearray()

    async def handshake(self) -> None:
        r = self.reader
        banner = await r.read(12)
        if not banner.startswith(b"RFB 003."):
            raise ValueError(f"not RFB: {banner!r}")
        self.send(b"RFB 003.008\n")
        (n,) = struct.unpack("!B", await r.read(1))
        if n == 0:
            (length,) = struct.unpack("!I", await r.read(4))
            reason = (await r.read(length)).decode(errors="replace")
            raise ValueError(f"the RFB server refused the connection: {reason!r}")
        types = await r.read(n)
        if 1 not in types:
            raise ValueError(f"no None security among {list(types)}")
        self.send(b"\x01")
        (result,) = struct.unpack("!I", await r.read(4))
        if result != 0:
            raise ValueError(f"security result {result}")
        self.send(b"\x01")  # ClientInit, shared
        self.width, self.height = struct.unpack("!HH", await r.read(4))
        await r.read(16)  # server pixel format
        (length,) = struct.unpack("!I", await r.read(4))
        self.name = await r.read(length)
        # SetPixelFormat: 32 bpp, depth 24, little endian, true colour, BGRX.
        self.send(
            struct.pack(
                "!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0
            )
        )
        self.send(struct.pack("!BxHi", 2, 1, 0))  # SetEncodings: Raw only
        self.pixels = bytearray(self.width * self.height * 4)

    def keyEvent(self, keysym: int, down: bool) -> None:
        self.send(struct.pack("!BBxxI", 4, int(down), keysym))

    def pointerEvent(self, mask: int, x: int, y: int) -> None:
        self.send(struct.pack("!BBHH", 5, mask, x, y))

    def requestUpdate(self, incremental: bool = False) -> None:
        self.send(struct.pack("!BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    async def readUpdate(self) -> list[tuple[int, int, int, int]]:
        """Read server messages until one framebuffer update; apply it."""
        r = self.reader
        while True:
            (kind,) = struct.unpack("!B", await r.read(1))
            if kind == 0:
                break
            if kind == 1:  # SetColourMapEntries
                _, _, count = struct.unpack("!BHH", await r.read(5))
                await r.read(count * 6)
            elif kind == 2:  # Bell
                pass
            elif kind == 3:  # ServerCutText
                (length,) = struct.unpack("!3xI", await r.read(7))
                await r.read(length)
            else:
                raise ValueError(f"unexpected server message {kind}")
        (count,) = struct.unpack("!xH", await r.read(3))
        rects = []
        stride = self.width * 4
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack("!HHHHi", await r.read(12))
            if encoding != 0:
                raise ValueError(f"unexpected encoding {encoding}")
            data = await r.read(w * h * 4)
            if x == 0 and w == self.width:
                self.pixels[y * stride : (y + h) * stride] = data
            else:
                for row in range(h):
                    start = (y + row) * stride + x * 4
                    self.pixels[start : start + w * 4] = data[row * w * 4 : (row + 1) * w * 4]
            rects.append((x, y, w, h))
        return rects

    def image(self) -> Any:
        from PIL import Image

        return Image.frombuffer(
            "RGB", (self.width, self.height), bytes(self.pixels), "raw", "BGRX", 0, 1
        )


class _StreamProtocol(protocol.Protocol):
    def __init__(self) -> None:
        self.reader = ByteReader()

    def dataReceived(self, data: bytes) -> None:
        self.reader.feed(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.reader.close(reason)


async def connectStream(endpoint: Any) -> tuple[RFBClient, Any]:
    """An RFB client over a raw stream at ENDPOINT; returns (client, protocol)."""
    proto = _StreamProtocol()
    await connectProtocol(endpoint, proto)
    assert proto.transport is not None
    transport = proto.transport
    return RFBClient(proto.reader, transport.write, transport.loseConnection), proto


async def connectTCP(reactor: Any, host: str, port: int) -> tuple[RFBClient, Any]:
    client, proto = await connectStream(TCP4ClientEndpoint(reactor, host, port))
    proto.transport.setTcpNoDelay(True)  # as VNC viewers do
    return client, proto


async def connectUNIX(reactor: Any, path: str) -> tuple[RFBClient, Any]:
    return await connectStream(UNIXClientEndpoint(reactor, path))


class RFBWebSocketClient(WebSocketClientProtocol):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.reader = ByteReader()
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.closedWith: defer.Deferred[tuple[bool, Any, Any]] = defer.Deferred()
        self.textReceived = False

    def onOpen(self) -> None:
        self.opened.callback(None)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        try:
            super().connectionLost(reason)
        finally:
            cancelTimers(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if not isBinary:
            self.textReceived = True
        self.reader.feed(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"WebSocket not opened: {code} {reason}"))
        self.reader.close(Failure(ConnectionError(f"closed {code} {reason}")))
        if not self.closedWith.called:
            self.closedWith.callback((wasClean, code, reason))


def webSocketFactory(
    reactor: Any, url: str, protocols: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> WebSocketClientFactory:
    factory = WebSocketClientFactory(
        url, protocols=protocols or [], headers=headers or {}, reactor=reactor
    )
    factory.protocol = RFBWebSocketClient
    factory.setProtocolOptions(
        maxFramePayloadSize=0, maxMessagePayloadSize=0, autoFragmentSize=0,
        perMessageCompressionOffers=[],
    )
    factory.noisy = False
    factory._batched_timer = ReactorTimers(reactor)
    return factory


async def connectWebSocket(
    reactor: Any, url: str, protocols: list[str] | None = None, tls: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[RFBClient, RFBWebSocketClient]:
    """
    An RFB client over the WebSocket at URL (ws:// or wss://host:port/path);
    TLS is the client connection creator for wss (e.g. from
    C{optionsForClientTLS}); HEADERS go with the opening handshake.
    """
    parsed = urlparse(url)
    factory = webSocketFactory(reactor, url, protocols, headers)
    proto = RFBWebSocketClient()
    proto.factory = factory
    endpoint: Any = TCP4ClientEndpoint(reactor, parsed.hostname or "127.0.0.1", parsed.port or 80)
    if parsed.scheme == "wss":
        endpoint = wrapClientTLS(tls, endpoint)
    await connectProtocol(endpoint, proto)
    await proto.opened
    return (
        RFBClient(proto.reader, lambda b: proto.sendMessage(b, isBinary=True), proto.sendClose),
        proto,
    )
