"""
The viewer-to-server RFB parser: every message type, every way of
splitting the stream, input dropped or passed, and what it refuses.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.vnc.rfb import EXTENDED_MOUSE_BUTTONS, ClientStream, RFBError

HANDSHAKE_38 = b"RFB 003.008\n" + b"\x01" + b"\x01"  # version, security None, ClientInit
HANDSHAKE_33 = b"RFB 003.003\n" + b"\x01"  # version, ClientInit


def setPixelFormat() -> bytes:
    return struct.pack("!B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def setEncodings(*encodings: int) -> bytes:
    return struct.pack(f"!BxH{len(encodings)}i", 2, len(encodings), *encodings)


def updateRequest(incremental: int = 1) -> bytes:
    return struct.pack("!BBHHHH", 3, incremental, 0, 0, 640, 480)


def keyEvent(keysym: int, down: bool) -> bytes:
    return struct.pack("!BBxxI", 4, int(down), keysym)


def pointerEvent(mask: int, x: int, y: int) -> bytes:
    return struct.pack("!BBHH", 5, mask, x, y)


def cutText(text: bytes) -> bytes:
    return struct.pack("!B3xI", 6, len(text)) + text


def extendedCutText(flags: int, payload: bytes = b"") -> bytes:
    data = struct.pack("!I", flags) + payload
    return struct.pack("!B3xi", 6, -len(data)) + data


def continuousUpdates() -> bytes:
    return struct.pack("!BBHHHH", 150, 1, 0, 0, 640, 480)


def fence(payload: bytes) -> bytes:
    return struct.pack("!B3xIB", 248, 0x80000003, len(payload)) + payload


def xvp() -> bytes:
    return struct.pack("!BxBB", 250, 1, 2)


def setDesktopSize(screens: int) -> bytes:
    head = struct.pack("!BxHHBx", 251, 800, 600, screens)
    return head + b"".join(struct.pack("!IHHHHI", i, 0, 0, 800, 600, 0) for i in range(screens))


def qemuKey(keysym: int, keycode: int, down: bool) -> bytes:
    return struct.pack("!BBHII", 255, 0, int(down), keysym, keycode)


CAPS, REQUEST, PEEK, NOTIFY, PROVIDE = (1 << 24), (1 << 25), (1 << 26), (1 << 27), (1 << 28)

#: Messages that are not input: they always pass, unchanged.
PASSING = [
    setPixelFormat(), setEncodings(0, 1, -223), updateRequest(), continuousUpdates(),
    fence(b""), fence(b"x" * 64), fence(b"y" * 255), xvp(), setDesktopSize(0),
    setDesktopSize(1), setDesktopSize(3),
]

#: Input messages: they pass only while the viewer may send input.
INPUT = [
    keyEvent(0x61, True), keyEvent(0x61, False), pointerEvent(1, 10, 20),
    pointerEvent(0x80, 1, 2), cutText(b""), cutText(b"hello"),
    extendedCutText(CAPS | 1, struct.pack("!I", 1024)), extendedCutText(NOTIFY | 1),
    extendedCutText(REQUEST | 1), extendedCutText(PEEK), extendedCutText(PROVIDE | 1, b"z" * 9),
    qemuKey(0x61, 30, True), qemuKey(0x61, 30, False),
]


class Recorder:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.inputs = 0

    def mayInput(self) -> bool:
        return self.allowed

    def onInput(self) -> None:
        self.inputs += 1


def stream(allowed: bool, handshake: bytes = HANDSHAKE_38) -> tuple[ClientStream, Recorder]:
    policy = Recorder(allowed)
    s = ClientStream(policy.mayInput, policy.onInput)
    assert s.feed(handshake) == handshake
    return s, policy


def feedSplit(s: ClientStream, data: bytes, cuts: list[int]) -> bytes:
    out = b""
    last = 0
    for cut in sorted(cuts) + [len(data)]:
        out += s.feed(data[last:cut])
        last = cut
    return out


class Handshake(SynchronousTestCase):
    def test_versions(self) -> None:
        for handshake in (HANDSHAKE_38, b"RFB 003.007\n\x01\x01", HANDSHAKE_33,
                          b"RFB 003.889\n\x01\x01"):
            s, _ = stream(False, handshake)
            self.assertEqual(s.feed(updateRequest()), updateRequest())
            self.assertEqual(s.feed(keyEvent(0x61, True)), b"")

    def test_33HasNoSecurityChoice(self) -> None:
        """In 3.3 the next byte after the version is ClientInit; then messages."""
        s, _ = stream(False, HANDSHAKE_33)
        self.assertEqual(s.feed(pointerEvent(0, 1, 1)), b"")

    def test_handshakeSplitAnywhere(self) -> None:
        data = HANDSHAKE_38 + keyEvent(0x61, True) + updateRequest()
        for cut in range(len(data) + 1):
            s = ClientStream(lambda: False)
            out = s.feed(data[:cut]) + s.feed(data[cut:])
            self.assertEqual(out, HANDSHAKE_38 + updateRequest(), cut)

    def test_refused(self) -> None:
        for handshake in (b"GET / HTTP/1.1\r\n", b"RFB 004.000\n", b"RFB 003.008\n\x02",
                          b"RFB 003.008\n\x13"):
            with self.assertRaises(RFBError, msg=handshake):
                ClientStream(lambda: True).feed(handshake)


class Messages(SynchronousTestCase):
    def test_everyTypePassesOrDrops(self) -> None:
        """Non-input passes unchanged; input passes only while allowed."""
        for allowed in (True, False):
            for message in PASSING:
                s, policy = stream(allowed)
                self.assertEqual(s.feed(message), message, (allowed, message))
                self.assertEqual(policy.inputs, 0)
            for message in INPUT:
                s, _ = stream(allowed)
                self.assertEqual(s.feed(message), message if allowed else b"", (allowed, message))

    def test_splitAtEveryByte(self) -> None:
        """
        A stream of every message, cut once at every byte boundary (as
        WebSocket frames may cut it), gives the same output as whole.
        """
        for allowed in (True, False):
            messages = PASSING + INPUT
            data = b"".join(messages)
            want = b"".join(m for m in messages if allowed or m in PASSING)
            for cut in range(len(data) + 1):
                s, _ = stream(allowed)
                self.assertEqual(feedSplit(s, data, [cut]), want, (allowed, cut))

    def test_byteByByte(self) -> None:
        for allowed in (True, False):
            messages = PASSING + INPUT
            data = b"".join(messages)
            want = b"".join(m for m in messages if allowed or m in PASSING)
            s, _ = stream(allowed)
            self.assertEqual(b"".join(s.feed(data[i : i + 1]) for i in range(len(data))), want)

    @given(st.lists(st.integers(0, 10_000), max_size=12), st.booleans())
    def test_anySplit(self, cuts: list[int], allowed: bool) -> None:
        messages = PASSING + INPUT
        data = b"".join(messages)
        want = b"".join(m for m in messages if allowed or m in PASSING)
        s, _ = stream(allowed)
        self.assertEqual(feedSplit(s, data, [c % (len(data) + 1) for c in cuts]), want)

    def test_largeCutTextStreams(self) -> None:
        """A long ClientCutText is passed or dropped as it arrives, not held."""
        text = b"t" * 100_000
        for allowed in (True, False):
            s, _ = stream(allowed)
            message = cutText(text)
            out = s.feed(message[:5000])
            self.assertEqual(out, message[:5000] if allowed else b"")
            out += s.feed(message[5000:] + updateRequest())
            self.assertEqual(out, (message if allowed else b"") + updateRequest())

    def test_decisionAtEachMessage(self) -> None:
        """Whether input passes is asked as each message completes."""
        s, policy = stream(False)
        self.assertEqual(s.feed(pointerEvent(0, 5, 5)), b"")
        policy.allowed = True
        self.assertEqual(s.feed(pointerEvent(0, 6, 6)), pointerEvent(0, 6, 6))
        self.assertEqual(policy.inputs, 1)
        self.assertEqual(s.feed(keyEvent(0x61, True)[:3]), b"")
        policy.allowed = False
        self.assertEqual(s.feed(keyEvent(0x61, True)[3:]), b"")

    def test_keyAndPointerTouch(self) -> None:
        s, policy = stream(True)
        s.feed(keyEvent(0x61, True) + keyEvent(0x61, False) + pointerEvent(0, 1, 1)
               + qemuKey(0x61, 30, True) + cutText(b"x") + updateRequest())
        self.assertEqual(policy.inputs, 4)


class Releases(SynchronousTestCase):
    def test_keyPressedWhileAllowedIsReleased(self) -> None:
        s, policy = stream(True)
        s.feed(keyEvent(0xFFE1, True) + qemuKey(0x61, 30, True))
        policy.allowed = False
        self.assertEqual(s.feed(keyEvent(0x62, False)), b"")  # never pressed by it
        self.assertEqual(s.feed(keyEvent(0xFFE1, True)), b"")  # no new press
        self.assertEqual(s.feed(keyEvent(0xFFE1, False)), keyEvent(0xFFE1, False))
        self.assertEqual(s.feed(keyEvent(0xFFE1, False)), b"")  # once
        self.assertEqual(s.feed(qemuKey(0x61, 30, False)), qemuKey(0x61, 30, False))
        self.assertEqual(policy.inputs, 2)

    def test_buttonHeldWhileAllowedIsLifted(self) -> None:
        s, policy = stream(True)
        s.feed(pointerEvent(0b101, 10, 20))
        policy.allowed = False
        self.assertEqual(s.feed(pointerEvent(0b101, 300, 300)), b"")  # no move
        # Button 1 lifted: forwarded where the pointer was, lifting only.
        self.assertEqual(s.feed(pointerEvent(0b100, 300, 300)), pointerEvent(0b100, 10, 20))
        self.assertEqual(s.feed(pointerEvent(0b110, 1, 1)), b"")  # no new press
        self.assertEqual(s.feed(pointerEvent(0, 1, 1)), pointerEvent(0, 10, 20))
        self.assertEqual(s.feed(pointerEvent(0, 1, 1)), b"")


    def test_releasesLetGoOfEverything(self) -> None:
        """
        Told to let go (it lost the right to input, or is going away), the
        stream gives the releases of what it pressed, once.
        """
        s, policy = stream(True)
        s.feed(keyEvent(0xFFE1, True) + qemuKey(0x61, 30, True) + keyEvent(0x62, True)
               + keyEvent(0x62, False) + pointerEvent(0b11, 10, 20))
        policy.allowed = False
        self.assertEqual(
            s.releases(), keyEvent(0xFFE1, False) + qemuKey(0x61, 30, False) + pointerEvent(0, 10, 20)
        )
        self.assertEqual(s.releases(), b"")
        self.assertEqual(s.feed(keyEvent(0xFFE1, False) + pointerEvent(0, 1, 1)), b"")

    def test_releasesWaitForTheEndOfATextPassing(self) -> None:
        """In the middle of a ClientCutText's text, releases come after it."""
        s, policy = stream(True)
        message = cutText(b"0123456789")
        s.feed(keyEvent(0x61, True) + message[:12])
        policy.allowed = False
        self.assertEqual(s.releases(), b"")
        self.assertEqual(s.feed(message[12:] + updateRequest()),
                         message[12:] + keyEvent(0x61, False) + updateRequest())


