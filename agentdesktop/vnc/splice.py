"""
Moving RFB bytes between the desktop's VNC socket and a viewer, fast and
with bounded memory.

An RFB framebuffer update is megabytes (8 MB for a raw 1920x1080 screen),
so the Xvnc-to-viewer direction is where time goes.  Two pieces keep it
cheap, both on the reactor thread:

  - L{RFBSocket} is our transport for the unix socket to Xvnc.  Twisted's
    own unix transport reads with C{recvmsg} into a fresh buffer for every
    read (about 200 KB each, forty per update); this one reads into one
    reused buffer, several reads per reactor turn, and lends its protocol a
    C{memoryview} that is only valid during C{dataReceived}.

  - L{ViewerPump} sends those bytes to the viewer: straight to the viewer's
    socket with one C{sendmsg} (WebSocket frame header and payload
    together) while the viewer's Twisted transport holds nothing, and
    otherwise through C{transport.write}, after which it stops reading from
    Xvnc until the transport, whose pull producer it is, asks for more.  So
    at most one read's worth of bytes waits in the service per viewer.

Measured with C{benchmarks/vnc_throughput.py}; the numbers are in the
commit that introduced this module.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable
from typing import Any

from twisted.internet import abstract, main
from twisted.internet.address import UNIXAddress
from twisted.internet.interfaces import IPullProducer
from twisted.python.failure import Failure
from zope.interface import implementer

#: Bytes read from Xvnc at once, into one buffer reused for every read.
READ_SIZE = 256 * 1024

#: Reads per reactor turn while Xvnc has more and the viewer keeps up.
READS_PER_TURN = 8

#: The kernel send buffer for a viewer on this machine (loopback).  There
#: the bandwidth-delay product is nil, so the kernel's autotuning (up to
#: megabytes) only adds queueing; a shallow queue keeps an update's pages
#: in cache while the next copy reads them.  Remote viewers keep the
#: kernel's autotuning, which a real network needs.
LOOPBACK_SEND_BUFFER = 256 * 1024


def frameHeader(length: int) -> bytes:
    """An unmasked, final, binary WebSocket frame header for LENGTH bytes."""
    if length <= 125:
        return bytes((0x82, length))
    if length <= 0xFFFF:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


def socketOf(transport: Any) -> socket.socket | None:
    """
    The socket under TRANSPORT when bytes written to that socket reach the
    peer as they are: a plain Twisted TCP or unix transport.  Anything else
    (TLS, which forwards unknown attributes to the TCP transport under it;
    in-memory test transports) gets L{None}, and only C{write}.
    """
    if not isinstance(transport, abstract.FileDescriptor):
        return None
    sock = transport.__dict__.get("socket")
    return sock if isinstance(sock, socket.socket) else None


def isLoopback(sock: socket.socket) -> bool:
    """Whether SOCK's peer is on this machine (loopback or a unix socket)."""
    if sock.family == socket.AF_UNIX:
        return True
    try:
        host = sock.getpeername()[0]
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except (OSError, ValueError):
        return False


