"""
The one harness of the integration tests: a real desktop (Xvnc on its own
display through -displayfd, its own private directory) behind the real site
on a real port, real clients, and helpers that look at what the X server
saw.  Every process a test starts is stopped by its cleanups.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from PIL import Image, ImageChops
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, error, protocol, reactor, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool
from Xlib import X

from agentdesktop.client import DesktopClient
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

#: The GTK test application, run with the system Python (PyGObject is a
#: Debian package: python3-gi, gir1.2-gtk-3.0).
GTKAPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gtkapp.py")
SYSTEM_PYTHON = "/usr/bin/python3"

T = TypeVar("T")


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


class _Chromium(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.stderr = b""

    def errReceived(self, data: bytes) -> None:
        self.stderr = (self.stderr + data)[-20000:]

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)


class CDP(WebSocketClientProtocol):  # type: ignore[misc]
    """The Chrome DevTools Protocol to one page: C{await call(method, **params)}."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.waiting: dict[int, defer.Deferred[Any]] = {}
        self.nextId = 0

    def onOpen(self) -> None:
        self.opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        message = json.loads(payload)
        d = self.waiting.pop(message.get("id", -1), None)
        if d is not None:
            if "error" in message:
                d.errback(RuntimeError(str(message["error"])))
            else:
                d.callback(message.get("result"))

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionError(reason))
        for d in self.waiting.values():
            d.errback(ConnectionError(reason))
        self.waiting.clear()

    def call(self, method: str, **params: Any) -> defer.Deferred[Any]:
        self.nextId += 1
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting[self.nextId] = d
        self.sendMessage(json.dumps({"id": self.nextId, "method": method, "params": params}).encode())
        return d

    async def evaluate(self, expression: str) -> Any:
        """The value of the JavaScript EXPRESSION in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def mouse(self, kind: str, x: float, y: float, button: str = "none") -> None:
        """A real mouse event (C{mouseMoved}, C{mousePressed}, ...) at page point X, Y."""
        await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button=button,
                        buttons=1 if kind == "mousePressed" else 0,
                        clickCount=1 if button != "none" else 0)

    async def click(self, selector: str) -> None:
        """Click the middle of the element SELECTOR names, with the mouse."""
        rect = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
        )
        x, y = rect[0] + rect[2] / 2, rect[1] + rect[3] / 2
        assert rect[2] > 0 and rect[3] > 0, f"{selector} is not visible"
        await self.mouse("mouseMoved", x, y)
        await self.mouse("mousePressed", x, y, "left")
        await self.mouse("mouseReleased", x, y, "left")


def _kill(process: Any) -> None:
    try:
        process.signalProcess(signal.SIGKILL)
    except error.ProcessExitedAlready:
        pass


class CollectOutput(protocol.ProcessProtocol):
    """Feeds a child its stdin; C{done} fires with (exit code, stdout, stderr)."""

    def __init__(self, stdin: bytes) -> None:
        self.stdin = stdin
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.ended = False
        self.done: defer.Deferred[tuple[int, bytes, bytes]] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: Any) -> None:
        self.ended = True
        if not self.done.called:  # (cancelled when the test timed out)
            self.done.callback((reason.value.exitCode, b"".join(self.out), b"".join(self.err)))


class DesktopTestCase(TestCase):
    """
    Each test starts its own desktop with L{startDesktop}; the desktop, the
    site and every client are torn down after it.
    """

    timeout = 120
    geometry = (1920, 1080)
    windowManager: tuple[str, ...] | None = ("openbox",)
    #: The tests draw on a bare desktop unless they ask for the default one
    #: (C{desktop="default"}: a background and a panel).
    desktopKind = "minimal"

    async def startDesktop(
        self,
        token: str | None = None,
        tls: Any = None,
        recorder: IRecorder | None = None,
        sharing: dict[str, Any] | None = None,
        **config: Any,
    ) -> DesktopInfo:
        """
        Start a desktop and the site on it.  SHARING holds L{makeState}'s
        keyword options (C{controlIdleTimeout}, C{viewerInput},
        C{allowTokenInURL}).
        """
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        extraEnv = dict(UTF8, **config.pop("extraEnv", {}))
        config.setdefault("desktop", self.desktopKind)
        self.desktop = X11Desktop(
            reactor,
            DesktopConfig(
                width=self.geometry[0], height=self.geometry[1],
                windowManager=self.windowManager, runtimeDir=runtime, xvnc=XVNC,
                extraEnv=extraEnv, **config,
            ),
        )
        self.addCleanup(self.desktop.stop)
        self.info = await self.desktop.start()
        self.token = token
        self.state = makeState(self.desktop, reactor, token, recorder, **(sharing or {}))
        self.addCleanup(self.state.control.close)
        self.root = makeRoot(self.state, reactor)
        site = makeSite(self.root)
        if tls is None:
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
        else:
            port = reactor.listenSSL(0, site, tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        scheme = "s" if tls is not None else ""
        self.origin = f"http{scheme}://127.0.0.1:{self.port}"
        self.base = self.origin + "/api/v0/desktop/"
        self.wsURL = f"ws{scheme}://127.0.0.1:{self.port}/api/v0/desktop/vnc"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)
        self.x = session(self.info)
        self.addCleanup(self.x.close)
        return self.info

    # -- HTTP

    def bearer(self) -> dict[str, str]:
        """The Authorization header for the desktop's token, if it has one."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """
        METHOD PATH (under the API prefix) with a JSON BODY; the JSON answer.
        HEADERS default to the bearer token's.
        """
        data = json.dumps(body).encode() if body is not None else None
        if headers is None:
            headers = self.bearer()
        response = await treq.request(
            method, self.base + path, data=data, headers=headers, pool=self.pool
        )
        content = await response.content()
        try:
            return response.code, json.loads(content)
        except ValueError:
            return response.code, content

    def client(self, token: str | None = None) -> DesktopClient:
        """An L{agentdesktop.client.DesktopClient} of the service, on the test's pool."""
        return DesktopClient(f"http://127.0.0.1:{self.port}", token, pool=self.pool, reactor=reactor)

    async def ctl(
        self, *args: str, env: dict[str, str] | None = None, stdin: bytes = b"", script: str | None = None
    ) -> tuple[int, bytes, bytes]:
        """
        Run C{agentdesktop-ctl ARGS} (C{python -m agentdesktop.cli}, or the
        installed SCRIPT) against the service: its exit code, stdout and
        stderr.  C{AGENTDESKTOP_URL} is the service's root unless ENV says
        otherwise; no token comes from the test's own environment.
        """
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENTDESKTOP_")}
        environ.update(UTF8, AGENTDESKTOP_URL=f"http://127.0.0.1:{self.port}", **(env or {}))
        argv = [script, *args] if script else [sys.executable, "-m", "agentdesktop.cli", *args]
        proto = CollectOutput(stdin)
        process = reactor.spawnProcess(proto, argv[0], argv, env=environ)

        async def stop() -> None:
            if not proto.ended:
                process.signalProcess("KILL")
            while not proto.ended:
                await sleep(0.05)

        self.addCleanup(stop)
        return await proto.done

    async def fetch(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, bytes]:
        """METHOD URL (a full URL; no redirects followed): status, headers, body."""
        response = await treq.request(method, url, headers=headers, pool=self.pool,
                                      allow_redirects=False)
        return response.code, response.headers, await response.content()

    async def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """
        GET /metrics (with the token, if any), parsed with
        prometheus_client's parser: (sample name, sorted labels) → value.
        """
        code, _, body = await self.fetch("GET", self.origin + "/metrics", self.bearer())
        self.assertEqual(code, 200, body)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode("utf-8"))
            for s in family.samples
        }

    async def action(self, **body: Any) -> tuple[int, dict[str, Any]]:
        return await self.request("POST", "action", body)

    async def ok(self, **body: Any) -> dict[str, Any]:
        code, out = await self.action(**body)
        self.assertEqual(code, 200, out)
        return out

    async def inAsyncio(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """
        Run COROUTINE to its end on an asyncio event loop of its own, in a
        worker thread: official clients written for asyncio (the C{mcp} SDK)
        talk to the service while the reactor keeps serving it, and neither
        event loop runs inside the other.  Blocking checks (an X connection
        of the thread's own, files) may run inside COROUTINE.
        """
        return await threads.deferToThread(asyncio.run, coroutine)

    # -- programs on the desktop

    def env(self) -> dict[str, str]:
        """What programs on the desktop get (its display, its session bus, ...)."""
        return dict(self.desktop.env, DISPLAY=self.info.display, XAUTHORITY=self.info.xauthority, **UTF8)

    def spawn(
        self, argv: Sequence[str], stdin: str | None = None, quiet: bool = False
    ) -> subprocess.Popen[bytes]:
        """
        Start ARGV on the desktop, in its own process group, killed after the
        test; STDIN names a file to read standard input from; QUIET drops
        what it writes.
        """
        source = open(stdin, "rb") if stdin is not None else None
        output = subprocess.DEVNULL if quiet else None
        try:
            proc = subprocess.Popen(
                list(argv), env=self.env(), start_new_session=True, stdin=source,
                stdout=output, stderr=output,
            )
        finally:
            if source is not None:
                source.close()

        def stop() -> None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

        self.addCleanup(stop)
        return proc

    async def waitForWindow(self, cls: str, title: str | None = None) -> None:
        """
        Wait until a window of class CLS (and TITLE, a regular expression,
        when given) is visible, and focus it.
        """
        match = ["--class", cls] if title is None else ["--name", title]
        out, err, code = await getProcessOutputAndValue(
            "timeout", ["20", "xdotool", "search", "--sync", "--onlyvisible", *match,
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

    async def windowId(self, title: str) -> int:
        """The id of the visible window titled TITLE, once there is one."""
        out, err, code = await getProcessOutputAndValue(
            "timeout", ["20", "xdotool", "search", "--sync", "--onlyvisible", "--name", f"^{title}$"],
            env=self.env(),
        )
        self.assertEqual(code, 0, err)
        return int(out.split()[0])

    async def startGtkApp(self, title: str) -> tuple[subprocess.Popen[bytes], str, int]:
        """
        The GTK test application (L{GTKAPP}) on the desktop: its process,
        the file it reports to, and its window's id once it is shown.
        """
        output = os.path.abspath(self.mktemp())
        open(output, "w").close()
        proc = self.spawn([SYSTEM_PYTHON, GTKAPP, title, output])
        await self.waitForLine(output, "ready")
        return proc, output, await self.windowId(title)

    async def waitForLine(self, path: str, line: str, count: int = 1, timeout: float = 20) -> None:
        """Wait until the file at PATH holds LINE COUNT times."""
        for _ in range(int(timeout / 0.05)):
            if self.lines(path).count(line) >= count:
                return
            await sleep(0.05)
        self.fail(f"{path} has not {count} lines {line!r}: {self.lines(path)}")

    def lines(self, path: str) -> list[str]:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()

    async def tool(self, *argv: str, timeout: int = 20) -> bytes:
        """Run a short X client on the desktop; its standard output (it must succeed)."""
        out, err, code = await getProcessOutputAndValue(
            "timeout", [str(timeout), *argv], env=self.env()
        )
        self.assertEqual(code, 0, (argv, err))
        return out

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
        self, protocols: list[str] | None = None, tls: Any = None, url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[rfbclient.RFBClient, Any]:
        """An RFB client through C{/vnc}, past its handshake."""
        client, proto = await rfbclient.connectWebSocket(
            reactor, url or self.wsURL, protocols, tls, headers
        )
        self.addCleanup(self.closeWebSocket, proto)
        await client.handshake()
        return client, proto

    async def rawViewer(self) -> tuple[rfbclient.RFBClient, Any, Any]:
        """A raw listener (as --vnc-listen makes) and an RFB client through it."""
        from agentdesktop.vnc.listener import vncListenService

        svc = vncListenService("tcp:0:interface=127.0.0.1", self.state, reactor)
        svc.startService()
        self.addCleanup(svc.stopService)
        port = await svc.whenListening()
        client, proto = await rfbclient.connectTCP(reactor, "127.0.0.1", port.getHost().port)
        self.addCleanup(proto.transport.loseConnection)
        await client.handshake()
        return client, proto, svc.factory

    # -- a real browser

    async def startChromium(self) -> CDP:
        """Headless Chromium with a blank page, driven over DevTools; stopped after the test."""
        profile = tempfile.mkdtemp(prefix="agentdesktop-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        chromium = _Chromium()
        argv = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1", "--window-size=1024,768", "about:blank",
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        process = reactor.spawnProcess(chromium, argv[0], argv, env=env)
        self.addCleanup(self.stopChromium, process, chromium)
        portFile = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(portFile):
                with open(portFile) as f:
                    lines = f.read().split("\n")
                if lines and lines[0].strip().isdigit():
                    break
            if chromium.ended.called:
                break
            await sleep(0.05)
        else:
            self.fail("Chromium did not open DevTools: " + chromium.stderr.decode(errors="replace"))
        self.assertFalse(chromium.ended.called, chromium.stderr.decode(errors="replace"))
        return await self._devtools(int(lines[0]))

    async def _devtools(self, port: int) -> CDP:
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = await treq.get(f"http://127.0.0.1:{port}/json/list", pool=pool)
        targets = json.loads(await response.content())
        page = next(t for t in targets if t.get("type") == "page")
        factory = WebSocketClientFactory(page["webSocketDebuggerUrl"], reactor=reactor)
        factory.protocol = CDP
        factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
        cdp = CDP()
        cdp.factory = factory
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), cdp)
        await cdp.opened
        self.addCleanup(lambda: cdp.transport and cdp.transport.loseConnection())
        return cdp

    async def stopChromium(self, process: Any, chromium: _Chromium) -> None:
        if chromium.ended.called:
            return
        try:
            process.signalProcess("TERM")
        except error.ProcessExitedAlready:
            return
        timer = reactor.callLater(10, lambda: chromium.ended.called or _kill(process))
        await chromium.ended
        if timer.active():
            timer.cancel()

    async def waitFor(self, cdp: CDP, expression: str, accept: Any, tries: int = 400) -> Any:
        """Evaluate EXPRESSION in the page until ACCEPT(value); the last value seen."""
        seen: Any = None
        for _ in range(tries):
            seen = await cdp.evaluate(expression)
            if accept(seen):
                return seen
            await sleep(0.05)
        return seen

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
