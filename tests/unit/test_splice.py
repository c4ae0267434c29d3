"""
The byte-moving under the VNC splice, on real socket pairs with the reactor
replaced by a L{MemoryReactorClock}: the test plays the reactor, calling
C{doRead} and C{doWrite} when it has made a socket readable or writable.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from twisted.internet import main, protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols import policies
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.vnc import splice


class Recorder(protocol.Protocol):
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.lostWith: Failure | None = None

    def dataReceived(self, data: Any) -> None:
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lostWith = reason


def drain(sock: socket.socket) -> bytes:
    out = b""
    sock.setblocking(False)
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def deframe(data: bytes) -> list[bytes]:
    """The payloads of the unmasked binary WebSocket frames in DATA."""
    payloads = []
    while data:
        b0, b1 = data[0], data[1]
        if b0 != 0x82 or b1 & 0x80:
            raise AssertionError(f"not an unmasked final binary frame: {data[:2]!r}")
        length, offset = b1 & 0x7F, 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        payload = data[offset : offset + length]
        if len(payload) != length:
            raise AssertionError("truncated frame")
        payloads.append(payload)
        data = data[offset + length :]
    return payloads


class SocketPairCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def pair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def flush(self, transport: splice.RFBSocket, peer: socket.socket) -> bytes:
        """Play the reactor for TRANSPORT's writes until it holds nothing."""
        out = b""
        for _ in range(10000):
            out += drain(peer)
            if transport not in self.reactor.getWriters():
                return out + drain(peer)
            why = transport.doWrite()
            self.assertIsNone(why)
        self.fail("the transport never finished writing")


class RFBSocketTests(SocketPairCase):
    def setUp(self) -> None:
        super().setUp()
        self.ours, self.xvnc = self.pair()
        self.proto = Recorder()
        self.transport = splice.RFBSocket(self.ours, self.reactor, self.proto)

    def test_readsNothingUntilResumed(self) -> None:
        self.xvnc.sendall(b"RFB 003.008\n")
        self.assertNotIn(self.transport, self.reactor.getReaders())
        self.assertIsNone(self.transport.doRead())
        self.assertEqual(self.proto.chunks, [])
        self.transport.resumeProducing()
        self.assertIn(self.transport, self.reactor.getReaders())
        self.transport.doRead()
        self.assertEqual([bytes(c) for c in self.proto.chunks], [b"RFB 003.008\n"])

    def test_lendsViewsIntoOneBuffer(self) -> None:
        """Every read lands in the same buffer: a protocol must copy what it keeps."""
        self.transport.resumeProducing()
        self.xvnc.sendall(b"first")
        self.transport.doRead()
        first = self.proto.chunks[-1]
        self.assertIsInstance(first, memoryview)
        self.assertEqual(bytes(first), b"first")
        self.xvnc.sendall(b"SECOND")
        self.transport.doRead()
        self.assertEqual(bytes(self.proto.chunks[-1]), b"SECOND")
        self.assertIs(first.obj, self.proto.chunks[-1].obj)

    def test_pauseStopsReadingWithinTheTurn(self) -> None:
        """A protocol that pauses its transport gets no second read that turn."""

        class Pausing(Recorder):
            def dataReceived(self, data: Any) -> None:
                super().dataReceived(bytes(data))
                self.transport.pauseProducing()

        ours, xvnc = self.pair()
        proto = Pausing()
        transport = splice.RFBSocket(ours, self.reactor, proto)
        transport.resumeProducing()
        xvnc.setblocking(False)
        for _ in range(3):
            xvnc.send(b"x" * 65536)
        transport.doRead()
        self.assertEqual(len(proto.chunks), 1)
        self.assertNotIn(transport, self.reactor.getReaders())

    def test_readsSeveralTimesPerTurn(self) -> None:
        self.transport.resumeProducing()
        chunk = b"y" * splice.READ_SIZE
        # Let the socket hold more than one turn's reads; send what fits.
        self.xvnc.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.xvnc.setblocking(False)
        sent = 0
        try:
            while True:
                sent += self.xvnc.send(chunk)
        except BlockingIOError:
            pass
        self.transport.doRead()
        got = sum(len(c) for c in self.proto.chunks)
        self.assertGreater(len(self.proto.chunks), 1)
        self.assertEqual(got, min(sent, splice.READ_SIZE * splice.READS_PER_TURN))

    def test_endOfStream(self) -> None:
        self.transport.resumeProducing()
        self.xvnc.close()
        self.assertIs(self.transport.doRead(), main.CONNECTION_DONE)

    def test_writeReachesXvnc(self) -> None:
        self.transport.write(b"RFB 003.008\n")
        self.transport.write(b"\x01")
        self.assertEqual(self.flush(self.transport, self.xvnc), b"RFB 003.008\n\x01")

    def test_connectionLostClosesAndTells(self) -> None:
        """
        The socket is closed and the protocol told; the producer (a viewer)
        is not stopped, so its own protocol can close it properly.
        """
        viewer = StringTransport()
        self.transport.registerProducer(viewer, True)
        self.transport.connectionLost(Failure(main.CONNECTION_DONE))
        self.assertEqual(self.ours.fileno(), -1)
        self.assertIsNotNone(self.proto.lostWith)
        self.assertEqual(viewer.producerState, "producing")
        self.assertFalse(viewer.disconnecting)

    def test_connectUnixRefusals(self) -> None:
        missing = self.mktemp()
        with self.assertRaises(FileNotFoundError):
            splice.connectUnix(self.reactor, missing, Recorder())


