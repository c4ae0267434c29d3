"""
The WebSocket <-> RFB splice and the raw RFB listener, in memory: the viewer
talks to the real site over L{twisted.test.iosim}; "Xvnc" is a real
listening unix socket the test accepts from, and the test plays the
L{MemoryReactorClock}'s part for the service's RFB transport, calling its
C{doRead} and C{doWrite}.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import struct
import termios
from typing import Any

from treq.testing import StubTreq
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop, sample
from agentdesktop.vnc import listener, splice, viewer
from agentdesktop.vnc import websocket as vnc
from agentdesktop.web.resource import makeSite
from agentdesktop.web.root import makeRoot
from tests import rfbclient
from tests.unit.test_splice import drain

URL = "ws://127.0.0.1:8790/api/v0/desktop/vnc"

HANDSHAKE = b"RFB 003.008\n\x01\x01"
KEY = struct.pack("!BBxxI", 4, 1, 0x61)
POINTER = struct.pack("!BBHH", 5, 1, 10, 20)
UPDATE = struct.pack("!BBHHHH", 3, 1, 0, 0, 640, 480)
PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class TrackingTransport(iosim.FakeTransport):
    """iosim's transport, remembering whether it was paused as a producer."""

    paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


class FakeXvnc:
    """A listening unix socket where the desktop's RFB socket would be."""

    def __init__(self, case: SynchronousTestCase) -> None:
        directory = case.mktemp()
        os.makedirs(directory)
        self.path = os.path.join(directory, "rfb")
        self.accepted: list[socket.socket] = []
        self.listen()
        case.addCleanup(self.close)

    def listen(self, backlog: int = 16) -> None:
        """(Re)start listening at L{path}."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(self.path)
        self.listener.listen(backlog)
        self.listener.setblocking(False)

    def stopListening(self) -> None:
        """Leave the socket file, refusing connections (like a dead Xvnc)."""
        self.listener.close()

    def accept(self) -> socket.socket:
        """The service's newest connection (the connect itself never waits)."""
        conn, _ = self.listener.accept()
        conn.setblocking(False)
        self.accepted.append(conn)
        return conn

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()


def transports(reactor: MemoryReactorClock) -> list[splice.RFBSocket]:
    """The service's RFB transports the reactor was told about."""
    seen = list(reactor.getReaders()) + list(reactor.getWriters())
    return [t for t in seen if isinstance(t, splice.RFBSocket)]


def playRead(transport: splice.RFBSocket) -> None:
    """What the reactor does when the RFB socket is readable."""
    why = transport.doRead()
    if why:
        transport.connectionLost(Failure(why))


def playWrites(transport: splice.RFBSocket, peer: socket.socket | None = None) -> bytes:
    """
    What the reactor does while the RFB socket is writable, with PEER (if
    given) reading as it goes; returns what PEER read.
    """
    out = b""
    for _ in range(10000):
        if peer is not None:
            out += drain(peer)
        if transport not in transport.reactor.getWriters():
            break
        why = transport.doWrite()
        if why:
            transport.connectionLost(Failure(why))
            break
    return out + (drain(peer) if peer is not None else b"")


def unread(sock: socket.socket) -> int:
    """Bytes waiting in SOCK's receive queue."""
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little")


