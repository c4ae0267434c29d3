"""
The viewer-to-server half of RFB, followed message by message, so that the
service can drop input from viewers that may not send it (SPEC section 16).
Pure: no reactor, no I/O; fed arbitrary chunks.

It follows what TigerVNC's server reads (C{common/rfb/SConnection.cxx},
C{SMsgReader.cxx}) and RFC 6143 section 7: the handshake (ProtocolVersion;
for 3.7 and 3.8 the viewer's choice of security type, which must be None,
the only one our Xvnc offers; ClientInit), then messages whose length is
known from their first bytes.  Every message but input passes unchanged.
A message the server would read differently from us would let a viewer
hide one message inside another, so whatever we cannot follow exactly (an
unknown message type, an extended clipboard message whose length is not
what the server reads) is an L{RFBError}: close that viewer.

One exception to "unchanged": the ExtendedMouseButtons pseudo-encoding is
removed from SetEncodings.  A server that honours it (TigerVNC 1.15 and
later) then reads a PointerEvent with its top mask bit set as 7 bytes
instead of 6; removing it keeps PointerEvents 6 bytes on every server, so
our reading and the server's cannot drift apart.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

# Client-to-server message types.
SET_PIXEL_FORMAT = 0
SET_ENCODINGS = 2
FRAMEBUFFER_UPDATE_REQUEST = 3
KEY_EVENT = 4
POINTER_EVENT = 5
CLIENT_CUT_TEXT = 6
ENABLE_CONTINUOUS_UPDATES = 150
CLIENT_FENCE = 248
XVP = 250
SET_DESKTOP_SIZE = 251
QEMU = 255
QEMU_EXTENDED_KEY_EVENT = 0

#: Messages of one fixed length, type byte included.
FIXED_LENGTHS = {
    SET_PIXEL_FORMAT: 20,
    FRAMEBUFFER_UPDATE_REQUEST: 10,
    KEY_EVENT: 8,
    POINTER_EVENT: 6,
    ENABLE_CONTINUOUS_UPDATES: 10,
    XVP: 4,
}

SECURITY_NONE = 1
EXTENDED_MOUSE_BUTTONS = -316

# The extended clipboard's actions (in the flags word of a ClientCutText
# whose length is negative).
_CAPS = 1 << 24
_REQUEST = 1 << 25
_PEEK = 1 << 26
_NOTIFY = 1 << 27
_PROVIDE = 1 << 28
_ACTIONS = 0xFF000000

_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")

_HANDSHAKE_VERSION, _HANDSHAKE_SECURITY, _HANDSHAKE_INIT, _MESSAGES = range(4)


class RFBError(Exception):
    """The viewer's stream cannot be followed safely; close the viewer."""


def _u16(data: bytes | bytearray, at: int) -> int:
    return int(struct.unpack_from("!H", data, at)[0])


def _u32(data: bytes | bytearray, at: int) -> int:
    return int(struct.unpack_from("!I", data, at)[0])