class SocketOfTests(SocketPairCase):
    def test_plainSocketTransport(self) -> None:
        a, _ = self.pair()
        transport = splice.RFBSocket(a, self.reactor, Recorder())
        self.assertIs(splice.socketOf(transport), a)

    def test_tlsWrapperIsNotASocket(self) -> None:
        """
        A TLS transport forwards unknown attributes (C{socket} too) to the
        TCP transport under it; writing there would bypass the encryption.
        """
        a, _ = self.pair()
        tcpLike = splice.RFBSocket(a, self.reactor, Recorder())
        wrapper = policies.ProtocolWrapper(policies.WrappingFactory(protocol.Factory()), Recorder())
        wrapper.makeConnection(tcpLike)
        self.assertIs(wrapper.socket, a)  # what a naive getattr would use
        self.assertIsNone(splice.socketOf(wrapper))

    def test_memoryTransport(self) -> None:
        self.assertIsNone(splice.socketOf(StringTransport()))

    def test_loopback(self) -> None:
        a, _ = self.pair()
        self.assertTrue(splice.isLoopback(a))
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = socket.create_connection(server.getsockname())
        self.addCleanup(client.close)
        self.assertTrue(splice.isLoopback(client))

        class Remote:
            family = socket.AF_INET

            def getpeername(self) -> tuple[str, int]:
                return ("192.0.2.7", 5900)

        self.assertFalse(splice.isLoopback(Remote()))  # type: ignore[arg-type]

    def test_frameHeader(self) -> None:
        self.assertEqual(splice.frameHeader(5), b"\x82\x05")
        self.assertEqual(splice.frameHeader(125), b"\x82\x7d")
        self.assertEqual(splice.frameHeader(126), b"\x82\x7e\x00\x7e")
        self.assertEqual(splice.frameHeader(300), b"\x82\x7e\x01\x2c")
        self.assertEqual(splice.frameHeader(70000), b"\x82\x7f" + (70000).to_bytes(8, "big"))


class Source:
    """What the pump pauses and resumes (the RFB transport)."""

    def __init__(self) -> None:
        self.paused = True

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


