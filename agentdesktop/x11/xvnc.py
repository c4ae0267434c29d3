"""
Xvnc's life as a process: its command line, its authority file, and
L{XvncProcess}, which learns the display number Xvnc picked (C{-displayfd})
or why it never did.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from agentdesktop.errors import DesktopError
from agentdesktop.outcome import Outcome
from agentdesktop.process import SupervisedProcess

#: The start of the banner an RFB server sends first.
RFB_BANNER_PREFIX = b"RFB 003."

#: The file descriptor Xvnc writes its display number to.
DISPLAY_FD = 3

_COOKIE_NAME = b"MIT-MAGIC-COOKIE-1"
_FAMILY_LOCAL = 256
_FAMILY_WILD = 0xFFFF


@dataclass(frozen=True)
class XvncOptions:
    """What the Xvnc command line is made of."""

    binary: str
    width: int
    height: int
    depth: int
    xauthority: str
    rfbSocket: str


def xvncArgv(options: XvncOptions) -> list[str]:
    """
    The Xvnc command line: the display chosen by Xvnc and reported on
    L{DISPLAY_FD}, X access by cookie only, RFB on a private unix socket
    with no VNC authentication (the HTTP layer authenticates), and no
    viewer allowed to resize the agent's screen.
    """
    return [
        options.binary,
        "-displayfd", str(DISPLAY_FD),
        "-auth", options.xauthority,
        "-rfbunixpath", options.rfbSocket,
        "-rfbunixmode", "0600",
        "-rfbport", "-1",
        "-SecurityTypes", "None",
        "-AlwaysShared",
        "-AcceptSetDesktopSize=0",
        # Viewers all come from one "host" (the unix socket); Xvnc's
        # blacklist would refuse the fifth one connecting at once.
        "-UseBlacklist=0",
        "-geometry", f"{options.width}x{options.height}",
        "-depth", str(options.depth),
        "-nolisten", "tcp",
        "-desktop", "agentdesktop",
    ]


def _authEntry(family: int, address: bytes, number: bytes, cookie: bytes) -> bytes:
    def counted(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    return (
        struct.pack(">H", family) + counted(address) + counted(number)
        + counted(_COOKIE_NAME) + counted(cookie)
    )


def writeXauthority(path: str, cookie: bytes) -> None:
    """
    Write an X authority file holding COOKIE for any display (FamilyWild,
    empty display number: what Xvnc and libX11 clients use), readable by
    its owner only.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_authEntry(_FAMILY_WILD, b"", b"", cookie))


def addLocalEntry(path: str, cookie: bytes, displayNumber: str) -> None:
    """
    Add an entry for this host's display DISPLAYNUMBER (FamilyLocal, the
    host name) to the authority file at PATH: python-xlib, which the
    service's own connections use, does not read FamilyWild entries.
    """
    entry = _authEntry(
        _FAMILY_LOCAL, socket.gethostname().encode(), displayNumber.encode("ascii"), cookie
    )
    with open(path, "ab") as f:
        f.write(entry)


class XvncProcess(SupervisedProcess):
    """
    One Xvnc.  L{displayReady} fires with the display name (C{":12"}) once
    Xvnc has written its number, or fails with L{DesktopError} carrying the
    end of its standard error when it exits first or takes too long.
    """

    childFDs = {0: "w", 1: "r", 2: "r", DISPLAY_FD: "r"}

    def __init__(self, clock: IReactorTime, startTimeout: float) -> None:
        super().__init__("Xvnc", clock)
        self._number = bytearray()
        self._ready: Outcome[str] = Outcome()
        self._timer = clock.callLater(startTimeout, self._tooSlow)

    def displayReady(self) -> defer.Deferred[str]:
        """@return: C{Deferred[str]}, the display name."""
        return self._ready.wait()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        super().childDataReceived(childFD, data)
        if childFD == DISPLAY_FD and not self._ready.done:
            self._number.extend(data)
            if b"\n" in self._number:
                number = self._number.split(b"\n")[0].decode("ascii", "replace").strip()
                self._fire(f":{number}")

    def _fire(self, result: str | DesktopError) -> None:
        if self._timer.active():
            self._timer.cancel()
        if isinstance(result, DesktopError):
            self._ready.fail(result)
        else:
            self._ready.succeed(result)

    def _tooSlow(self) -> None:
        self._fire(DesktopError("Xvnc did not report its display in time"))
        self.kill()

    def ended(self, reason: BaseException) -> None:
        self._fire(DesktopError("Xvnc exited before its display was ready: " + self.complaint()))

    def complaint(self) -> str:
        """The last few meaningful lines of its standard error."""
        lines = [
            line.strip() for line in self.stderrText().splitlines()
            if line.strip() not in ("", "(EE)") and "warning" not in line.lower()
        ]
        return " / ".join(lines[-3:]) or "no output"


def displayNumber(display: str) -> str:
    """C{":12"} → C{"12"}."""
    return display.rsplit(":", 1)[-1].split(".", 1)[0]


__all__: Sequence[str] = [
    "RFB_BANNER_PREFIX", "XvncOptions", "XvncProcess", "addLocalEntry",
    "displayNumber", "writeXauthority", "xvncArgv",
]