class Refusals(SynchronousTestCase):
    def test_unknownType(self) -> None:
        for kind in (1, 7, 100, 149, 249, 252, 254):
            s, _ = stream(True)
            with self.assertRaises(RFBError, msg=kind):
                s.feed(bytes((kind,)) + b"\0" * 20)

    def test_unknownTypeAfterMessages(self) -> None:
        s, _ = stream(True)
        self.assertEqual(s.feed(updateRequest()), updateRequest())
        with self.assertRaises(RFBError):
            s.feed(b"\x07")

    def test_unknownQEMUSubtype(self) -> None:
        s, _ = stream(False)
        self.assertEqual(s.feed(b"\xff"), b"")
        with self.assertRaises(RFBError):
            s.feed(b"\x01" + b"\0" * 10)

    def test_badExtendedClipboardLength(self) -> None:
        for length in (0x80000000, -1, -3):
            s, _ = stream(False)
            with self.assertRaises(RFBError, msg=length):
                s.feed(struct.pack("!B3xi" if length < 0 else "!B3xI", 6, length) + b"\0" * 4)

    def test_extendedClipboardTheServerReadsDifferently(self) -> None:
        """
        The server reads only what a caps, request, peek or notify action
        needs: a longer message would hide bytes from us.  Refused when it
        would pass; dropped whole when it would not.
        """
        for message in (
            extendedCutText(NOTIFY | 1, keyEvent(0x61, True)),
            extendedCutText(CAPS | 1, struct.pack("!I", 10) + keyEvent(0x61, True)),
            extendedCutText(CAPS | 3, struct.pack("!I", 10)),
            extendedCutText(1 << 30),
        ):
            s, _ = stream(True)
            with self.assertRaises(RFBError, msg=message):
                s.feed(message)
            s, _ = stream(False)
            self.assertEqual(s.feed(message + updateRequest()), updateRequest())


class Encodings(SynchronousTestCase):
    def test_extendedMouseButtonsRemoved(self) -> None:
        """
        With ExtendedMouseButtons gone, every server reads PointerEvents as
        6 bytes, as we do; the other encodings pass in order.
        """
        s, _ = stream(True)
        out = s.feed(setEncodings(16, EXTENDED_MOUSE_BUTTONS, 0, -223))
        self.assertEqual(out, setEncodings(16, 0, -223))
        self.assertEqual(s.feed(setEncodings(EXTENDED_MOUSE_BUTTONS)), setEncodings())