class ViewerPumpTests(SocketPairCase):
    """
    The pump's viewer is a real socket transport (an L{RFBSocket} serves:
    any L{abstract.FileDescriptor} with a socket does).
    """

    def setUp(self) -> None:
        super().setUp()
        self.ours, self.peer = self.pair()
        self.viewer = splice.RFBSocket(self.ours, self.reactor, Recorder())
        self.source = Source()

    def pump(self, framed: bool = True, **kw: Any) -> splice.ViewerPump:
        pump = splice.ViewerPump(self.viewer, self.source, framed, **kw)
        pump.start()
        return pump

    def test_registersAsPullProducer(self) -> None:
        pump = self.pump()
        self.assertIs(self.viewer.producer, pump)
        self.assertFalse(self.viewer.streamingProducer)
        self.assertFalse(self.source.paused)

    def test_firstSendQueuesBehindWhatTheTransportHolds(self) -> None:
        """
        The HTTP layer's upgrade response may still be in the transport:
        the first bytes go behind it, and the source waits for the drain.
        """
        self.viewer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        pump = self.pump()
        pump.send(memoryview(b"RFB 003.008\n"))
        self.assertTrue(self.source.paused)
        self.assertEqual(drain(self.peer), b"")
        out = self.flush(self.viewer, self.peer)
        self.assertEqual(out, b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x82\x0cRFB 003.008\n")
        self.assertFalse(self.source.paused, "the drain did not resume the source")
        self.assertTrue(pump.direct)

    def test_directOnceDrained(self) -> None:
        """Once the transport is empty, sends go straight to the socket."""
        pump = self.pump(framed=False)
        pump.send(memoryview(b"one"))
        self.flush(self.viewer, self.peer)
        pump.send(memoryview(b"two"))
        pump.send(memoryview(b"three"))
        self.assertNotIn(self.viewer, self.reactor.getWriters())
        self.assertEqual(drain(self.peer), b"twothree")
        self.assertFalse(self.source.paused)

    def test_partialSendKeepsOrderAndPauses(self) -> None:
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        pump = self.pump()
        pump.send(memoryview(b"warm"))
        received = self.flush(self.viewer, self.peer)
        payload = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes
        buffer = bytearray(payload)
        pump.send(memoryview(buffer))
        self.assertTrue(self.source.paused)
        self.assertIn(self.viewer, self.reactor.getWriters())
        buffer[:] = b"\0" * len(buffer)  # the next read reuses the buffer
        received += self.flush(self.viewer, self.peer)
        self.assertEqual(deframe(received), [b"warm", payload])
        self.assertFalse(self.source.paused)

    def test_otherWritesQueueTheFollowingSend(self) -> None:
        """A ping written by autobahn is never overtaken mid-frame."""
        pump = self.pump(framed=False)
        pump.send(memoryview(b"a"))
        self.flush(self.viewer, self.peer)
        pump.noteWrite()
        self.viewer.write(b"PING")
        pump.send(memoryview(b"b"))
        self.assertTrue(self.source.paused)
        self.assertEqual(self.flush(self.viewer, self.peer), b"PINGb")

    def test_notOpenDrops(self) -> None:
        open_ = [True]
        pump = self.pump(framed=False, isOpen=lambda: open_[0])
        open_[0] = False
        pump.send(memoryview(b"late"))
        self.assertEqual(self.flush(self.viewer, self.peer), b"")

    def test_stoppedSendsNothing(self) -> None:
        """After the transport stops its producer (it lost its connection), nothing moves."""
        pump = self.pump(framed=False)
        pump.send(memoryview(b"a"))
        self.flush(self.viewer, self.peer)
        self.source.paused = True
        pump.stopProducing()
        pump.send(memoryview(b"late"))
        pump.resumeProducing()
        self.assertEqual(self.flush(self.viewer, self.peer), b"")
        self.assertTrue(self.source.paused)

    def test_loopbackSendBufferCapped(self) -> None:
        self.pump()
        # Linux doubles what it is given for bookkeeping.
        self.assertLessEqual(
            self.ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            2 * splice.LOOPBACK_SEND_BUFFER,
        )

    def test_memoryTransportGetsWrites(self) -> None:
        """Without a socket (TLS, tests), everything goes through write."""
        viewer = StringTransport()
        pump = splice.ViewerPump(viewer, self.source, True)
        pump.start()
        pump.resumeProducing()
        pump.send(memoryview(b"abc"))
        self.assertEqual(viewer.value(), b"\x82\x03abc")
        self.assertTrue(self.source.paused)
