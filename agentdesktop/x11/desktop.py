"""
The X11 desktop: Xvnc (X server and VNC server in one), a window manager,
the default desktop's background and panel, autostart commands, input
through xdotool and XTEST, screen grabs through python-xlib.  One
L{X11Desktop} owns every process it starts; the processes' lives are
L{XvncProcess} and L{SupervisedProcess}, the desktop keeps the policy (when
to start, restart, and what a failure means).
"""

from __future__ import annotations

import os
import secrets
import time
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from twisted.internet import defer, protocol
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from agentdesktop.accessibility.client import AtspiClient, Limits
from agentdesktop.accessibility.model import decodeNodeId
from agentdesktop.accessibility.stack import (
    AccessibilityConfig,
    AccessibilityStack,
    desktopEnvironment,
)
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import (
    MAX_CLIPBOARD_BYTES,
    WINDOW_VERBS,
    AccessibleNode,
    DesktopInfo,
    IDesktop,
    Launched,
    LaunchResult,
    Settled,
    WindowInfo,
)
from agentdesktop.outcome import Outcome
from agentdesktop.process import SupervisedProcess, runTool
from agentdesktop.programs import checkOpenTarget, resolveProgram
from agentdesktop.x11 import clientwindow
from agentdesktop.x11 import panel as xpanel
from agentdesktop.x11 import session as xsession
from agentdesktop.x11 import windows as xwindows
from agentdesktop.x11.damage import DamageWatcher, waitForQuiet
from agentdesktop.x11.launcher import Launcher
from agentdesktop.x11.selection import SelectionOwner, readSelection, selectionAtomName
from agentdesktop.x11.worker import XWorker
from agentdesktop.x11.xdotool import XdotoolProcess, literal
from agentdesktop.x11.xvnc import (
    RFB_BANNER_PREFIX,
    XvncOptions,
    XvncProcess,
    addLocalEntry,
    displayNumber,
    writeXauthority,
    xvncArgv,
)

log = Logger()
T = TypeVar("T")

#: The kinds of desktop (C{--desktop}): a background and a panel with a
#: terminal, a browser and an editor; or the bare window manager.
DESKTOPS = ("default", "minimal")

#: Whether we run as root (Chromium's sandbox is then out); tests replace it.
geteuid = os.geteuid


@dataclass
class DesktopConfig:
    """How to run the desktop; the defaults are the service's."""

    width: int = 1920
    height: int = 1080
    depth: int = 24
    windowManager: Sequence[str] | None = ("openbox",)
    autostart: Sequence[Sequence[str]] = ()
    xvnc: str = "Xvnc"
    xdotool: str = "xdotool"
    #: The desktop's D-Bus session bus and AT-SPI bus launcher.
    dbusDaemon: str = "dbus-daemon"
    atspiBusLauncher: str = "/usr/libexec/at-spi-bus-launcher"
    xdgOpen: str = "xdg-open"
    #: Send input commands to one long-lived C{xdotool -} (else: one
    #: xdotool process per action).
    xdotoolChannel: bool = True
    #: How long a click may wait for the applications to see its release.
    releaseWait: float = 1.0
    #: C{"default"}: a background and a panel; C{"minimal"}: neither.
    desktop: str = "default"
    #: The default desktop's panel, and what probes for user namespaces.
    tint2: str = "tint2"
    unshare: str = "unshare"
    runtimeDir: str | None = None
    startTimeout: float = 20.0
    toolTimeout: float = 10.0
    stopGrace: float = 5.0
    #: How long to wait for the window manager to announce itself.
    wmTimeout: float = 5.0
    #: How long to wait for the default desktop's panel to show.
    panelTimeout: float = 5.0
    #: How long a clipboard read waits for the owner's answer (each step).
    clipboardTimeout: float = 5.0
    extraEnv: dict[str, str] = field(default_factory=dict)