class Splice:
    """One viewer connected through the site, with its RFB connection."""

    def __init__(
        self, case: VNCTestCase, protocols: list[str] | None = None, url: str = URL,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.case = case
        server = case.site.buildProtocol(PEER)
        factory = rfbclient.webSocketFactory(case.reactor, url, protocols)
        factory.headers = headers or {}
        self.client: rfbclient.RFBWebSocketClient = factory.buildProtocol(PEER)
        self.serverTransport = TrackingTransport(server, isServer=True, peerAddress=PEER)
        self.clientTransport = TrackingTransport(self.client, isServer=False)
        self.pump = iosim.connect(
            server, self.serverTransport, self.client, self.clientTransport,
            clock=case.reactor,
        )

    def open(self) -> Splice:
        """Take the connection the service made to "Xvnc" during the upgrade."""
        self.xvnc = self.case.xvnc.accept()
        (self.session,) = self.case.vncEndpoint.sessions
        self.rfbTransport: splice.RFBSocket = self.session.rfb.transport
        return self

    def fromRFB(self, data: bytes) -> None:
        """Xvnc sends DATA; the service reads until it has all of it."""
        left = memoryview(data)
        for _ in range(10000):
            if left:
                try:
                    left = left[self.xvnc.send(left) :]
                except BlockingIOError:
                    pass
            playRead(self.rfbTransport)
            self.pump.flush()
            if not left and unread(self.rfbTransport.socket) == 0:
                return
        raise AssertionError("the service stopped reading from Xvnc")

    def toRFB(self) -> bytes:
        """What the service has written to Xvnc so far."""
        self.pump.flush()
        return playWrites(self.rfbTransport, self.xvnc)

    def received(self) -> bytes:
        reader = self.client.reader
        return bytes(reader.buf[reader.pos :])


class FakeXvncTestCase(SynchronousTestCase):
    """A service whose desktop's RFB socket is a L{FakeXvnc}."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.xvnc = FakeXvnc(self)
        self.desktop = FakeDesktop(640, 480)
        self.desktop.info = dataclasses.replace(self.desktop.info, rfbSocket=self.xvnc.path)
        self.state = makeState(self.desktop, self.reactor)


class VNCTestCase(FakeXvncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = makeRoot(self.state, self.reactor)
        self.vncEndpoint = getChildForRequest(self.root, DummyRequest([b"api", b"v0", b"desktop", b"vnc"]))
        self.site = makeSite(self.root)
        self.site.reactor = self.reactor
        self.site.timeOut = None

    def openSplice(
        self, protocols: list[str] | None = None, url: str = URL,
        headers: dict[str, str] | None = None,
    ) -> Splice:
        splice_ = Splice(self, protocols, url, headers).open()
        self.assertTrue(splice_.client.opened.called, "the WebSocket did not open")
        splice_.fromRFB(b"RFB 003.008\n")
        return splice_

    def test_bytesBothWays(self) -> None:
        """
        The banner Xvnc sent, and later bytes, reach the viewer unchanged as
        binary messages; the viewer's bytes reach Xvnc.
        """
        splice_ = self.openSplice()
        self.assertEqual(splice_.received(), b"RFB 003.008\n")
        payload = bytes(range(256)) * 4000
        splice_.fromRFB(payload)
        self.assertEqual(splice_.received(), b"RFB 003.008\n" + payload)
        self.assertFalse(splice_.client.textReceived)
        splice_.client.sendMessage(b"RFB 003.008\n", isBinary=True)
        splice_.client.sendMessage(b"\x01\x01", isBinary=True)
        self.assertEqual(splice_.toRFB(), b"RFB 003.008\n\x01\x01")

    def test_metrics(self) -> None:
        """
        An open viewer counts in the websocket gauge until it goes; the
        bytes moved each way are counted (what reached Xvnc, what reached
        the viewer).
        """
        metrics = self.state.metrics
        splice_ = self.openSplice()
        self.assertEqual(sample(metrics, "agentdesktop_vnc_connections", listener="websocket"), 1)
        self.assertEqual(sample(metrics, "agentdesktop_vnc_connections", listener="raw"), 0)
        splice_.fromRFB(b"x" * 300000)
        splice_.client.sendMessage(b"RFB 003.008\n", isBinary=True)
        self.assertEqual(splice_.toRFB(), b"RFB 003.008\n")
        self.assertEqual(sample(metrics, "agentdesktop_vnc_relayed_bytes_total",
                                direction="to_viewer"), 12 + 300000)
        self.assertEqual(sample(metrics, "agentdesktop_vnc_relayed_bytes_total",
                                direction="to_server"), 12)
        splice_.clientTransport.loseConnection()
        splice_.pump.flush()
        self.assertEqual(sample(metrics, "agentdesktop_vnc_connections", listener="websocket"), 0)

    def test_subprotocolBinaryWhenOffered(self) -> None:
        self.assertEqual(self.openSplice(["binary"]).client.websocket_protocol_in_use, "binary")

    def test_noSubprotocolWhenNoneOffered(self) -> None:
        self.assertIsNone(self.openSplice().client.websocket_protocol_in_use)

    def test_noCompression(self) -> None:
        factory = self.vncEndpoint.factory
        self.assertIsNone(factory.perMessageCompressionAccept([object()]))
        self.assertEqual(factory.maxMessagePayloadSize, 0)
        self.assertEqual(factory.maxFramePayloadSize, 0)
        self.assertEqual(factory.autoPingInterval, vnc.PING_INTERVAL)
        self.assertEqual(factory.autoPingTimeout, vnc.PING_TIMEOUT)

    def test_producersRegisteredBothWays(self) -> None:
        """
        The WebSocket transport pulls from the pump (which pauses and
        resumes reading from Xvnc), replacing the HTTP channel that
        twisted.web had registered; the WebSocket transport is the RFB
        transport's streaming producer.
        """
        splice_ = self.openSplice()
        self.assertIsInstance(splice_.serverTransport.producer, splice.ViewerPump)
        self.assertFalse(splice_.serverTransport.streamingProducer)
        self.assertIs(splice_.serverTransport.producer.source, splice_.rfbTransport)
        self.assertIs(splice_.rfbTransport.producer, splice_.serverTransport)
        self.assertTrue(splice_.rfbTransport.streamingProducer)

    def test_rfbReadsNothingUntilOpen(self) -> None:
        """
        The RFB connection is made before the upgrade is accepted, and read
        only once the WebSocket is open; what Xvnc sent before is delivered
        first, in order.
        """
        channel = self.site.buildProtocol(PEER)
        channel.makeConnection(StringTransport())
        channel.dataReceived(b"GET /api/v0/desktop/vnc HTTP/1.1\r\nHost: x\r\n")
        self.assertEqual(transports(self.reactor), [])
        splice_ = Splice(self).open()
        self.assertEqual(transports(self.reactor), [splice_.rfbTransport])
        splice_.xvnc.sendall(b"RFB ")
        splice_.fromRFB(b"003.008\n")
        self.assertEqual(splice_.received(), b"RFB 003.008\n")

    def test_slowViewerPausesRFB(self) -> None:
        """
        While the viewer's transport holds bytes, reading from Xvnc stops;
        when it has sent them, reading resumes.
        """
        splice_ = self.openSplice()
        splice_.xvnc.sendall(b"x" * 1000)
        playRead(splice_.rfbTransport)
        self.assertTrue(splice_.rfbTransport.paused)
        self.assertNotIn(splice_.rfbTransport, self.reactor.getReaders())
        splice_.pump.flush()
        self.assertFalse(splice_.rfbTransport.paused)
        self.assertIn(splice_.rfbTransport, self.reactor.getReaders())

    def test_slowXvncPausesViewer(self) -> None:
        """A full RFB write buffer pauses reading from the viewer, and resumes."""
        splice_ = self.openSplice()
        splice_.rfbTransport.write(b"k" * (splice.RFBSocket.bufferSize + 1))
        self.assertTrue(splice_.serverTransport.paused)
        self.assertEqual(len(splice_.toRFB()), splice.RFBSocket.bufferSize + 1)
        self.assertFalse(splice_.serverTransport.paused)

    def test_rfbCloseClosesWebSocket(self) -> None:
        splice_ = self.openSplice()
        splice_.xvnc.close()
        playRead(splice_.rfbTransport)
        splice_.pump.flush()
        self.assertTrue(splice_.client.closedWith.called)
        wasClean, code, _ = self.successResultOf(splice_.client.closedWith)
        self.assertEqual(code, 1000)

    def test_viewerCloseClosesRFB(self) -> None:
        splice_ = self.openSplice()
        splice_.client.sendClose(code=1000)
        splice_.pump.flush()
        self.assertTrue(splice_.rfbTransport.disconnecting)
        playWrites(splice_.rfbTransport)
        self.assertEqual(splice_.xvnc.recv(10), b"")

    def test_viewerDropClosesRFB(self) -> None:
        splice_ = self.openSplice()
        splice_.clientTransport.loseConnection()
        splice_.pump.flush()
        self.assertTrue(splice_.rfbTransport.disconnecting)

    def test_textFrameRejected(self) -> None:
        """A text frame fails the connection with 1003 and reaches nobody."""
        splice_ = self.openSplice()
        splice_.client.sendMessage(b"RFB 003.008\n", isBinary=False)
        splice_.pump.flush()
        _, code, _ = self.successResultOf(splice_.client.closedWith)
        self.assertEqual(code, 1003)
        self.assertTrue(splice_.rfbTransport.disconnecting)
        self.assertEqual(splice_.toRFB(), b"")

    def test_pingsKeepAliveAndDeadPeerCloses(self) -> None:
        """
        After the ping interval a ping goes out; a peer that never answers
        is dropped after the timeout and the RFB connection closes.
        """
        splice_ = self.openSplice()
        # The viewer stops answering: its transport swallows everything.
        splice_.clientTransport.disconnecting = False
        splice_.pump.flush()
        self.reactor.advance(vnc.PING_INTERVAL + 1)
        sent = splice_.serverTransport.getOutBuffer()
        self.assertEqual(sent[:1], b"\x89", "expected a ping frame")
        self.reactor.advance(vnc.PING_TIMEOUT + 10)
        self.assertTrue(splice_.serverTransport.disconnecting)
        splice_.serverTransport.reportDisconnect()
        self.assertTrue(splice_.rfbTransport.disconnecting)

    # -- refusals

    def rawRequest(self, path: str = "/api/v0/desktop/vnc") -> tuple[StringTransport, Any]:
        channel = self.site.buildProtocol(PEER)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        return transport, channel

    def assertJSONError(self, transport: StringTransport, status: int, message: str) -> dict:
        head, _, body = transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 %d " % status), head)
        self.assertIn(b"content-type: application/json", head.lower())
        out = json.loads(body)
        self.assertEqual(out["message"], message)
        return out

    def test_desktopFailure(self) -> None:
        self.desktop.failing.add("start")
        transport, _ = self.rawRequest()
        out = self.assertJSONError(transport, 500, "Failed to start desktop session.")
        self.assertIn("Xvnc", out["detail"])
        with self.assertRaises(BlockingIOError):
            self.xvnc.accept()

    def test_connectFailure(self) -> None:
        """A refusing socket is retried for a while, then a 500 says why."""
        self.xvnc.stopListening()
        transport, _ = self.rawRequest()
        for _ in range(vnc.CONNECT_ATTEMPTS):
            self.assertEqual(transport.value(), b"")
            self.reactor.advance(1)
        out = self.assertJSONError(transport, 500, "Failed to connect to VNC server.")
        self.assertIn("refused", out["detail"].lower())

    def test_connectRetriedOnFullBacklog(self) -> None:
        """
        Xvnc's listen backlog is small: a connect that finds it full
        (EAGAIN) is retried, and the viewer gets through.
        """
        self.xvnc.stopListening()
        self.xvnc.listen(backlog=0)
        filler = socket.socket(socket.AF_UNIX)
        self.addCleanup(filler.close)
        filler.connect(self.xvnc.path)
        splice_ = Splice(self)
        self.assertFalse(splice_.client.opened.called)
        # The filler held the only slot: the service's first try met EAGAIN.
        self.xvnc.accept().close()
        with self.assertRaises(BlockingIOError):
            self.xvnc.accept()
        self.reactor.advance(1)
        splice_.pump.flush()
        splice_.open()
        splice_.fromRFB(b"RFB 003.008\n")
        self.assertTrue(splice_.client.opened.called)
        self.assertEqual(splice_.received(), b"RFB 003.008\n")

    def test_missingSocketNotRetried(self) -> None:
        os.unlink(self.xvnc.path)
        transport, _ = self.rawRequest()
        out = self.assertJSONError(transport, 500, "Failed to connect to VNC server.")
        self.assertIn("No such file", out["detail"])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_notAnUpgrade(self) -> None:
        """A plain GET gets a JSON 426 and its RFB connection is closed."""
        channel = self.site.buildProtocol(PEER)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /api/v0/desktop/vnc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertJSONError(transport, 426, "WebSocket upgrade required.")
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        playWrites(rfbTransport)
        self.assertEqual(xvnc.recv(10), b"")

    def test_shuttingDown(self) -> None:
        self.state.shuttingDown = True
        transport, _ = self.rawRequest()
        self.assertJSONError(transport, 503, "Desktop API is shutting down.")

    def test_clientGoneBeforeConnectClosesRFB(self) -> None:
        self.xvnc.stopListening()
        transport, channel = self.rawRequest()
        channel.connectionLost(Failure(error.ConnectionDone()))
        self.xvnc.listen()
        self.reactor.advance(1)
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        playWrites(rfbTransport)
        self.assertEqual(xvnc.recv(10), b"")
        self.assertEqual(transport.value(), b"")

    # -- what the viewer may send (SPEC section 16)

    def test_inputOnlyWhileControlHeld(self) -> None:
        """
        Nobody in control: the viewer's key and pointer events are dropped,
        its update requests pass.  A person in control: they pass (split
        across frames too), and touch the lease.
        """
        splice_ = self.openSplice()
        send = splice_.client.sendMessage
        send(HANDSHAKE, isBinary=True)
        send(KEY + POINTER + UPDATE, isBinary=True)
        self.assertEqual(splice_.toRFB(), HANDSHAKE + UPDATE)
        self.state.control.take("alice")
        self.reactor.advance(5)
        for part in (KEY[:3], KEY[3:] + POINTER[:1], POINTER[1:]):
            send(part, isBinary=True)
        self.assertEqual(splice_.toRFB(), KEY + POINTER)
        self.assertEqual(self.state.control.lastInput, self.reactor.seconds())
        self.state.control.release()  # it lets go of what it pressed
        send(KEY + UPDATE, isBinary=True)
        self.assertEqual(
            splice_.toRFB(),
            struct.pack("!BBxxI", 4, 0, 0x61) + struct.pack("!BBHH", 5, 0, 10, 20) + UPDATE,
        )

    def test_lettingGo(self) -> None:
        """
        A viewer that loses the right to input (control handed back) lets
        go of the key and button it pressed; so does one that goes away.
        """
        following = list(self.state.control.changed)
        self.state.control.take("alice")
        splice_ = self.openSplice()
        splice_.client.sendMessage(HANDSHAKE + KEY + POINTER, isBinary=True)
        self.assertEqual(splice_.toRFB(), HANDSHAKE + KEY + POINTER)
        self.state.control.release()
        self.assertEqual(
            splice_.toRFB(), struct.pack("!BBxxI", 4, 0, 0x61) + struct.pack("!BBHH", 5, 0, 10, 20)
        )
        self.state.control.take("alice")
        splice_.client.sendMessage(POINTER, isBinary=True)
        self.assertEqual(splice_.toRFB(), POINTER)
        splice_.clientTransport.loseConnection()
        splice_.pump.flush()
        self.assertEqual(splice_.toRFB(), struct.pack("!BBHH", 5, 0, 10, 20))
        self.assertEqual(self.state.control.changed, following)

    def test_viewTicketNeverSendsInput(self) -> None:
        ticket = self.state.tickets.issue("view").secret
        splice_ = self.openSplice(url=URL + "?ticket=" + ticket)
        self.state.control.take("alice")
        splice_.client.sendMessage(HANDSHAKE + KEY + POINTER + UPDATE, isBinary=True)
        self.assertEqual(splice_.toRFB(), HANDSHAKE + UPDATE)

    def test_controlTicketSendsInputWhileHeld(self) -> None:
        ticket = self.state.tickets.issue("control").secret
        splice_ = self.openSplice(url=URL + "?ticket=" + ticket)
        self.state.control.take("alice")
        splice_.client.sendMessage(HANDSHAKE + KEY, isBinary=True)
        self.assertEqual(splice_.toRFB(), HANDSHAKE + KEY)

    def test_ticketOnlyOnce(self) -> None:
        ticket = self.state.tickets.issue("control").secret
        self.openSplice(url=URL + "?ticket=" + ticket)
        transport, _ = self.rawRequest("/api/v0/desktop/vnc?ticket=" + ticket)
        self.assertJSONError(transport, 401, "Unauthorized.")

    def test_unknownMessageClosesViewer(self) -> None:
        """A message type we cannot follow closes the viewer and its RFB connection."""
        splice_ = self.openSplice()
        splice_.client.sendMessage(HANDSHAKE + UPDATE + b"\x07", isBinary=True)
        splice_.pump.flush()
        self.assertTrue(splice_.rfbTransport.disconnecting)
        _, code, _ = self.successResultOf(splice_.client.closedWith)
        self.assertEqual(code, 1008)

    def test_sessionKeptWhileConnected(self) -> None:
        from agentdesktop.tickets import SESSION_IDLE
        from agentdesktop.web.resource import SESSION_COOKIE

        session = self.state.sessions.open("control")
        splice_ = self.openSplice(headers={"Cookie": f"{SESSION_COOKIE}={session.secret}"})
        self.assertEqual(session.connections, 1)
        self.reactor.advance(SESSION_IDLE * 2)
        self.assertIs(self.state.sessions.find(session.secret), session)
        splice_.clientTransport.loseConnection()
        splice_.pump.flush()
        self.assertEqual(session.connections, 0)
        self.reactor.advance(SESSION_IDLE)
        self.assertIsNone(self.state.sessions.find(session.secret))


class RawListenerTests(FakeXvncTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.factory = listener.RawRFBFactory(self.state, self.reactor)

    def connect(self) -> tuple[Any, StringTransport]:
        viewer = self.factory.buildProtocol(PEER)
        transport = StringTransport()
        viewer.makeConnection(transport)
        return viewer, transport

    def test_spliceBothWaysWithProducers(self) -> None:
        viewer, viewerTransport = self.connect()
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        self.assertEqual(viewerTransport.producerState, "producing")
        self.assertIsInstance(viewerTransport.producer, splice.ViewerPump)
        self.assertIs(rfbTransport.producer, viewerTransport)
        xvnc.sendall(b"RFB 003.008\n")
        playRead(rfbTransport)
        self.assertEqual(viewerTransport.value(), b"RFB 003.008\n")
        # The bytes wait in the viewer's transport: Xvnc is not read meanwhile.
        self.assertTrue(rfbTransport.paused)
        viewerTransport.producer.resumeProducing()  # the transport sent them
        self.assertFalse(rfbTransport.paused)
        viewer.dataReceived(b"RFB 003.008\n")
        playWrites(rfbTransport)
        self.assertEqual(drain(xvnc), b"RFB 003.008\n")
        rfbTransport.write(b"k" * (splice.RFBSocket.bufferSize + 1))
        self.assertEqual(viewerTransport.producerState, "paused")

    def test_metrics(self) -> None:
        """A raw viewer counts in the raw gauge until it goes; its bytes count too."""
        metrics = self.state.metrics
        viewer, viewerTransport = self.connect()
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        self.assertEqual(sample(metrics, "agentdesktop_vnc_connections", listener="raw"), 1)
        xvnc.sendall(b"RFB 003.008\n")
        playRead(rfbTransport)
        viewer.dataReceived(b"RFB 003.008\n")
        playWrites(rfbTransport)
        for direction in ("to_viewer", "to_server"):
            self.assertEqual(sample(metrics, "agentdesktop_vnc_relayed_bytes_total",
                                    direction=direction), 12)
        viewer.connectionLost(Failure(error.ConnectionDone()))
        viewer.connectionLost(Failure(error.ConnectionDone()))
        self.assertEqual(sample(metrics, "agentdesktop_vnc_connections", listener="raw"), 0)

    def test_inputOnlyWhileControlHeld(self) -> None:
        """The raw listener's clients count as the operator's: input while control is held."""
        viewer, _ = self.connect()
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        viewer.dataReceived(HANDSHAKE + KEY + UPDATE)
        playWrites(rfbTransport)
        self.assertEqual(drain(xvnc), HANDSHAKE + UPDATE)
        self.state.control.take("alice")
        viewer.dataReceived(POINTER)
        playWrites(rfbTransport)
        self.assertEqual(drain(xvnc), POINTER)

    def test_unknownMessageCloses(self) -> None:
        viewer, transport = self.connect()
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        viewer.dataReceived(HANDSHAKE + b"\x09" + KEY)
        self.assertTrue(transport.disconnecting)
        playWrites(rfbTransport)
        self.assertEqual(drain(xvnc), b"")
        self.assertTrue(rfbTransport.disconnecting)

    def test_viewerWaitsForRFB(self) -> None:
        """The viewer is not read until its RFB connection exists."""
        self.xvnc.stopListening()
        _, viewerTransport = self.connect()
        self.assertEqual(viewerTransport.producerState, "paused")
        self.xvnc.listen()
        self.reactor.advance(1)
        self.assertEqual(viewerTransport.producerState, "producing")

    def test_closePropagates(self) -> None:
        _, viewerTransport = self.connect()
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        rfbTransport.resumeProducing()
        xvnc.close()
        playRead(rfbTransport)
        self.assertTrue(viewerTransport.disconnecting)

        viewer, _ = self.connect()
        self.assertIn(viewer, self.factory.sessions)
        xvnc = self.xvnc.accept()
        (rfbTransport,) = transports(self.reactor)
        viewer.connectionLost(Failure(error.ConnectionDone()))
        self.assertNotIn(viewer, self.factory.sessions)
        playWrites(rfbTransport)
        self.assertEqual(xvnc.recv(10), b"")

    def test_desktopFailureClosesViewer(self) -> None:
        self.desktop.failing.add("start")
        _, transport = self.connect()
        self.assertTrue(transport.disconnecting)

    def test_refusedWhileShuttingDown(self) -> None:
        self.state.shuttingDown = True
        self.assertIsNone(self.factory.buildProtocol(PEER))


class ViewerPageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.noVNC = self.mktemp()
        os.makedirs(os.path.join(self.noVNC, "core"))
        with open(os.path.join(self.noVNC, "core", "rfb.js"), "w") as f:
            f.write("export default class RFB {}\n")
        self.patch(os, "environ", dict(os.environ, AGENTDESKTOP_NOVNC_DIR=self.noVNC))
        reactor = MemoryReactorClock()
        state = makeState(FakeDesktop(), reactor)
        self.treq = StubTreq(makeRoot(state, reactor))

    def get(self, path: str, method: str = "GET") -> tuple[int, Any, bytes]:
        d = self.treq.request(method, "http://localhost/api/v0/desktop/" + path)
        for _ in range(5):
            self.treq.flush()
        response = self.successResultOf(d)
        return response.code, response.headers, self.successResultOf(response.content())

    def test_page(self) -> None:
        code, headers, body = self.get("")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        for needle in (b"novnc/core/rfb.js", b"scaleViewport", b"viewOnly", b'"vnc"',
                       b"wss:", b"ticket", b"disconnect", b"Take control", b"Hand back",
                       b'"control"', b"may_input"):
            self.assertIn(needle, body)

    def test_noVNCModules(self) -> None:
        """noVNC's files are served with a type browsers accept for modules."""
        code, headers, body = self.get("novnc/core/rfb.js")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/javascript"])
        self.assertEqual(body, b"export default class RFB {}\n")
        code, headers, _ = self.get("novnc/core/rfb.js", "HEAD")
        self.assertEqual(code, 200)

    def test_noListings(self) -> None:
        for path in ("novnc/core/", "novnc/core", "novnc", "novnc/"):
            code, _, body = self.get(path)
            self.assertEqual(code, 404, path)
            self.assertNotIn(b"rfb.js", body)
            self.assertEqual(json.loads(body)["message"], "Not found.")

    def test_staysInsideItsDirectory(self) -> None:
        outside = os.path.join(os.path.dirname(self.noVNC), "outside.js")
        with open(outside, "w") as f:
            f.write("not noVNC's")
        for path in ("novnc/../outside.js", "novnc/core/..%2F..%2Foutside.js",
                     "novnc/%2E%2E/outside.js", "novnc/core/%00", "novnc/core/%FF"):
            code, _, body = self.get(path)
            self.assertEqual(code, 404, path)
            self.assertNotIn(b"noVNC's", body)

    def test_otherMethods(self) -> None:
        """noVNC's files answer 405 (not 501) to methods other than GET and HEAD."""
        for method in ("POST", "PUT", "DELETE", "TRACE", "OPTIONS"):
            code, headers, body = self.get("novnc/core/rfb.js", method)
            self.assertEqual(code, 405, method)
            self.assertEqual(headers.getRawHeaders("allow"), ["GET, HEAD"])

    def test_missingNoVNC(self) -> None:
        reactor = MemoryReactorClock()
        state = makeState(FakeDesktop(), reactor)
        files = viewer.NoVNCFiles(state, self.mktemp())
        self.treq = StubTreq(files)
        d = self.treq.get("http://localhost/core/rfb.js")
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 404)
        body = json.loads(self.successResultOf(response.content()))
        self.assertEqual(body["message"], "noVNC is not installed.")
