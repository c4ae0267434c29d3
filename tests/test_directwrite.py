"""
The splice's direct socket write: order is kept whether the kernel takes
everything, part, or the transport already holds data.
"""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.vnc import _frameHeader, directWrite


class FakeSocketTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataBuffer: list[bytes] = []
        self.disconnecting = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))
        self._tempDataBuffer.append(bytes(data))


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


class DirectWrite(SynchronousTestCase):
    def setUp(self) -> None:
        self.a, self.b = socket.socketpair()
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.a.setblocking(False)
        self.transport = FakeSocketTransport(self.a)

    def test_allToSocket(self) -> None:
        directWrite(self.transport, [b"head", b"payload"])
        self.assertEqual(self.transport.written, [])
        self.assertEqual(drain(self.b), b"headpayload")

    def test_remainderToTransportInOrder(self) -> None:
        self.a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        payload = bytes(range(256)) * 4096  # 1 MiB: more than the socket takes
        directWrite(self.transport, [b"HDR", payload])
        self.assertNotEqual(self.transport.written, [])
        received = drain(self.b) + b"".join(self.transport.written)
        self.assertEqual(received, b"HDR" + payload)

    def test_bufferedTransportKeepsOrder(self) -> None:
        self.transport._tempDataBuffer = [b"earlier"]
        directWrite(self.transport, [b"a", b"b"])
        self.assertEqual(self.transport.written, [b"a", b"b"])
        self.assertEqual(drain(self.b), b"")

    def test_noSocketUsesWrite(self) -> None:
        class Plain:
            written: list[bytes] = []

            def write(self, data: bytes) -> None:
                self.written.append(data)

        plain = Plain()
        directWrite(plain, [b"x", b"y"])
        self.assertEqual(plain.written, [b"x", b"y"])

    def test_frameHeader(self) -> None:
        self.assertEqual(_frameHeader(5), b"\x82\x05")
        self.assertEqual(_frameHeader(300), b"\x82\x7e\x01\x2c")
        self.assertEqual(_frameHeader(70000), b"\x82\x7f" + (70000).to_bytes(8, "big"))
