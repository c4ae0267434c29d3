"""
A lean blocking RFB 3.8 client (security None, 32 bpp, Raw) over a plain
socket or a WebSocket, for throughput measurements: it reads each update
straight into one preallocated buffer, so the client costs the same on
every path and is not what is measured.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time


class Plain:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recvInto(self, view: memoryview) -> None:
        """Fill VIEW from the socket itself."""
        pos = 0
        while pos < len(view):
            got = self.sock.recv_into(view[pos:], len(view) - pos)
            if not got:
                raise EOFError("server closed the connection")
            pos += got

    def recv(self, n: int) -> bytes:
        buf = bytearray(n)
        self.recvInto(memoryview(buf))
        return bytes(buf)

    def readInto(self, view: memoryview) -> None:
        """Fill VIEW with RFB bytes."""
        self.recvInto(view)

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        self.readInto(memoryview(buf))
        return bytes(buf)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class WebSocket(Plain):
    """Binary frames over an HTTP/1.1 upgrade; control frames are skipped."""

    def __init__(self, sock: socket.socket, path: str, protocols: str | None = None) -> None:
        super().__init__(sock)
        self.left = 0
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Protocol: {protocols}\r\n" if protocols else ""
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise EOFError("closed during the upgrade")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"upgrade refused: {head[:80]!r}")

    def _frame(self) -> None:
        b0, b1 = self.recv(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.recv(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.recv(8))
        if b0 & 0x0F not in (0, 2):
            self.recv(length)  # ping/pong/close payload
            return
        self.left = length

    def readInto(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            if self.left == 0:
                self._frame()
                continue
            k = min(self.left, len(view) - pos)
            self.recvInto(view[pos:pos + k])
            pos += k
            self.left -= k

    def send(self, data: bytes) -> None:
        self.sock.sendall(maskedFrame(0x2, data))


def maskedFrame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (masked, as clients must) of OPCODE, up to 64 KiB."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        head = bytes((0x80 | opcode, 0x80 | len(payload)))
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, len(payload))
    return head + mask + masked


def measure(conn: Plain, seconds: float) -> tuple[float, float]:
    """Full non-incremental Raw updates per second, and MB/s."""
    if not conn.read(12).startswith(b"RFB 003."):
        raise RuntimeError("not an RFB server")
    conn.send(b"RFB 003.008\n")
    (n,) = conn.read(1)
    if 1 not in conn.read(n):
        raise RuntimeError("security type None not offered")
    conn.send(b"\x01")
    if conn.read(4) != b"\0\0\0\0":
        raise RuntimeError("security handshake failed")
    conn.send(b"\x01")
    w, h = struct.unpack("!HH", conn.read(4))
    conn.read(16)
    (nameLength,) = struct.unpack("!I", conn.read(4))
    conn.read(nameLength)
    conn.send(b"\0\0\0\0" + struct.pack("!BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
    conn.send(struct.pack("!BxHi", 2, 1, 0))
    frame = bytearray(w * h * 4)
    view = memoryview(frame)

    def update() -> None:
        conn.send(struct.pack("!BBHHHH", 3, 0, 0, 0, w, h))
        while conn.read(1)[0] != 0:  # skip anything before the update
            pass
        (count,) = struct.unpack("!xH", conn.read(3))
        for _ in range(count):
            _, _, rw, rh, _ = struct.unpack("!HHHHi", conn.read(12))
            conn.readInto(view[: rw * rh * 4])

    update()
    update()
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        update()
        frames += 1
    elapsed = time.perf_counter() - started
    conn.sock.close()
    return frames / elapsed, frames * w * h * 4 / elapsed / 1e6
