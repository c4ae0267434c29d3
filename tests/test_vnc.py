"""
The WebSocket ↔ RFB splice and the raw RFB listener, in memory: the viewer
talks to the real site over L{twisted.test.iosim}; the RFB socket is a
L{StringTransport} handed to the connection the resource asked the
L{MemoryReactorClock} for.
"""

from __future__ import annotations

import json
import os
from typing import Any

from treq.testing import StubTreq
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import getChildForRequest
from twisted.web.test._util import _render
from twisted.web.test.requesthelper import DummyRequest

from agentdesktop import vnc
from agentdesktop.testing import FakeDesktop
from agentdesktop.web import State, makeRoot, makeSite
from tests import rfbclient

URL = "ws://127.0.0.1:8790/api/v0/desktop/vnc"
PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class TrackingTransport(iosim.FakeTransport):
    """iosim's transport, remembering whether it was paused as a producer."""

    paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


class Splice:
    """One viewer connected through the site, with its RFB connection."""

    def __init__(self, case: VNCTestCase, protocols: list[str] | None = None) -> None:
        self.case = case
        server = case.site.buildProtocol(PEER)
        factory = rfbclient.webSocketFactory(case.reactor, URL, protocols)
        self.client: rfbclient.RFBWebSocketClient = factory.buildProtocol(PEER)
        self.serverTransport = TrackingTransport(server, isServer=True, peerAddress=PEER)
        self.clientTransport = TrackingTransport(self.client, isServer=False)
        self.pump = iosim.connect(
            server, self.serverTransport, self.client, self.clientTransport,
            clock=case.reactor,
        )
        self.rfbTransport = StringTransport()
        self.rfbProtocol: Any = None

    def acceptRFB(self, banner: bytes = b"") -> None:
        """Let the pending connection to the RFB socket succeed."""
        path, factory, _, _ = self.case.reactor.unixClients.pop()
        self.case.assertEqual(path, self.case.desktop.info.rfbSocket)
        self.rfbProtocol = factory.buildProtocol(None)
        self.rfbProtocol.makeConnection(self.rfbTransport)
        if banner:
            self.rfbProtocol.dataReceived(banner)
        self.pump.flush()

    def fromRFB(self, data: bytes) -> None:
        self.rfbProtocol.dataReceived(data)
        self.pump.flush()

    def received(self) -> bytes:
        reader = self.client.reader
        return bytes(reader.buf[reader.pos :])


class VNCTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.desktop = FakeDesktop(640, 480)
        self.state = State(self.desktop, None)  # type: ignore[arg-type]
        self.children = vnc.vncChildren(self.state, self.reactor)
        self.site = makeSite(makeRoot(self.state, extra=self.children))
        self.site.reactor = self.reactor
        self.site.timeOut = None

    def openSplice(self, protocols: list[str] | None = None) -> Splice:
        splice = Splice(self, protocols)
        splice.acceptRFB(b"RFB 003.008\n")
        self.assertTrue(splice.client.opened.called, "the WebSocket did not open")
        return splice

    def test_bytesBothWays(self) -> None:
        """
        The banner Xvnc sent before the upgrade, and later bytes, reach the
        viewer unchanged as binary messages; the viewer's bytes reach Xvnc.
        """
        splice = self.openSplice()
        self.assertEqual(splice.received(), b"RFB 003.008\n")
        payload = bytes(range(256)) * 1000
        splice.fromRFB(payload)
        self.assertEqual(splice.received(), b"RFB 003.008\n" + payload)
        self.assertFalse(splice.client.textReceived)
        splice.client.sendMessage(b"RFB 003.008\n", isBinary=True)
        splice.client.sendMessage(b"\x01\x01", isBinary=True)
        splice.pump.flush()
        self.assertEqual(splice.rfbTransport.value(), b"RFB 003.008\n\x01\x01")

    def test_subprotocolBinaryWhenOffered(self) -> None:
        self.assertEqual(self.openSplice(["binary"]).client.websocket_protocol_in_use, "binary")

    def test_noSubprotocolWhenNoneOffered(self) -> None:
        self.assertIsNone(self.openSplice().client.websocket_protocol_in_use)

    def test_noCompression(self) -> None:
        factory = self.children[b"vnc"].factory  # type: ignore[attr-defined]
        self.assertIsNone(factory.perMessageCompressionAccept([object()]))
        self.assertEqual(factory.maxMessagePayloadSize, 0)
        self.assertEqual(factory.maxFramePayloadSize, 0)
        self.assertEqual(factory.autoPingInterval, vnc.PING_INTERVAL)
        self.assertEqual(factory.autoPingTimeout, vnc.PING_TIMEOUT)

    def test_producersRegisteredBothWays(self) -> None:
        """
        The RFB transport is paused until the WebSocket is open; then each
        transport is the other's streaming producer, replacing the HTTP
        channel that twisted.web had registered.
        """
        splice = Splice(self)
        path, factory, _, _ = self.reactor.unixClients.pop()
        splice.rfbProtocol = factory.buildProtocol(None)
        splice.rfbProtocol.makeConnection(splice.rfbTransport)
        # Still in the reactor turn that connected: nothing attached yet
        # would have been paused already.
        splice.pump.flush()
        self.assertIs(splice.serverTransport.producer, splice.rfbTransport)
        self.assertTrue(splice.serverTransport.streamingProducer)
        self.assertIs(splice.rfbTransport.producer, splice.serverTransport)
        self.assertTrue(splice.rfbTransport.streaming)
        self.assertEqual(splice.rfbTransport.producerState, "producing")

    def test_rfbPausedUntilAttached(self) -> None:
        """
        The RFB connection reads nothing until a viewer is attached; what
        arrived anyway is kept and delivered first, in order.
        """
        rfb = vnc.RFBConnection()
        transport = StringTransport()
        rfb.makeConnection(transport)
        self.assertEqual(transport.producerState, "paused")
        rfb.dataReceived(b"RFB ")
        viewer = StringTransport()
        rfb.attach(viewer, viewer.write, viewer.loseConnection)
        rfb.dataReceived(b"003.008\n")
        self.assertEqual(viewer.value(), b"RFB 003.008\n")
        self.assertEqual(transport.producerState, "producing")

    def test_pausePropagates(self) -> None:
        """
        A full WebSocket transport pauses reading from Xvnc and the other
        way round; resuming resumes.
        """
        splice = self.openSplice()
        splice.serverTransport.producer.pauseProducing()
        self.assertEqual(splice.rfbTransport.producerState, "paused")
        splice.serverTransport.producer.resumeProducing()
        self.assertEqual(splice.rfbTransport.producerState, "producing")
        splice.rfbTransport.producer.pauseProducing()
        self.assertTrue(splice.serverTransport.paused)
        splice.rfbTransport.producer.resumeProducing()
        self.assertFalse(splice.serverTransport.paused)

    def test_rfbCloseClosesWebSocket(self) -> None:
        splice = self.openSplice()
        splice.rfbProtocol.connectionLost(Failure(error.ConnectionDone()))
        splice.pump.flush()
        self.assertTrue(splice.client.closedWith.called)
        wasClean, code, _ = self.successResultOf(splice.client.closedWith)
        self.assertEqual(code, 1000)

    def test_viewerCloseClosesRFB(self) -> None:
        splice = self.openSplice()
        splice.client.sendClose(code=1000)
        splice.pump.flush()
        self.assertTrue(splice.rfbTransport.disconnecting)

    def test_viewerDropClosesRFB(self) -> None:
        splice = self.openSplice()
        splice.clientTransport.loseConnection()
        splice.pump.flush()
        self.assertTrue(splice.rfbTransport.disconnecting)

    def test_textFrameRejected(self) -> None:
        """A text frame fails the connection with 1003 and reaches nobody."""
        splice = self.openSplice()
        splice.client.sendMessage(b"RFB 003.008\n", isBinary=False)
        splice.pump.flush()
        _, code, _ = self.successResultOf(splice.client.closedWith)
        self.assertEqual(code, 1003)
        self.assertEqual(splice.rfbTransport.value(), b"")
        self.assertTrue(splice.rfbTransport.disconnecting)

    def test_pingsKeepAliveAndDeadPeerCloses(self) -> None:
        """
        After the ping interval a ping goes out; a peer that never answers
        is dropped after the timeout and the RFB connection closes.
        """
        splice = self.openSplice()
        # The viewer stops answering: its transport swallows everything.
        splice.clientTransport.disconnecting = False
        splice.pump.flush()
        self.reactor.advance(vnc.PING_INTERVAL + 1)
        sent = splice.serverTransport.getOutBuffer()
        self.assertEqual(sent[:1], b"\x89", "expected a ping frame")
        self.reactor.advance(vnc.PING_TIMEOUT + 10)
        self.assertTrue(splice.serverTransport.disconnecting)
        splice.serverTransport.reportDisconnect()
        self.assertTrue(splice.rfbTransport.disconnecting)

    # -- refusals

    def rawRequest(self) -> tuple[StringTransport, Any]:
        channel = self.site.buildProtocol(PEER)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(
            b"GET /api/v0/desktop/vnc HTTP/1.1\r\nHost: 127.0.0.1\r\n"
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
        self.assertEqual(self.reactor.unixClients, [])

    def test_connectFailure(self) -> None:
        transport, _ = self.rawRequest()
        for _ in range(vnc.CONNECT_ATTEMPTS):
            _, factory, _, _ = self.reactor.unixClients.pop()
            factory.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
            self.reactor.advance(1)
        out = self.assertJSONError(transport, 500, "Failed to connect to VNC server.")
        self.assertTrue(out["detail"])

    def test_connectRetriedOnEAGAIN(self) -> None:
        splice = Splice(self)
        _, factory, _, _ = self.reactor.unixClients.pop()
        factory.clientConnectionFailed(
            None, Failure(error.ConnectError(osError=11, string="Resource temporarily unavailable"))
        )
        self.reactor.advance(1)
        splice.acceptRFB(b"RFB 003.008\n")
        self.assertTrue(splice.client.opened.called)

    def test_otherConnectErrorNotRetried(self) -> None:
        transport, _ = self.rawRequest()
        _, factory, _, _ = self.reactor.unixClients.pop()
        factory.clientConnectionFailed(
            None, Failure(error.ConnectError(osError=2, string="No such file or directory"))
        )
        self.reactor.advance(1)
        self.assertEqual(self.reactor.unixClients, [])
        self.assertJSONError(transport, 500, "Failed to connect to VNC server.")

    def test_notAnUpgrade(self) -> None:
        """A plain GET gets a JSON 426 and its RFB connection is closed."""
        channel = self.site.buildProtocol(PEER)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /api/v0/desktop/vnc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _, factory, _, _ = self.reactor.unixClients.pop()
        rfb = factory.buildProtocol(None)
        rfbTransport = StringTransport()
        rfb.makeConnection(rfbTransport)
        self.assertJSONError(transport, 426, "WebSocket upgrade required.")
        self.assertTrue(rfbTransport.disconnecting)

    def test_shuttingDown(self) -> None:
        self.state.shuttingDown = True
        transport, _ = self.rawRequest()
        self.assertJSONError(transport, 503, "Desktop API is shutting down.")

    def test_clientGoneBeforeConnectClosesRFB(self) -> None:
        transport, channel = self.rawRequest()
        channel.connectionLost(Failure(error.ConnectionDone()))
        _, factory, _, _ = self.reactor.unixClients.pop()
        rfb = factory.buildProtocol(None)
        rfbTransport = StringTransport()
        rfb.makeConnection(rfbTransport)
        self.assertTrue(rfbTransport.disconnecting)


class RawListenerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.desktop = FakeDesktop(640, 480)
        self.state = State(self.desktop, None)  # type: ignore[arg-type]
        self.factory = vnc.RawRFBFactory(self.state, self.reactor)
        self.viewer = self.factory.buildProtocol(PEER)
        self.viewerTransport = StringTransport()
        self.viewer.makeConnection(self.viewerTransport)

    def accept(self) -> tuple[Any, StringTransport]:
        path, factory, _, _ = self.reactor.unixClients.pop()
        self.assertEqual(path, self.desktop.info.rfbSocket)
        rfb = factory.buildProtocol(None)
        transport = StringTransport()
        rfb.makeConnection(transport)
        return rfb, transport

    def test_spliceBothWaysWithProducers(self) -> None:
        self.assertEqual(self.viewerTransport.producerState, "paused")
        rfb, rfbTransport = self.accept()
        self.assertEqual(self.viewerTransport.producerState, "producing")
        self.assertIs(self.viewerTransport.producer, rfbTransport)
        self.assertIs(rfbTransport.producer, self.viewerTransport)
        rfb.dataReceived(b"RFB 003.008\n")
        self.assertEqual(self.viewerTransport.value(), b"RFB 003.008\n")
        self.viewer.dataReceived(b"RFB 003.008\n")
        self.assertEqual(rfbTransport.value(), b"RFB 003.008\n")
        self.viewerTransport.producer.pauseProducing()
        self.assertEqual(rfbTransport.producerState, "paused")
        rfbTransport.producer.pauseProducing()
        self.assertEqual(self.viewerTransport.producerState, "paused")

    def test_closePropagates(self) -> None:
        rfb, rfbTransport = self.accept()
        rfb.connectionLost(Failure(error.ConnectionDone()))
        self.assertTrue(self.viewerTransport.disconnecting)
        rfb2 = self._second()
        self.viewer.connectionLost(Failure(error.ConnectionDone()))
        self.assertTrue(rfb2.disconnecting)

    def _second(self) -> StringTransport:
        viewer = self.factory.buildProtocol(PEER)
        viewer.makeConnection(StringTransport())
        _, transport = self.accept()
        self.viewer = viewer
        return transport

    def test_desktopFailureClosesViewer(self) -> None:
        self.desktop.failing.add("start")
        viewer = self.factory.buildProtocol(PEER)
        transport = StringTransport()
        viewer.makeConnection(transport)
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
        state = State(FakeDesktop(), None)  # type: ignore[arg-type]
        self.treq = StubTreq(makeRoot(state, extra=vnc.vncChildren(state, MemoryReactorClock())))

    def get(self, path: str) -> tuple[int, Any, bytes]:
        d = self.treq.get("http://localhost/api/v0/desktop/" + path)
        for _ in range(5):
            self.treq.flush()
        response = self.successResultOf(d)
        return response.code, response.headers, self.successResultOf(response.content())

    def test_page(self) -> None:
        code, headers, body = self.get("")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        for needle in (b"novnc/core/rfb.js", b"scaleViewport", b"viewOnly", b'"vnc"',
                       b"wss:", b"token", b"disconnect"):
            self.assertIn(needle, body)

    def test_noVNCModules(self) -> None:
        """noVNC's files are served with a type browsers accept for modules."""
        request = DummyRequest([b"core", b"rfb.js"])
        files = vnc.novncResource()
        self.successResultOf(_render(getChildForRequest(files, request), request))
        self.assertEqual(request.responseCode or 200, 200)
        self.assertEqual(
            request.responseHeaders.getRawHeaders(b"content-type"), [b"text/javascript"]
        )
        self.assertEqual(b"".join(request.written), b"export default class RFB {}\n")

    def test_noListings(self) -> None:
        code, _, body = self.get("novnc/core/")
        self.assertEqual(code, 404)
        self.assertNotIn(b"rfb.js", body)

    def test_missingNoVNC(self) -> None:
        resource = vnc.novncResource(self.mktemp())
        self.assertIsInstance(resource, vnc._MissingNoVNC)