class ClientStream:
    """
    One viewer's bytes toward the RFB server.  L{feed} takes what arrived
    and returns what to forward.

    KeyEvent, PointerEvent, QEMU extended key events and ClientCutText
    pass only while C{mayInput()} says so (asked as each message
    completes), and each key or pointer event that passes calls
    C{onInput()}.  A viewer that lost the right keeps the right to let go:
    the release of a key it pressed passes, and a pointer event that lifts
    a button it held is forwarded as one that only lifts it, where the
    pointer was.
    """

    def __init__(
        self, mayInput: Callable[[], bool], onInput: Callable[[], object] = lambda: None
    ) -> None:
        self.mayInput = mayInput
        self.onInput = onInput
        self._buf = bytearray()
        self._stage = _HANDSHAKE_VERSION
        # The rest of a ClientCutText's text: bytes left, and whether they pass.
        self._textLeft = 0
        self._textPasses = False
        # What it pressed, by key, with the message that releases it.
        self._keysDown: dict[tuple[str, int], bytes] = {}
        self._buttons = 0
        self._at = b"\0\0\0\0"
        self._releasesOwed = False

    def feed(self, data: bytes | memoryview) -> bytes:
        """
        DATA arrived from the viewer: the bytes to forward to the server.

        @raise RFBError: the stream cannot be followed; nothing more of it
            may be forwarded.
        """
        buf = self._buf
        buf += data
        out = bytearray()
        while buf:
            if self._textLeft:
                n = min(self._textLeft, len(buf))
                if self._textPasses:
                    out += buf[:n]
                del buf[:n]
                self._textLeft -= n
                if not self._textLeft and self._releasesOwed:
                    out += self.releases()
                continue
            length = self._length()
            if length is None or len(buf) < length:
                break
            message = bytes(buf[:length])
            del buf[:length]
            out += self._handle(message)
        return bytes(out)

    def releases(self) -> bytes:
        """
        Messages that release every key and button this viewer pressed
        (which it then no longer holds), to send to the server now: they
        fall between two of the viewer's messages.  In the middle of a
        ClientCutText's text, they are sent after it instead.
        """
        if self._textLeft and self._textPasses:
            self._releasesOwed = True
            return b""
        self._releasesOwed = False
        out = b"".join(self._keysDown.values())
        self._keysDown.clear()
        if self._buttons:
            out += bytes((POINTER_EVENT, 0)) + self._at
            self._buttons = 0
        return out

    # -- lengths

    def _length(self) -> int | None:
        """The length of the message at the buffer's start, if known yet."""
        if self._stage == _HANDSHAKE_VERSION:
            return 12
        if self._stage != _MESSAGES:
            return 1
        buf = self._buf
        kind = buf[0]
        fixed = FIXED_LENGTHS.get(kind)
        if fixed is not None:
            return fixed
        if kind == SET_ENCODINGS:
            return 4 + 4 * _u16(buf, 2) if len(buf) >= 4 else None
        if kind == CLIENT_CUT_TEXT:
            return self._cutTextHeader()
        if kind == CLIENT_FENCE:
            return 9 + buf[8] if len(buf) >= 9 else None
        if kind == SET_DESKTOP_SIZE:
            return 8 + 16 * buf[6] if len(buf) >= 8 else None
        if kind == QEMU:
            if len(buf) < 2:
                return None
            if buf[1] != QEMU_EXTENDED_KEY_EVENT:
                raise RFBError(f"unknown QEMU client message subtype {buf[1]}")
            return 12
        raise RFBError(f"unknown RFB message type {kind}")

    def _cutTextHeader(self) -> int | None:
        """ClientCutText's header: 8 bytes, and the flags word if extended."""
        if len(self._buf) < 8:
            return None
        length = _u32(self._buf, 4)
        if not length & 0x80000000:
            return 8
        size = (1 << 32) - length
        if length == 0x80000000 or size < 4:
            raise RFBError(f"invalid extended clipboard length {size}")
        return 12

    # -- messages

    def _handle(self, message: bytes) -> bytes:
        if self._stage != _MESSAGES:
            return self._handshake(message)
        kind = message[0]
        if kind == KEY_EVENT:
            release = message[:1] + b"\0" + message[2:]
            return self._key(message, bool(message[1]), ("keysym", _u32(message, 4)), release)
        if kind == QEMU:
            release = message[:2] + b"\0\0" + message[4:]
            return self._key(message, bool(_u16(message, 2)), ("keycode", _u32(message, 8)), release)
        if kind == POINTER_EVENT:
            return self._pointer(message)
        if kind == CLIENT_CUT_TEXT:
            return self._cutText(message)
        if kind == SET_ENCODINGS:
            return _withoutExtendedMouseButtons(message)
        return message

    def _handshake(self, message: bytes) -> bytes:
        if self._stage == _HANDSHAKE_VERSION:
            match = _VERSION.fullmatch(message)
            if match is None or int(match.group(1)) != 3:
                raise RFBError(f"not an RFB 3.x protocol version: {message!r}")
            # As TigerVNC: 3.7 is 3.7, 3.8 and later are 3.8, the rest 3.3,
            # where the server picks the security type itself.
            minor = int(match.group(2))
            self._stage = _HANDSHAKE_SECURITY if minor >= 7 else _HANDSHAKE_INIT
        elif self._stage == _HANDSHAKE_SECURITY:
            if message[0] != SECURITY_NONE:
                raise RFBError(f"security type {message[0]} is not offered")
            self._stage = _HANDSHAKE_INIT
        else:
            self._stage = _MESSAGES
        return message

    def _key(self, message: bytes, down: bool, key: tuple[str, int], release: bytes) -> bytes:
        if self.mayInput():
            self.onInput()
            if down:
                self._keysDown[key] = release
            else:
                self._keysDown.pop(key, None)
            return message
        if not down and key in self._keysDown:
            del self._keysDown[key]
            return message
        return b""

    def _pointer(self, message: bytes) -> bytes:
        mask = message[1]
        if self.mayInput():
            self.onInput()
            self._buttons = mask
            self._at = message[2:6]
            return message
        held = self._buttons & mask
        if held == self._buttons:
            return b""
        self._buttons = held
        return bytes((POINTER_EVENT, held)) + self._at

    def _cutText(self, header: bytes) -> bytes:
        length = _u32(header, 4)
        extended = bool(length & 0x80000000)
        size = (1 << 32) - length if extended else length
        passes = self.mayInput()
        if passes and extended:
            _checkExtendedClipboard(_u32(header, 8), size)
        self._textPasses = passes
        # The header of an extended message includes its 4-byte flags word.
        self._textLeft = size - 4 if extended else size
        return header if passes else b""


def _checkExtendedClipboard(flags: int, size: int) -> None:
    """
    Refuse an extended clipboard message of SIZE bytes that the server
    would read fewer bytes of than SIZE (it reads only what its action
    needs), or refuse outright.
    """
    action = flags & _ACTIONS
    if action & _CAPS:
        want = 4 + 4 * bin(flags & 0xFFFF).count("1")
    elif action == _PROVIDE:
        return
    elif action in (_REQUEST, _PEEK, _NOTIFY):
        want = 4
    else:
        raise RFBError(f"unknown extended clipboard action {action:#x}")
    if size != want:
        raise RFBError(f"extended clipboard message of {size} bytes, the server reads {want}")


def _withoutExtendedMouseButtons(message: bytes) -> bytes:
    count = _u16(message, 2)
    encodings = struct.unpack_from(f"!{count}i", message, 4)
    kept = [e for e in encodings if e != EXTENDED_MOUSE_BUTTONS]
    if len(kept) == count:
        return message
    return struct.pack(f"!BxH{len(kept)}i", SET_ENCODINGS, len(kept), *kept)
