"""
The X11 desktop: Xvnc (X server and VNC server in one), a window manager,
autostart commands, input through xdotool and XTEST, screen grabs through
python-xlib.  One L{X11Desktop} owns every process it starts.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet import defer, protocol
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from agentdesktop import xserver
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import IDesktop
from agentdesktop.process import Child, runTool

log = Logger()
T = TypeVar("T")

RFB_BANNER_PREFIX = b"RFB 003."


@dataclass(frozen=True)
class DesktopInfo:
    """Where a running desktop is and how big it is."""

    display: str
    xauthority: str
    rfbSocket: str
    width: int
    height: int


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
    xhost: str = "xhost"
    runtimeDir: str | None = None
    startTimeout: float = 20.0
    toolTimeout: float = 10.0
    stopGrace: float = 5.0
    extraEnv: dict[str, str] = field(default_factory=dict)


def writeXauthority(path: str, cookie: bytes) -> None:
    """
    Write an X authority file holding COOKIE for any display (FamilyWild,
    empty display number), readable by its owner only.
    """
    def counted(b: bytes) -> bytes:
        return struct.pack(">H", len(b)) + b

    entry = (
        struct.pack(">H", 0xFFFF)
        + counted(b"")
        + counted(b"")
        + counted(b"MIT-MAGIC-COOKIE-1")
        + counted(cookie)
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(entry)


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


class _XWorker:
    """
    One thread with its own X connection; X calls are made in that thread
    only.  A failed call drops the connection so the next one reconnects.
    """

    def __init__(self, reactor: Any, name: str) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(1, 1, name=name)
        self.session: xserver.XSession | None = None
        self.key: object = None
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.pool.start()
            self.started = True

    def stop(self) -> None:
        if self.started:
            self.started = False
            self.pool.callInThread(self._close)
            self.pool.stop()

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def run(
        self, key: object, displayName: str, f: Callable[..., T], *args: Any
    ) -> defer.Deferred[T]:
        """
        Call C{f(session, *args)} in the worker thread.  KEY names one X
        server's life: a new key (a restarted Xvnc may reuse the display
        number) means a new connection.
        """

        def work() -> T:
            if self.session is not None and self.key is not key:
                self._close()
            if self.session is None:
                self.session = xserver.XSession(displayName)
                self.key = key
            try:
                return f(self.session, *args)
            except BaseException:
                self._close()
                raise

        return deferToThreadPool(self.reactor, self.pool, work)


@implementer(IDesktop)
class X11Desktop:
    """
    A desktop made of real processes.  C{start()} is idempotent, shares one
    start among concurrent callers, and after Xvnc died starts a fresh one.
    """

    def __init__(self, reactor: Any, config: DesktopConfig) -> None:
        self.reactor = reactor
        self.config = config
        self.info: DesktopInfo | None = None
        self._xvnc: Child | None = None
        self._wm: Child | None = None
        self._autostart: list[Child] = []
        self._starting: list[defer.Deferred[DesktopInfo]] | None = None
        self._stopping = False
        self._dir: str | None = None
        self._input = _XWorker(reactor, "agentdesktop-input")
        self._screen = _XWorker(reactor, "agentdesktop-screen")
        self._resizePool: ThreadPoolExecutor | None = None
        self._env: dict[str, str] = {}

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self.info is not None and self._xvnc is not None and not self._xvnc.exited

    def _wmNeeded(self) -> bool:
        return bool(self.config.windowManager) and (self._wm is None or self._wm.exited)

    def start(self) -> defer.Deferred[DesktopInfo]:
        if self._stopping:
            return defer.fail(DesktopError("the desktop is shutting down"))
        if self.running and not self._wmNeeded():
            assert self.info is not None
            return defer.succeed(self.info)
        d: defer.Deferred[DesktopInfo] = defer.Deferred()
        if self._starting is not None:
            self._starting.append(d)
            return d
        self._starting = [d]
        defer.Deferred.fromCoroutine(self._start()).addBoth(self._started)
        return d

    def _started(self, result: DesktopInfo | Failure) -> None:
        waiters, self._starting = self._starting or [], None
        if isinstance(result, Failure):
            log.failure("Desktop failed to start", result)
            if not result.check(DesktopError):
                result = Failure(DesktopError(str(result.value) or repr(result.value)))
        for d in waiters:
            d.callback(result) if not isinstance(result, Failure) else d.errback(result)

    async def _start(self) -> DesktopInfo:
        if not self.running:
            await self._startX()
        if self._wmNeeded():
            if self._wm is not None:
                log.info("Window manager exited; starting it again")
            self._startWM()
            await self._waitForWM()
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
            await self._stopChildren()
        self.info = None
        cfg = self.config
        directory = self._makeDir()
        xauth = os.path.join(directory, "Xauthority")
        rfb = os.path.join(directory, "rfb.sock")
        if os.path.exists(rfb):
            os.unlink(rfb)
        writeXauthority(xauth, secrets.token_bytes(16))
        argv = [
            cfg.xvnc,
            "-displayfd", "3",
            "-auth", xauth,
            "-rfbunixpath", rfb,
            "-rfbunixmode", "0600",
            "-rfbport", "-1",
            "-SecurityTypes", "None",
            "-AlwaysShared",
            "-AcceptSetDesktopSize=0",
            # Viewers all come from one "host" (the unix socket); Xvnc's
            # blacklist would refuse the fifth one connecting at once.
            "-UseBlacklist=0",
            "-geometry", f"{cfg.width}x{cfg.height}",
            "-depth", str(cfg.depth),
            "-nolisten", "tcp",
            "-desktop", "agentdesktop",
        ]
        displayNumber: defer.Deferred[str] = defer.Deferred()
        received = bytearray()

        def onData(fd: int, data: bytes) -> None:
            if fd == 3 and not displayNumber.called:
                received.extend(data)
                if b"\n" in received:
                    displayNumber.callback(received.split(b"\n")[0].decode().strip())

        env = self._baseEnv()
        try:
            xvnc = Child(
                self.reactor, self.reactor, "Xvnc", argv, env,
                childFDs={0: "w", 1: "r", 2: "r", 3: "r"},
            )
        except OSError as e:
            raise DesktopError(f"cannot run {cfg.xvnc}: {e}") from None
        xvnc.onData = onData
        self._xvnc = xvnc

        def early(reason: BaseException) -> None:
            if not displayNumber.called:
                lines = [
                    line.strip() for line in xvnc.stderrText().splitlines()
                    if line.strip() not in ("", "(EE)") and "warning" not in line
                ]
                displayNumber.errback(
                    DesktopError(
                        "Xvnc exited before its display was ready: "
                        + (" / ".join(lines[-3:]) or "no output")
                    )
                )

        xvnc.whenEnded().addCallback(early)
        timer = self.reactor.callLater(
            cfg.startTimeout, lambda: None if displayNumber.called else displayNumber.cancel()
        )
        try:
            number = await displayNumber
        except defer.CancelledError:
            await xvnc.kill()
            raise DesktopError("Xvnc did not report its display in time") from None
        finally:
            if timer.active():
                timer.cancel()
        display = f":{number}"
        self._env = dict(env, DISPLAY=display, XAUTHORITY=xauth)
        try:
            # Our own X connections (python-xlib) cannot use a FamilyWild
            # cookie; let this user in by identity, as any process of this
            # user could read the cookie file anyway.
            user = pwd.getpwuid(os.getuid()).pw_name
            await runTool(
                self.reactor, self.reactor,
                [cfg.xhost, f"+si:localuser:{user}"], self._env, cfg.toolTimeout,
            )
            banner = await self._readBanner(rfb)
            if not banner.startswith(RFB_BANNER_PREFIX):
                raise DesktopError(f"unexpected VNC banner {banner!r}")
            self._input.start()
            self._screen.start()
            width, height = await self._screen.run(xvnc, display, xserver.XSession.size)
        except BaseException:
            await xvnc.kill()
            raise
        self.info = DesktopInfo(display, xauth, rfb, width, height)
        xvnc.whenEnded().addCallback(self._xvncEnded, xvnc)
        log.info(
            "Desktop {display} is up ({width}x{height}), VNC on {rfb}",
            display=display, width=width, height=height, rfb=rfb,
        )
        for command in cfg.autostart:
            self._spawn("autostart", command, self._autostart)

    async def _readBanner(self, path: str) -> bytes:
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

    def _baseEnv(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
        env.update(self.config.extraEnv)
        return env

    def _spawn(self, name: str, argv: Sequence[str], into: list[Child]) -> Child | None:
        try:
            child = Child(self.reactor, self.reactor, name, argv, self._env)
        except OSError as e:
            log.error("Cannot run {name} {argv}: {error}", name=name, argv=argv, error=e)
            return None
        into.append(child)

        def ended(reason: BaseException) -> None:
            if child in into:
                into.remove(child)
            if not self._stopping:
                log.info(
                    "{name} {argv} exited: {reason}",
                    name=name, argv=list(argv), reason=str(reason),
                )

        child.whenEnded().addCallback(ended)
        return child

    def _startWM(self) -> None:
        assert self.config.windowManager
        holder: list[Child] = []
        self._wm = self._spawn("window manager", self.config.windowManager, holder)

    async def _waitForWM(self) -> None:
        """
        Wait (briefly) until the window manager has announced itself, so the
        first windows are managed and focusable; a WM that never announces
        itself is used anyway.
        """
        assert self.info is not None
        for _ in range(100):
            if self._wm is None or self._wm.exited:
                return
            if await self._screen.run(
                self._xvnc, self.info.display, xserver.XSession.hasWindowManager
            ):
                return
            await deferLater(self.reactor, 0.05, lambda: None)
        log.warn("The window manager did not announce itself within 5 s")

    def _xvncEnded(self, reason: BaseException, xvnc: Child) -> None:
        if self._stopping or xvnc is not self._xvnc:
            return
        log.warn(
            "Xvnc exited ({reason}); the next request starts a fresh desktop",
            reason=str(reason),
        )
        self.info = None
        for child in [self._wm, *self._autostart]:
            if child is not None:
                child.terminate(self.config.stopGrace)

    async def _stopChildren(self) -> None:
        children = [c for c in [*self._autostart, self._wm, self._xvnc] if c is not None]
        ended = [c.terminate(self.config.stopGrace) for c in children]
        await defer.gatherResults(ended)
        self._autostart = []
        self._wm = None
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
        await self._stopChildren()
        self.info = None
        self._input.stop()
        self._screen.stop()
        if self._resizePool is not None:
            self._resizePool.shutdown(wait=False)
            self._resizePool = None
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
        return self.xdotool(*(str(a) for a in args)).addCallback(lambda _: None)

    def move(self, x: int, y: int) -> defer.Deferred[None]:
        return self._xdo("mousemove", x, y)

    def click(
        self, x: int, y: int, button: int, count: int, modifiers: Sequence[str]
    ) -> defer.Deferred[None]:
        args: list[Any] = ["mousemove", x, y]
        combo = "+".join(modifiers)
        if combo:
            args += ["keydown", "--delay", "0", combo]
        args += ["click", "--repeat", count, "--delay", "0", button]
        if combo:
            args += ["keyup", "--delay", "0", combo]
        return self._xdo(*args)

    def buttonDown(self, button: int) -> defer.Deferred[None]:
        return self._xdo("mousedown", button)

    def buttonUp(self, button: int) -> defer.Deferred[None]:
        return self._xdo("mouseup", button)

    def drag(self, start: tuple[int, int], end: tuple[int, int]) -> defer.Deferred[None]:
        d = self._xdo(
            "mousemove", start[0], start[1], "mousedown", 1,
            "mousemove", end[0], end[1], "mouseup", 1,
        )

        def release(f: Failure) -> defer.Deferred[None]:
            return self._xdo("mouseup", 1).addBoth(lambda _: f)

        return d.addErrback(release)

    def keys(self, combos: Sequence[Sequence[str]]) -> defer.Deferred[None]:
        return self._xdo("key", "--delay", "0", *("+".join(c) for c in combos))

    def keyDown(self, combo: Sequence[str]) -> defer.Deferred[None]:
        return self._xdo("keydown", "--delay", "0", "+".join(combo))

    def keyUp(self, combo: Sequence[str]) -> defer.Deferred[None]:
        return self._xdo("keyup", "--delay", "0", "+".join(combo))

    def _onX(self, worker: _XWorker, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        try:
            info = self._require()
        except DesktopError as e:
            return defer.fail(e)

        def wrap(failure: Failure) -> Failure:
            if failure.check(DesktopError, ValueError):
                return failure
            return Failure(DesktopError(f"X request failed: {failure.getErrorMessage()}"))

        return worker.run(self._xvnc, info.display, f, *args).addErrback(wrap)

    def typeText(self, text: str) -> defer.Deferred[None]:
        return self._onX(self._input, xserver.XSession.typeText, text)

    def pointer(self) -> defer.Deferred[tuple[int, int]]:
        return self._onX(self._input, xserver.XSession.pointer)

    def releaseAll(self) -> defer.Deferred[None]:
        return self._onX(self._input, xserver.XSession.releaseAll)

    def screenshot(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        format: str,
        quality: int | None,
    ) -> defer.Deferred[bytes]:
        if self._resizePool is None:
            self._resizePool = ThreadPoolExecutor(2, thread_name_prefix="agentdesktop-resize")
        return self._onX(
            self._screen, xserver.screenshot, region, size, format, quality, self._resizePool
        )