class RFBSocket(abstract.FileDescriptor):
    """
    A Twisted transport for a connected, non-blocking unix socket to Xvnc.

    It reads nothing until L{resumeProducing}.  Its protocol's
    C{dataReceived} gets a C{memoryview} into a buffer that the next read
    overwrites: copy what you keep.  Writing, buffering and flow control
    toward Xvnc are L{abstract.FileDescriptor}'s.
    """

    bufferSize = READ_SIZE

    def __init__(self, sock: socket.socket, reactor: Any, protocol: Any) -> None:
        super().__init__(reactor)
        sock.setblocking(False)
        self.socket = sock
        self.protocol = protocol
        self.connected = 1
        self.paused = True
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)
        protocol.makeConnection(self)

    def fileno(self) -> int:
        return self.socket.fileno()

    def logPrefix(self) -> str:
        return "RFBSocket"

    def getHost(self) -> UNIXAddress:
        return UNIXAddress(self.socket.getsockname() or None)

    def getPeer(self) -> UNIXAddress:
        return UNIXAddress(self.socket.getpeername() or None)

    def pauseProducing(self) -> None:
        self.paused = True
        self.stopReading()

    def resumeProducing(self) -> None:
        if self.connected and not self.disconnecting:
            self.paused = False
            self.startReading()

    def doRead(self) -> Any:
        for _ in range(READS_PER_TURN):
            if self.paused or self.protocol is None:
                return None
            try:
                n = self.socket.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                return main.CONNECTION_LOST
            if not n:
                return main.CONNECTION_DONE
            self.protocol.dataReceived(self._view[:n])
        return None

    def writeSomeData(self, data: bytes) -> Any:
        try:
            return self.socket.send(memoryview(data)[: self.SEND_LIMIT])
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            return main.CONNECTION_LOST

    def connectionLost(self, reason: Failure) -> None:
        # Our producer is the viewer: its protocol closes it properly (a
        # WebSocket close frame) when ours learns of this; the default
        # stopProducing would drop it first.
        self.producer = None
        super().connectionLost(reason)
        self.socket.close()
        protocol, self.protocol = self.protocol, None
        if protocol is not None:
            protocol.connectionLost(reason)


def connectUnix(reactor: Any, path: str, protocol: Any) -> RFBSocket:
    """
    Connect to the unix socket at PATH and give the connection to PROTOCOL.
    A unix connect does not wait: it succeeds or fails at once.

    @raise OSError: as C{connect(2)} does; C{BlockingIOError} (EAGAIN) when
        the listener's backlog is full.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return RFBSocket(sock, reactor, protocol)


@implementer(IPullProducer)
class ViewerPump:
    """
    Sends RFB bytes to one viewer transport, in WebSocket frames or raw.

    It is the viewer transport's pull producer: the transport calls
    L{resumeProducing} whenever it has sent everything it held.  Until then
    (and from the start, since the HTTP layer may still hold its upgrade
    response) nothing goes straight to the socket.  Whoever else writes to
    the transport must call L{noteWrite} first.

    @ivar source: what to pause and resume: the RFB transport.
    """

    def __init__(
        self,
        viewer: Any,
        source: Any,
        framed: bool,
        isOpen: Callable[[], bool] = lambda: True,
    ) -> None:
        self.viewer = viewer
        self.source = source
        self.framed = framed
        self.isOpen = isOpen
        self.sock = socketOf(viewer)
        self.direct = False
        self.stopped = False
        if self.sock is not None and isLoopback(self.sock):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LOOPBACK_SEND_BUFFER)
            except OSError:
                pass

    def start(self) -> None:
        """Register with the viewer transport and start reading from Xvnc."""
        self.viewer.registerProducer(self, False)
        # Registering asks for data at once, but the transport may still
        # hold the upgrade response: the first bytes go behind it.
        self.direct = False
        self.source.resumeProducing()

    def send(self, data: memoryview | bytes) -> None:
        """
        Send DATA (valid only during this call) to the viewer, or keep the
        unsent rest in the viewer's transport and pause the source.
        """
        if self.stopped or not self.isOpen():
            return
        header = frameHeader(len(data)) if self.framed else b""
        total = len(header) + len(data)
        sent = 0
        if self.direct and self.sock is not None:
            try:
                sent = self.sock.sendmsg([header, data] if header else [data])
            except OSError:
                # A full socket, or an error the transport will meet and
                # report its own way: the rest goes through it.
                sent = 0
            if sent == total:
                return
        if sent < len(header):
            rest = header[sent:] + bytes(data)
        else:
            rest = bytes(data[sent - len(header) :])
        self.direct = False
        self.viewer.write(rest)
        self.source.pauseProducing()

    def noteWrite(self) -> None:
        """Someone else is writing to the viewer transport: queue behind it."""
        self.direct = False

    def resumeProducing(self) -> None:
        if self.stopped:
            return
        self.direct = self.sock is not None and not getattr(self.viewer, "disconnecting", False)
        self.source.resumeProducing()

    def stopProducing(self) -> None:
        self.stopped = True
        self.direct = False