class _BannerProtocol(protocol.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= 12 and not self.done.called:
            self.done.callback(self.buf[:12])
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.done.called:
            self.done.errback(DesktopError("VNC socket closed before its banner"))


class XConnections:
    """
    The service's own connections to the desktop: X connections each in
    its own worker thread (input, the screen, windows, clipboard reads),
    the selection owner's thread and connection, and the RFB banner check.
    Tests replace it (L{agentdesktop.testing.FakeXConnections}).
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.workers = {
            lane: XWorker(reactor, f"agentdesktop-{lane}")
            for lane in ("input", "screen", "windows", "clipboard")
        }
        self.watcher: DamageWatcher | None = None
        self.owner: SelectionOwner | None = None

    def start(self, info: DesktopInfo) -> None:
        """Start the workers, and watching INFO's screen for changes."""
        for worker in self.workers.values():
            worker.start()
        self._stopWatching()
        self.watcher = DamageWatcher(info.display, info.xauthority)
        self.watcher.start()

    def stop(self) -> defer.Deferred[None]:
        """Stop every thread; fires once the selection owner's has ended."""
        for worker in self.workers.values():
            worker.stop()
        self._stopWatching()
        owner, self.owner = self.owner, None
        return owner.stop() if owner is not None else defer.succeed(None)

    def _stopWatching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def lastChange(self) -> float:
        """When (C{time.monotonic()}) the screen last changed, or 0."""
        return self.watcher.lastChange if self.watcher is not None else 0.0

    def own(self, key: object, info: DesktopInfo, selection: str, text: str) -> defer.Deferred[None]:
        """
        Own SELECTION with TEXT on INFO's display, through the selection
        owner of the X server's life KEY (started on first use).
        """
        owner = self.owner
        if owner is None or owner.key is not key or not owner.alive:
            if owner is not None:
                owner.stop()
            owner = self.owner = SelectionOwner(self.reactor, info.display, info.xauthority, key)
            owner.start()
        return owner.own(selection, text)

    def call(
        self, lane: str, key: object, info: DesktopInfo, f: Callable[..., T], *args: Any
    ) -> defer.Deferred[T]:
        """
        C{f(session, *args)} on LANE's connection (C{"input"},
        C{"screen"}, C{"windows"} or C{"clipboard"}) to INFO's display; KEY
        names the X server's life.
        """
        return self.workers[lane].run(key, info.display, info.xauthority, f, *args)

    async def banner(self, path: str) -> bytes:
        """The first 12 bytes the RFB socket at PATH sends."""
        last: BaseException | None = None
        for _ in range(40):
            proto = _BannerProtocol()
            try:
                await connectProtocol(UNIXClientEndpoint(self.reactor, path), proto)
                return await proto.done
            except Exception as e:
                last = e
                await deferLater(self.reactor, 0.05, lambda: None)
        raise DesktopError(f"VNC socket did not answer: {last}")


@implementer(IDesktop)
class X11Desktop:
    """
    A desktop made of real processes.  C{start()} is idempotent, shares one
    start among concurrent callers, and after Xvnc died starts a fresh one.
    """

    def __init__(
        self, reactor: Any, config: DesktopConfig, x: Any = None, a11yWorker: Any = None
    ) -> None:
        self.reactor = reactor
        self.config = config
        self.info: DesktopInfo | None = None
        self._xvnc: XvncProcess | None = None
        self._wm: SupervisedProcess | None = None
        self._panel: SupervisedProcess | None = None
        self._requests: xpanel.PanelRequests | None = None
        self._programs: dict[str, xpanel.PanelProgram] = {}
        self._sandbox: bool | None = None
        self._autostart: list[SupervisedProcess] = []
        self._xdotool: XdotoolProcess | None = None
        self._starting: Outcome[DesktopInfo] | None = None
        self._stopping = False
        self._dir: str | None = None
        self.x: XConnections = x if x is not None else XConnections(reactor)
        self._env: dict[str, str] = {}
        self.a11y = AccessibilityStack(
            reactor,
            AccessibilityConfig(config.dbusDaemon, config.atspiBusLauncher, stopGrace=config.stopGrace),
            a11yWorker,
        )
        self._launcher = Launcher(reactor, lambda: self._env, self.windows)
        self.restarted: list[Callable[[str], None]] = []

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self.info is not None and self._xvnc is not None and not self._xvnc.exited

    @property
    def env(self) -> dict[str, str]:
        """The environment of programs on this desktop (DISPLAY, XAUTHORITY, ...)."""
        return dict(self._env)

    def _restarting(self, part: str) -> None:
        for hook in list(self.restarted):
            try:
                hook(part)
            except Exception:
                log.failure("A restart hook failed")

    def _wmNeeded(self) -> bool:
        return bool(self.config.windowManager) and (self._wm is None or self._wm.exited)

    def _panelNeeded(self) -> bool:
        return self.config.desktop == "default" and (self._panel is None or self._panel.exited)

    def start(self) -> defer.Deferred[DesktopInfo]:
        if self._stopping:
            return defer.fail(DesktopError("the desktop is shutting down"))
        if self.running and not self._wmNeeded() and not self._panelNeeded():
            assert self.info is not None
            return defer.succeed(self.info)
        starting = self._starting
        if starting is None:
            starting = self._starting = Outcome()
            d = defer.Deferred.fromCoroutine(self._start())
            d.addBoth(self._startEnded)
            starting.run(d)
        return starting.wait()

    def _startEnded(self, result: DesktopInfo | Failure) -> DesktopInfo | Failure:
        self._starting = None
        if isinstance(result, Failure):
            log.failure("Desktop failed to start", result)
            if not result.check(DesktopError):
                return Failure(DesktopError(result.getErrorMessage() or repr(result.value)))
        return result

    async def _start(self) -> DesktopInfo:
        fresh = not self.running
        if fresh:
            await self._startX()
        if self._wmNeeded():
            if self._wm is not None:
                log.info("Window manager exited; starting it again")
                self._restarting("window_manager")
            assert self.config.windowManager
            self._wm = self._spawn("window manager", self.config.windowManager)
            await self._waitForWM()
        if self._panelNeeded():
            await self._startPanel(fresh)
        if fresh:
            # After the window manager, so that their windows are managed.
            for command in self.config.autostart:
                self._spawn("autostart", command, into=self._autostart)
        assert self.info is not None
        return self.info

    def _makeDir(self) -> str:
        if self._dir is None or not os.path.isdir(self._dir):
            base = self.config.runtimeDir or os.environ.get("XDG_RUNTIME_DIR")
            if not base or not os.access(base, os.W_OK):
                base = None
            self._dir = tempfile.mkdtemp(prefix="agentdesktop-", dir=base)
            if len(self._dir) > 90:
                # A unix socket path must fit in 108 bytes.
                os.rmdir(self._dir)
                self._dir = tempfile.mkdtemp(prefix="agentdesktop-")
            os.chmod(self._dir, 0o700)
        return self._dir

    async def _startX(self) -> None:
        if self._xvnc is not None:
            log.warn("Xvnc had exited; starting a fresh desktop")
            self._restarting("desktop")
            await self._stopChildren()
        self.info = None
        cfg = self.config
        directory = self._makeDir()
        xauth = os.path.join(directory, "Xauthority")
        rfb = os.path.join(directory, "rfb.sock")
        if os.path.exists(rfb):
            os.unlink(rfb)
        cookie = secrets.token_bytes(16)
        writeXauthority(xauth, cookie)
        env = self._baseEnv()
        xvnc = XvncProcess(self.reactor, cfg.startTimeout)
        argv = xvncArgv(XvncOptions(cfg.xvnc, cfg.width, cfg.height, cfg.depth, xauth, rfb))
        try:
            xvnc.spawn(self.reactor, argv, env)
        except OSError as e:
            raise DesktopError(f"cannot run {cfg.xvnc}: {e}") from None
        self._xvnc = xvnc
        display = await xvnc.displayReady()
        try:
            addLocalEntry(xauth, cookie, displayNumber(display))
            self._env = dict(env, DISPLAY=display, XAUTHORITY=xauth)
            banner = await self.x.banner(rfb)
            if not banner.startswith(RFB_BANNER_PREFIX):
                raise DesktopError(f"unexpected VNC banner {banner!r}")
            provisional = DesktopInfo(display, xauth, rfb, cfg.width, cfg.height)
            self.x.start(provisional)
            width, height = await self.x.call("screen", xvnc, provisional, xsession.XSession.size)
        except BaseException:
            await xvnc.kill()
            raise
        self.info = DesktopInfo(display, xauth, rfb, width, height)
        xvnc.whenEnded().addCallback(self._xvncEnded, xvnc)
        # Before the window manager and autostart, which get its address.
        await self.a11y.start(directory, self._env)
        self._env = desktopEnvironment(self._env, self.a11y.address)
        log.info(
            "Desktop {display} is up ({width}x{height}), VNC on {rfb}",
            display=display, width=width, height=height, rfb=rfb,
        )

    def _baseEnv(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
        env.update(self.config.extraEnv)
        return env

    def _spawn(
        self, name: str, argv: Sequence[str], into: list[SupervisedProcess] | None = None
    ) -> SupervisedProcess | None:
        """
        Start a long-lived program on the desktop, kept in INTO while it
        runs; log when it ends.
        """
        child = SupervisedProcess(name, self.reactor)
        try:
            child.spawn(self.reactor, argv, self._env)
        except OSError as e:
            log.error("Cannot run {name} {argv}: {error}", name=name, argv=list(argv), error=e)
            return None
        if into is not None:
            into.append(child)

        def ended(reason: BaseException) -> None:
            if into is not None and child in into:
                into.remove(child)
            if not self._stopping:
                log.info("{name} {argv} exited: {reason}", name=name, argv=list(argv),
                         reason=str(reason))

        child.whenEnded().addCallback(ended)
        return child

    async def _waitUntil(
        self, child: SupervisedProcess | None, check: Callable[..., bool], timeout: float
    ) -> bool:
        """
        Poll CHECK (on the screen's X connection) until it holds (C{True}),
        CHILD has exited or TIMEOUT seconds went by (C{False}).
        """
        assert self.info is not None
        for _ in range(max(1, int(timeout / 0.05))):
            if child is None or child.exited:
                return False
            if await self.x.call("screen", self._xvnc, self.info, check):
                return True
            await deferLater(self.reactor, 0.05, lambda: None)
        return False

    async def _waitForWM(self) -> None:
        """
        Wait (briefly) until the window manager has announced itself, so the
        first windows are managed and focusable; a WM that never announces
        itself is used anyway.
        """
        wm = self._wm
        announced = await self._waitUntil(
            wm, xsession.XSession.hasWindowManager, self.config.wmTimeout
        )
        if not announced and wm is not None and not wm.exited:
            log.warn("The window manager did not announce itself within {s} s",
                     s=self.config.wmTimeout)

    # -- the default desktop: background and panel

    async def _startPanel(self, fresh: bool) -> None:
        """
        Paint the background (on a fresh display), then start the panel and
        wait until it shows, so the first screenshot has it.
        """
        assert self.info is not None
        if fresh:
            await self.x.call("screen", self._xvnc, self.info, xpanel.paintBackground,
                              xpanel.BACKGROUND)
        elif self._panel is not None:
            log.info("The panel exited; starting it again")
        config = await self._writePanelConfig()
        panel = self._panel = self._spawn("panel", [self.config.tint2, "-c", config])
        shown = await self._waitUntil(panel, xpanel.panelShown, self.config.panelTimeout)
        if not shown and panel is not None and not panel.exited:
            log.warn("The panel did not show within {s} s", s=self.config.panelTimeout)

    async def _writePanelConfig(self) -> str:
        """Write the panel's configuration into the private directory; its path."""
        directory = self._makeDir()
        path = os.path.join(directory, xpanel.REQUESTS_NAME)
        if self._requests is not None and not os.path.exists(path):
            self._requests.close()
            self._requests = None
        if self._requests is None:
            self._requests = xpanel.PanelRequests(self.reactor, path, self._panelRequest)
            self._requests.open()
        if self._sandbox is None:
            self._sandbox = await self._chromiumSandbox()
        profile = os.path.join(directory, "chromium")
        programs = xpanel.available(xpanel.panelPrograms(self._sandbox, profile), self._env)
        self._programs = {p.name: p for p in programs}
        config = os.path.join(directory, "tint2rc")
        with open(config, "w", encoding="utf-8") as f:
            f.write(xpanel.renderConfig(programs, self._requests.path))
        return config

    async def _chromiumSandbox(self) -> bool:
        """
        Whether Chromium can use its sandbox here: not as root, and only
        where unprivileged user namespaces work (probed with C{unshare}).
        """
        if geteuid() == 0:
            log.info("Running as root: the panel's browser runs without Chromium's sandbox")
            return False
        probe = [self.config.unshare, "--user", "--pid", "--net", "--fork", "true"]
        try:
            await runTool(self.reactor, self.reactor, probe, self._env, self.config.toolTimeout)
        except DesktopError as e:
            log.info("No user namespaces ({error}): the panel's browser runs without "
                     "Chromium's sandbox", error=str(e))
            return False
        return True

    def _panelRequest(self, name: str) -> None:
        """A panel button was clicked: start its program, as a launched program."""
        program = self._programs.get(name)
        if program is None or not self.running:
            log.warn("Ignored a request from the panel for {name!r}", name=name)
            return
        home = self._env.get("HOME")
        try:
            self._launcher.start("panel", program.argv, home if home and os.path.isdir(home) else None)
        except DesktopError as e:
            log.error("The panel's {label} button: {error}", label=program.label, error=str(e))

    def _xvncEnded(self, reason: BaseException, xvnc: XvncProcess) -> None:
        if self._stopping or xvnc is not self._xvnc:
            return
        log.warn(
            "Xvnc exited ({reason}); the next request starts a fresh desktop",
            reason=str(reason),
        )
        self.info = None
        for child in [self._wm, self._panel, *self._autostart, self._xdotool]:
            if child is not None:
                child.terminate(self.config.stopGrace)
        self.a11y.stop()
        self._launcher.stopAll(self.config.stopGrace)

    async def _stopChildren(self) -> None:
        children = [
            c for c in [*self._autostart, self._panel, self._wm, self._xdotool, self._xvnc]
            if c is not None
        ]
        stopping: list[defer.Deferred[Any]] = [c.terminate(self.config.stopGrace) for c in children]
        stopping.append(self.a11y.stop())
        stopping.append(self._launcher.stopAll(self.config.stopGrace))
        await defer.gatherResults(stopping)
        self._autostart = []
        self._panel = None
        self._wm = None
        self._xdotool = None
        self._xvnc = None

    def stop(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self._stopping = True
        if self.running:
            try:
                await self.releaseAll()
            except Exception:
                log.failure("Releasing keys and buttons at shutdown failed")
        # Our own connections go first, so that none sees Xvnc vanish.
        connections = defer.maybeDeferred(self.x.stop)
        await self._stopChildren()
        await connections
        self.info = None
        if self._requests is not None:
            self._requests.close()
            self._requests = None
        self.a11y.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- input

    def _require(self) -> DesktopInfo:
        if self.info is None or not self.running:
            raise DesktopError("the desktop is not running")
        return self.info

    def xdotool(self, *args: str) -> defer.Deferred[bytes]:
        """Run one xdotool invocation on this desktop."""
        try:
            self._require()
        except DesktopError as e:
            return defer.fail(e)
        return runTool(
            self.reactor, self.reactor, [self.config.xdotool, *args],
            self._env, self.config.toolTimeout,
        )

    def _xdo(self, *args: Any) -> defer.Deferred[None]:
        argv = [str(a) for a in args]
        if self.config.xdotoolChannel and literal(argv):
            try:
                channel = self._channel()
            except DesktopError as e:
                return defer.fail(e)
            return channel.run(argv)
        return self.xdotool(*argv).addCallback(lambda _: None)

    def _channel(self) -> XdotoolProcess:
        """This X server's long-lived xdotool; a fresh one if it died or hung."""
        self._require()
        if self._xdotool is None or not self._xdotool.usable:
            if self._xdotool is not None:
                self._xdotool.terminate(self.config.stopGrace)
            child = XdotoolProcess(self.reactor, self.config.toolTimeout)
            try:
                child.start(self.reactor, self.config.xdotool, self._env)
            except OSError as e:
                raise DesktopError(f"cannot run xdotool: {e}") from None
            self._xdotool = child
        return self._xdotool

    def _holding(self, modifiers: Sequence[str], args: list[Any]) -> defer.Deferred[None]:
        """Run xdotool ARGS in one invocation, with MODIFIERS held around them."""
        combo = "+".join(modifiers)
        if combo:
            args = ["keydown", "--delay", "0", combo, *args, "keyup", "--delay", "0", combo]
        return self._xdo(*args)

    def move(self, x: int, y: int, modifiers: Sequence[str] = ()) -> defer.Deferred[None]:
        return self._holding(modifiers, ["mousemove", x, y])

    def click(
        self, x: int, y: int, button: int, count: int, modifiers: Sequence[str]
    ) -> defer.Deferred[None]:
        # Multi-clicks need a gap to register as one double/triple click
        # (xterm saw --delay 0 triple clicks 5 times in 12, --delay 1 12/12).
        delay = "1" if count > 1 and button < 4 else "0"
        return self._released(button, self._holding(
            modifiers, ["mousemove", x, y, "click", "--repeat", count, "--delay", delay, button]
        ))

    def _released(self, button: int, d: defer.Deferred[None]) -> defer.Deferred[None]:
        """
        D, then (bounded) until the applications have BUTTON's release: the
        answer must not come before the click's effect can.
        """
        mask = xsession.BUTTON_MASKS.get(button)
        if mask is None:
            return d

        def wait(_: None) -> defer.Deferred[None]:
            waited = self._onX("input", xsession.XSession.waitReleased, mask,
                               self.config.releaseWait)
            return waited.addCallback(lambda _: None)

        return d.addCallback(wait)

    def buttonDown(self, button: int) -> defer.Deferred[None]:
        return self._xdo("mousedown", button)

    def buttonUp(self, button: int) -> defer.Deferred[None]:
        return self._released(button, self._xdo("mouseup", button))

    def drag(
        self, path: Sequence[tuple[int, int]], modifiers: Sequence[str] = ()
    ) -> defer.Deferred[None]:
        (x0, y0), rest = path[0], path[1:]
        args: list[Any] = ["mousemove", x0, y0, "mousedown", 1]
        for x, y in rest:
            args += ["mousemove", x, y]
        d = self._released(1, self._holding(modifiers, [*args, "mouseup", 1]))

        def release(f: Failure) -> defer.Deferred[None]:
            return self.releaseAll().addBoth(lambda _: f)

        return d.addErrback(release)

    def keys(self, combos: Sequence[Sequence[str]]) -> defer.Deferred[None]:
        return self._xdo("key", "--delay", "0", *("+".join(c) for c in combos))

    def keyDown(self, combo: Sequence[str]) -> defer.Deferred[None]:
        return self._xdo("keydown", "--delay", "0", "+".join(combo))

    def keyUp(self, combo: Sequence[str]) -> defer.Deferred[None]:
        return self._xdo("keyup", "--delay", "0", "+".join(combo))

    def _onX(self, lane: str, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        try:
            info = self._require()
        except DesktopError as e:
            return defer.fail(e)

        def wrap(failure: Failure) -> Failure:
            if failure.check(DesktopError, ValueError, LookupError):
                return failure
            return Failure(DesktopError(f"X request failed: {failure.getErrorMessage()}"))

        return self.x.call(lane, self._xvnc, info, f, *args).addErrback(wrap)

    def typeText(self, text: str) -> defer.Deferred[None]:
        return self._onX("input", xsession.typeText, text).addCallback(self._typed)

    def _typed(self, remapped: bool) -> None:
        # xdotool reads the keyboard map when it starts: after typing bound
        # keycodes, the next command gets an xdotool that knows them.
        if remapped and self._xdotool is not None:
            self._xdotool.terminate(self.config.stopGrace)
            self._xdotool = None

    def pointer(self) -> defer.Deferred[tuple[int, int]]:
        return self._onX("input", xsession.XSession.pointer)

    def releaseAll(self) -> defer.Deferred[None]:
        return self._onX("input", xsession.XSession.releaseAll)

    def settle(self, settleMs: int, timeoutMs: int) -> defer.Deferred[Settled]:
        return waitForQuiet(self.reactor, time.monotonic, self.x.lastChange, settleMs, timeoutMs)

    def screenshot(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        format: str,
        quality: int | None,
    ) -> defer.Deferred[bytes]:
        return self._onX("screen", xsession.screenshot, region, size, format, quality)

    # -- accessibility

    async def _accessible(self) -> None:
        """Restart what of the accessibility stack died (its reason stays when it cannot)."""
        self._require()
        if not self.a11y.running:
            await self.a11y.start(self._makeDir(), self._env)

    def accessibilityTree(
        self, windowId: int | None, maxDepth: int, nodeId: str | None
    ) -> defer.Deferred[AccessibleNode]:
        return defer.Deferred.fromCoroutine(self._accessibilityTree(windowId, maxDepth, nodeId))

    async def _accessibilityTree(
        self, windowId: int | None, maxDepth: int, nodeId: str | None
    ) -> AccessibleNode:
        ref = decodeNodeId(nodeId) if nodeId is not None else None
        await self._accessible()
        target = None
        if windowId is not None:
            target = await self._onX("screen", clientwindow.windowTarget, windowId)
        cfg = self.a11y.config
        limits = Limits(maxDepth, cfg.maxNodes, cfg.callTimeout, cfg.walkTimeout)
        node = await self.a11y.call(AtspiClient.tree, target, ref, limits)
        if target is None and ref is None and self.info is not None:
            # The registry's desktop node does not know the screen's size.
            node = replace(node, bounds=(0, 0, self.info.width, self.info.height))
        return node

    def accessibilityAction(
        self, nodeId: str, action: str | None, setText: str | None
    ) -> defer.Deferred[AccessibleNode]:
        return defer.Deferred.fromCoroutine(self._accessibilityAction(nodeId, action, setText))

    async def _accessibilityAction(
        self, nodeId: str, action: str | None, setText: str | None
    ) -> AccessibleNode:
        ref = decodeNodeId(nodeId)
        await self._accessible()
        return await self.a11y.call(AtspiClient.act, ref, action, setText)

    # -- clipboard

    def readClipboard(self, selection: str) -> defer.Deferred[str | None]:
        try:
            selectionAtomName(selection)
        except ValueError as e:
            return defer.fail(e)
        return self._onX("clipboard", readSelection, selection, self.config.clipboardTimeout)

    def writeClipboard(self, selection: str, text: str) -> defer.Deferred[None]:
        try:
            selectionAtomName(selection)
            if len(text.encode("utf-8")) > MAX_CLIPBOARD_BYTES:
                raise ValueError(f"the text is over {MAX_CLIPBOARD_BYTES} bytes in UTF-8")
            info = self._require()
        except (ValueError, DesktopError) as e:
            return defer.fail(e)
        return self.x.own(self._xvnc, info, selection, text)

    # -- windows

    def windows(self) -> defer.Deferred[list[WindowInfo]]:
        return self._onX("windows", xwindows.listWindows)

    def windowAction(self, windowId: int, verb: str) -> defer.Deferred[WindowInfo | None]:
        if verb not in WINDOW_VERBS:
            return defer.fail(ValueError(f"unknown window verb {verb!r}"))
        return self._onX("windows", xwindows.windowAction, windowId, verb)

    # -- programs

    def launch(
        self, argv: Sequence[str], waitForWindow: bool, timeoutMs: int
    ) -> defer.Deferred[LaunchResult]:
        try:
            self._require()
        except DesktopError as e:
            return defer.fail(e)
        return defer.Deferred.fromCoroutine(
            self._launcher.launch(list(argv), waitForWindow, timeoutMs)
        )

    def launched(self) -> list[Launched]:
        return self._launcher.running()

    def openTarget(self, target: str) -> defer.Deferred[Launched]:
        try:
            self._require()
            target = checkOpenTarget(target, self._env)
            try:
                program = resolveProgram(self.config.xdgOpen, self._env)
            except ValueError as e:
                raise DesktopError(f"cannot open anything: {e}") from None
            _, launched = self._launcher.start("opened", [program, target])
        except (ValueError, DesktopError) as e:
            return defer.fail(e)
        return defer.succeed(launched)
