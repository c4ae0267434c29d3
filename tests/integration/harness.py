"""
The one harness of the integration tests: a real desktop (Xvnc on its own
display through -displayfd, its own private directory) behind the real site
on a real port, real clients, and helpers that look at what the X server
saw.  Every process a test starts is stopped by its cleanups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

import treq
from PIL import Image, ImageChops
from twisted.internet import defer, reactor, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from Xlib import X

from agentdesktop.interfaces import DesktopInfo, IRecorder
from agentdesktop.service import makeState
from agentdesktop.web.resource import makeSite
from agentdesktop.web.root import makeRoot
from agentdesktop.x11 import DesktopConfig, X11Desktop
from agentdesktop.x11.session import XSession
from tests import rfbclient

#: AGENTDESKTOP_XVNC may name a wrapper around Xvnc.
XVNC = os.environ.get("AGENTDESKTOP_XVNC") or "Xvnc"
CHROMIUM = os.environ.get("AGENTDESKTOP_CHROMIUM") or shutil.which("chromium") or "chromium"

UTF8 = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


def session(info: DesktopInfo) -> XSession:
    """A new X connection to the desktop, with its cookie."""
    return XSession(info.display, info.xauthority)


def paintPattern(info: DesktopInfo) -> None:
    """Cover the root window with a noisy pattern (blocking; run in a thread)."""
    x = session(info)
    try:
        w, h = x.size()
        gradient = Image.linear_gradient("L")
        image = Image.merge(
            "RGB",
            (
                gradient.resize((w, h)),
                gradient.rotate(90).resize((w, h)),
                Image.effect_noise((w, h), 80).convert("L"),
            ),
        )
        data = image.tobytes("raw", "BGRX")
        pixmap = x.root.create_pixmap(w, h, x.screen.root_depth)
        gc = pixmap.create_gc()
        rows = max(1, (128 * 1024) // (w * 4))
        for y in range(0, h, rows):
            n = min(rows, h - y)
            pixmap.put_image(gc, 0, y, w, n, X.ZPixmap, x.screen.root_depth, 0,
                             data[y * w * 4 : (y + n) * w * 4])
        x.root.change_attributes(background_pixmap=pixmap)
        x.root.clear_area(0, 0, 0, 0)
        x.display.sync()
    finally:
        x.close()


def paintSolid(info: DesktopInfo, rgb: int) -> None:
    x = session(info)
    try:
        x.root.change_attributes(background_pixel=rgb)
        x.root.clear_area(0, 0, 0, 0)
        x.display.sync()
    finally:
        x.close()


def grab(info: DesktopInfo) -> Image.Image:
    x = session(info)
    try:
        return x.grab()
    finally:
        x.close()


class DesktopTestCase(TestCase):
    """
    Each test starts its own desktop with L{startDesktop}; the desktop, the
    site and every client are torn down after it.
    """

    timeout = 120
    geometry = (1920, 1080)
    windowManager: tuple[str, ...] | None = ("openbox",)

    async def startDesktop(
        self,
        token: str | None = None,
        tls: Any = None,
        recorder: IRecorder | None = None,
        **config: Any,
    ) -> DesktopInfo:
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        self.desktop = X11Desktop(
            reactor,
            DesktopConfig(
                width=self.geometry[0], height=self.geometry[1],
                windowManager=self.windowManager, runtimeDir=runtime, xvnc=XVNC,
                extraEnv=dict(UTF8), **config,
            ),
        )
        self.addCleanup(self.desktop.stop)
        self.info = await self.desktop.start()
        self.state = makeState(self.desktop, reactor, token, recorder)
        self.root = makeRoot(self.state, reactor)
        site = makeSite(self.root)
        if tls is None:
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
        else:
            port = reactor.listenSSL(0, site, tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        scheme = "s" if tls is not None else ""
        self.base = f"http{scheme}://127.0.0.1:{self.port}/api/v0/desktop/"
        self.wsURL = f"ws{scheme}://127.0.0.1:{self.port}/api/v0/desktop/vnc"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.x = session(self.info)
        self.addCleanup(self.x.close)
        return self.info

    # -- HTTP

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """METHOD PATH (under the API prefix) with a JSON BODY; the JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(
            method, self.base + path, data=data, headers=headers, pool=self.pool
        )
        content = await response.content()
        try:
            return response.code, json.loads(content)
        except ValueError:
            return response.code, content

    async def action(self, **body: Any) -> tuple[int, dict[str, Any]]:
        return await self.request("POST", "action", body)

    async def ok(self, **body: Any) -> dict[str, Any]:
        code, out = await self.action(**body)
        self.assertEqual(code, 200, out)
        return out

    # -- programs on the desktop

    def env(self) -> dict[str, str]:
        return dict(os.environ, DISPLAY=self.info.display, XAUTHORITY=self.info.xauthority, **UTF8)

    def spawn(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start ARGV on the desktop, in its own process group, killed after the test."""
        proc = subprocess.Popen(list(argv), env=self.env(), start_new_session=True)

        def stop() -> None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

        self.addCleanup(stop)
        return proc

    async def waitForWindow(self, cls: str) -> None:
        """Wait until a window of class CLS is visible, and focus it."""
        out, err, code = await getProcessOutputAndValue(
            "timeout", ["20", "xdotool", "search", "--sync", "--onlyvisible", "--class", cls,
                        "windowactivate"], env=self.env(),
        )
        self.assertEqual(code, 0, err)

    async def catTerminal(self, geometry: str = "120x20+0+0", raw: bool = False) -> str:
        """
        An xterm whose keyboard input goes to a file (C{cat > FILE}), focused;
        RAW puts its terminal in raw mode first, so the file holds every
        byte the keys sent (control keys, BackSpace) rather than edited lines.
        @return: the file's path.
        """
        path = os.path.abspath(self.mktemp())
        open(path, "wb").close()
        command = f"cat > '{path}'"
        if raw:
            command = "stty raw -echo; " + command
        self.spawn(["xterm", "-u8", "-geometry", geometry, "-e", "sh", "-c", command])
        await self.waitForWindow("XTerm")
        return path

    async def waitForContent(self, path: str, expected: bytes, seconds: float = 10) -> bytes:
        """The file's content once it is at least as long as EXPECTED (or the time is up)."""
        for _ in range(int(seconds / 0.05)):
            with open(path, "rb") as f:
                data = f.read()
            if len(data) >= len(expected):
                return data
            await sleep(0.05)
        return data

    def primary(self) -> bytes:
        """The PRIMARY selection, as C{xclip -o} reads it."""
        return subprocess.run(
            ["xclip", "-o", "-selection", "primary"], env=self.env(), capture_output=True,
            timeout=10,
        ).stdout

    # -- what the X server sees

    def pointerMask(self) -> int:
        return int(self.x.root.query_pointer().mask)

    def pressedKeycodes(self) -> list[int]:
        keymap = self.x.display.query_keymap()
        return [i * 8 + b for i, bits in enumerate(keymap) for b in range(8) if bits & (1 << b)]

    def assertNothingPressed(self) -> None:
        buttons = X.Button1Mask | X.Button2Mask | X.Button3Mask | X.Button4Mask | X.Button5Mask
        self.assertEqual(self.pressedKeycodes(), [])
        self.assertEqual(self.pointerMask() & buttons, 0)

    async def assertNothingPressedSoon(self, seconds: float = 2) -> None:
        """
        L{assertNothingPressed} once pending releases are through: openbox
        grabs buttons on the windows it manages synchronously, so the X
        server may apply a click's release (already sent) up to a few
        hundred milliseconds later (measured here: up to about 250 ms).
        """
        buttons = X.Button1Mask | X.Button2Mask | X.Button3Mask | X.Button4Mask | X.Button5Mask
        for _ in range(int(seconds / 0.02)):
            if self.pointerMask() & buttons == 0 and not self.pressedKeycodes():
                break
            await sleep(0.02)
        self.assertNothingPressed()

    def assertSameImage(self, got: Image.Image, want: Image.Image) -> None:
        self.assertEqual(got.size, want.size)
        self.assertIsNone(ImageChops.difference(got.convert("RGB"), want).getbbox())

    # -- VNC viewers

    async def viewer(
        self, protocols: list[str] | None = None, tls: Any = None, url: str | None = None
    ) -> tuple[rfbclient.RFBClient, Any]:
        """An RFB client through C{/vnc}, past its handshake."""
        client, proto = await rfbclient.connectWebSocket(reactor, url or self.wsURL, protocols, tls)
        self.addCleanup(self.closeWebSocket, proto)
        await client.handshake()
        return client, proto

    async def rawViewer(self) -> tuple[rfbclient.RFBClient, Any, Any]:
        """A raw listener (as --vnc-listen makes) and an RFB client through it."""
        from agentdesktop.vnc.listener import vncListenService

        svc = vncListenService("tcp:0:interface=127.0.0.1", self.state, reactor)
        svc.startService()
        self.addCleanup(svc.stopService)
        port = await svc._waitingForPort  # type: ignore[attr-defined]
        client, proto = await rfbclient.connectTCP(reactor, "127.0.0.1", port.getHost().port)
        self.addCleanup(proto.transport.loseConnection)
        await client.handshake()
        return client, proto, svc.factory  # type: ignore[attr-defined]

    async def closeWebSocket(self, proto: Any) -> None:
        if proto.transport is not None and proto.state != proto.STATE_CLOSED:
            proto.transport.abortConnection()
        await proto.closedWith

    async def fullUpdate(self, client: rfbclient.RFBClient) -> Image.Image:
        client.requestUpdate(incremental=False)
        rects = await client.readUpdate()
        covered = sum(w * h for _, _, w, h in rects)
        self.assertGreaterEqual(covered, client.width * client.height)
        return client.image()


class EventWindow:
    """
    An X client of the test's own: a borderless window (no window manager
    involved) over RECT that records the pointer and button events the X
    server delivers to it, with the modifier state of each.
    """

    def __init__(self, info: DesktopInfo, rect: tuple[int, int, int, int]) -> None:
        self.x = session(info)
        x, y, w, h = rect
        self.window = self.x.root.create_window(
            x, y, w, h, 0, self.x.screen.root_depth,
            background_pixel=self.x.screen.white_pixel, override_redirect=True,
            event_mask=X.ButtonPressMask | X.ButtonReleaseMask | X.PointerMotionMask,
        )
        self.window.map()
        self.x.display.sync()

    def events(self) -> list[tuple[str, int, int, int, int]]:
        """(kind, detail, x, y, state) for every event since the last call."""
        self.x.display.sync()
        out = []
        while self.x.display.pending_events():
            e = self.x.display.next_event()
            kind = {X.ButtonPress: "press", X.ButtonRelease: "release",
                    X.MotionNotify: "motion"}.get(e.type)
            if kind is not None:
                out.append((kind, e.detail, e.root_x, e.root_y, e.state))
        return out

    def close(self) -> None:
        self.window.destroy()
        self.x.close()
