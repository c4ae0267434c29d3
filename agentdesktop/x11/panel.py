"""
The default desktop (C{--desktop default}): a steel-blue background and a
tint2 panel along the bottom edge with a button for each of a terminal
(xterm), a browser (Chromium) and a text editor (l3afpad), and a task bar.

A button does not start its program itself: tint2 starts a command in a
session of its own, so nothing it started would stop with the desktop.
Each button writes its program's name to a FIFO in the desktop's private
directory (L{PanelRequests}); the desktop starts the program as one of
its launched programs (C{GET /launch} lists them, they get the desktop's
environment and stop with it, and survive the panel).

The parts here: the programs and their command lines (L{panelPrograms},
L{chromiumArgv}), the panel's configuration (L{renderConfig}, from the
C{tint2rc} template beside this module), the FIFO reader, and two
blocking functions for the desktop's X worker threads
(L{paintBackground}, L{panelShown}).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

from twisted.internet import abstract, fdesc
from twisted.logger import Logger
from Xlib import X
from Xlib.error import XError

from agentdesktop.programs import resolveProgram
from agentdesktop.x11.session import XSession

log = Logger()

#: The desktop's background colour (red, green, blue).
BACKGROUND = (0x3B, 0x6E, 0x8F)

#: The panel window's WM_CLASS instance name (tint2 sets it).
PANEL_CLASS = "tint2"

#: The FIFO, in the desktop's private directory, the buttons write to.
REQUESTS_NAME = "panel-requests"

#: A request line longer than this is dropped (the buttons write short names).
MAX_REQUEST = 64


@dataclass(frozen=True)
class PanelProgram:
    """One button: NAME is what it writes to the FIFO, ARGV what starts."""

    name: str
    label: str
    icon: str
    argv: tuple[str, ...]


def chromiumArgv(sandbox: bool, profile: str) -> tuple[str, ...]:
    """
    Chromium's command line on this desktop, with its profile in the
    directory PROFILE: one of the desktop's own, since a Chromium already
    running with the same profile (on another desktop of the same user)
    would take the request and open its window there.  Debian's C{chromium} wrapper
    resets C{CHROMIUM_FLAGS} before reading C{/etc/chromium.d}, so flags go
    on the command line.  No GPU flag is needed: without a GPU (Xvnc has
    none) Chromium renders in software by itself.  C{--no-sandbox} only
    when SANDBOX is false: Chromium's sandbox needs unprivileged user
    namespaces (Debian ships no setuid sandbox helper), which containers'
    seccomp profiles often refuse, and Chromium refuses to run as root
    with its sandbox on.
    """
    argv = ("chromium", f"--user-data-dir={profile}", "--no-first-run", "--password-store=basic")
    return argv if sandbox else (*argv, "--no-sandbox")


def panelPrograms(sandbox: bool, profile: str) -> list[PanelProgram]:
    """
    The buttons, in order (SANDBOX: whether Chromium can use its sandbox;
    PROFILE: Chromium's profile directory).
    """
    return [
        PanelProgram("terminal", "Terminal", "xterm-color",
                     ("xterm", "-fa", "Monospace", "-fs", "11")),
        PanelProgram("browser", "Browser", "chromium", chromiumArgv(sandbox, profile)),
        PanelProgram("editor", "Text editor", "l3afpad", ("l3afpad",)),
    ]


def available(programs: Sequence[PanelProgram], env: Mapping[str, str]) -> list[PanelProgram]:
    """Those of PROGRAMS that are installed (a warning for each that is not)."""
    found = []
    for program in programs:
        try:
            resolveProgram(program.argv[0], env)
        except ValueError as e:
            log.warn("The panel has no {label} button: {error}", label=program.label, error=str(e))
        else:
            found.append(program)
    return found


_BUTTON = Template("""
button = new
button_icon = ${icon}
button_text = ${label}
button_lclick_command = ${command}
button_background_id = 4
button_padding = 8 2 6
button_max_icon_size = 24
button_font = sans 10
button_font_color = #f0f0f0 100
button_centered = 0
""")


def renderConfig(programs: Sequence[PanelProgram], requests: str) -> str:
    """
    The panel's tint2 configuration: a button for each of PROGRAMS that
    writes its name to the FIFO at REQUESTS, then the task bar.
    """
    buttons = "".join(
        _BUTTON.substitute(
            icon=p.icon, label=p.label,
            command=f"echo {p.name} > {shlex.quote(requests)}",
        )
        for p in programs
    )
    template = resources.files(__package__).joinpath("tint2rc").read_text("utf-8")
    return Template(template).substitute(items="P" * len(programs) + "T", buttons=buttons)


class PanelRequests(abstract.FileDescriptor):
    """
    The FIFO the panel's buttons write to, read in the reactor: each line
    is a program's name, handed to RECEIVED.  It is opened for reading and
    writing, so that it never reports end of file and a button's write
    never blocks while the desktop runs.
    """

    def __init__(self, reactor: Any, path: str, received: Callable[[str], None]) -> None:
        super().__init__(reactor)
        self.path = path
        self.received = received
        self.fd = -1
        self._partial = b""

    def open(self) -> None:
        """Make the FIFO (owner only) and start reading it."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.mkfifo(self.path, 0o600)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.startReading()

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> Any:
        return fdesc.readFromFD(self.fd, self._data)

    def _data(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_REQUEST:
            self._partial = b""
        for line in lines:
            name = line.decode("ascii", "replace").strip()
            if name and len(name) <= MAX_REQUEST:
                self.received(name)

    def close(self) -> None:
        """Stop reading, close and remove the FIFO."""
        if self.fd < 0:
            return
        self.stopReading()
        os.close(self.fd)
        self.fd = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


# -- blocking, in the desktop's X worker threads


def paintBackground(session: XSession, rgb: tuple[int, int, int]) -> None:
    """Fill the root window with RGB (any visual: the colour is allocated)."""
    r, g, b = rgb
    pixel = session.screen.default_colormap.alloc_color(r * 257, g * 257, b * 257).pixel
    session.root.change_attributes(background_pixel=pixel)
    session.root.clear_area(0, 0, 0, 0)
    session.display.sync()


def _panelWindows(session: XSession) -> list[Any]:
    """Top-level windows and their children (a window manager frames the panel)."""
    found = []
    for top in session.root.query_tree().children:
        found.append(top)
        try:
            found.extend(top.query_tree().children)
        except XError:
            continue
    return found


def panelShown(session: XSession) -> bool:
    """
    Whether the panel is on the screen: its window is viewable and the
    middle row of its rectangle holds more than one colour (its buttons
    are drawn, not just its window mapped).
    """
    for window in _panelWindows(session):
        try:
            wmClass = window.get_wm_class()
            if not wmClass or wmClass[0] != PANEL_CLASS:
                continue
            if window.get_attributes().map_state != X.IsViewable:
                continue
            geometry = window.get_geometry()
            origin = session.root.translate_coords(window, 0, 0)
            row = session.root.get_image(
                max(0, origin.x), max(0, origin.y + geometry.height // 2), geometry.width, 1,
                X.ZPixmap, 0xFFFFFFFF,
            )
        except XError:
            continue
        size = 4 if row.depth > 16 else 2
        data = bytes(row.data[: geometry.width * size])
        if len({data[i : i + size] for i in range(0, len(data), size)}) > 1:
            return True
    return False
