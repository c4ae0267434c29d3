"""
The desktop's accessibility stack: its own D-Bus session bus
(C{dbus-daemon}, L{SessionBusProcess}) and the AT-SPI bus launcher
(C{at-spi-bus-launcher}, which owns C{org.a11y.Bus} on that bus and runs
the accessibility bus, whose registry C{at-spi2-registryd} it starts on
demand), plus the worker thread that talks AT-SPI (L{AtspiWorker}).
L{AccessibilityStack} owns them; the desktop decides when they start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from agentdesktop.accessibility.client import AtspiClient
from agentdesktop.errors import AccessibilityUnavailable, DesktopError
from agentdesktop.outcome import Outcome
from agentdesktop.process import SupervisedProcess
from agentdesktop.threads import ConnectionThread

log = Logger()
T = TypeVar("T")

#: The file descriptor dbus-daemon writes its address to.
ADDRESS_FD = 3

#: Variables that would keep programs on the desktop off its accessibility
#: bus, or send them to another session's buses.
HIDDEN_VARIABLES = ("DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "NO_AT_BRIDGE", "GTK_A11Y")

#: At most this many restarts after a crash within this many seconds.
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0

#: Accessibility on for toolkits that ask (Qt; GTK registers anyway).
ACCESSIBLE_ENV = {"QT_ACCESSIBILITY": "1", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"}


@dataclass
class AccessibilityConfig:
    """How to run the stack."""

    dbusDaemon: str = "dbus-daemon"
    busLauncher: str = "/usr/libexec/at-spi-bus-launcher"
    startTimeout: float = 10.0
    callTimeout: float = 2.0
    walkTimeout: float = 10.0
    maxNodes: int = 5000
    stopGrace: float = 5.0


def sessionBusArgv(binary: str, socketPath: str) -> list[str]:
    """A session bus on SOCKETPATH that reports its address on L{ADDRESS_FD}."""
    return [binary, "--session", "--nofork", f"--print-address={ADDRESS_FD}",
            f"--address=unix:path={socketPath}"]


def unixAddress(path: str) -> str:
    """The D-Bus address of the unix socket at PATH (escaped as D-Bus addresses are)."""
    safe = b"-_/.\\*"
    escaped = "".join(
        chr(b) if chr(b).isascii() and (chr(b).isalnum() or b in safe) else f"%{b:02x}"
        for b in path.encode()
    )
    return "unix:path=" + escaped


def desktopEnvironment(env: Mapping[str, str], sessionAddress: str | None) -> dict[str, str]:
    """
    ENV for programs on the desktop: its own session bus (when it runs),
    nothing that turns accessibility off.
    """
    out = {k: v for k, v in env.items() if k not in HIDDEN_VARIABLES}
    out.update(ACCESSIBLE_ENV)
    if sessionAddress is not None:
        out["DBUS_SESSION_BUS_ADDRESS"] = sessionAddress
    return out


def findBinary(binary: str, package: str) -> str:
    """
    BINARY's path.

    @raise AccessibilityUnavailable: naming the Debian package when it is missing.
    """
    found = shutil.which(binary)
    if found is None:
        raise AccessibilityUnavailable(f"{binary} was not found (Debian package {package})")
    return found


class SessionBusProcess(SupervisedProcess):
    """
    One C{dbus-daemon}.  L{addressReady} fires with its address once it
    listens, or fails with L{AccessibilityUnavailable} when it exits first
    or takes too long.
    """

    childFDs = {0: "w", 1: "r", 2: "r", ADDRESS_FD: "r"}

    def __init__(self, clock: IReactorTime, startTimeout: float) -> None:
        super().__init__("dbus-daemon", clock)
        self._address = bytearray()
        self._ready: Outcome[str] = Outcome()
        self._timer = clock.callLater(startTimeout, self._tooSlow)

    def addressReady(self) -> defer.Deferred[str]:
        """@return: C{Deferred[str]}, the bus address."""
        return self._ready.wait()

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        super().childDataReceived(childFD, data)
        if childFD == ADDRESS_FD and not self._ready.done:
            self._address.extend(data)
            if b"\n" in self._address:
                self._fire(self._address.split(b"\n")[0].decode("utf-8", "replace").strip())

    def _fire(self, result: str | AccessibilityUnavailable) -> None:
        if self._timer.active():
            self._timer.cancel()
        if isinstance(result, AccessibilityUnavailable):
            self._ready.fail(result)
        else:
            self._ready.succeed(result)

    def _tooSlow(self) -> None:
        self._fire(AccessibilityUnavailable("dbus-daemon did not report its address in time"))
        self.kill()

    def ended(self, reason: BaseException) -> None:
        why = self.lastError() or str(reason)
        self._fire(AccessibilityUnavailable(f"dbus-daemon exited: {why}"))


class AtspiWorker(ConnectionThread[AtspiClient]):
    """
    One thread with the service's L{AtspiClient}: AT-SPI calls block, so
    they run here.  A call that broke the connection drops it, so the
    next call reconnects.
    """

    def __init__(self, reactor: Any, callTimeout: float) -> None:
        super().__init__(reactor, "agentdesktop-atspi")
        self.callTimeout = callTimeout

    def failed(self, error: BaseException) -> BaseException | None:
        if isinstance(error, OSError):
            return AccessibilityUnavailable(f"the connection to the accessibility bus failed: {error}")
        return None

    def run(self, key: object, address: str, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """
        C{f(client, *args)} in the thread, with a client of the session bus
        at ADDRESS; KEY names the life of the accessibility bus (its
        launcher): a new key, a new client.
        """
        self.start()
        return self.call(key, lambda: AtspiClient(address, self.callTimeout), f, *args)


class AccessibilityStack:
    """
    The session bus and the AT-SPI bus launcher of one desktop.  L{start}
    never fails: when something is missing or dies, L{reason} says why and
    L{call} fails with L{AccessibilityUnavailable} carrying it.
    """

    def __init__(self, reactor: Any, config: AccessibilityConfig, worker: Any = None) -> None:
        self.reactor = reactor
        self.config = config
        self.worker = worker if worker is not None else AtspiWorker(reactor, config.callTimeout)
        self.bus: SessionBusProcess | None = None
        self.launcher: SupervisedProcess | None = None
        #: Children an earlier L{stop} terminated that may not have exited yet.
        self._stopping: list[SupervisedProcess] = []
        self.address: str | None = None
        self.reason: str | None = "not started"
        self._starting: Outcome[None] | None = None
        self._directory: str | None = None
        self._env: dict[str, str] = {}
        self._restarts: list[float] = []

    @property
    def running(self) -> bool:
        return self._alive(self.bus) and self._alive(self.launcher)

    @staticmethod
    def _alive(child: SupervisedProcess | None) -> bool:
        return child is not None and not child.exited

    def start(self, directory: str, env: Mapping[str, str]) -> defer.Deferred[None]:
        """
        Start what does not run (the launcher alone when the session bus
        still runs: programs on the desktop keep their session bus) for the
        desktop whose private directory is DIRECTORY and whose programs get
        ENV; concurrent callers share one start.  Fires when it runs or has
        failed (then L{reason} says why).
        """
        self._directory, self._env = directory, dict(env)
        starting = self._starting
        if starting is None:
            starting = self._starting = Outcome()
            d = defer.Deferred.fromCoroutine(self._start(directory, dict(env)))
            d.addBoth(self._startEnded)
            starting.run(d)
        return starting.wait()

    def _startEnded(self, result: Any) -> Any:
        self._starting = None
        if isinstance(result, Failure):
            log.failure("Starting the accessibility stack failed", result)
            self.reason = f"starting failed: {result.getErrorMessage()}"
        return None

    async def _start(self, directory: str, env: dict[str, str]) -> None:
        try:
            if not self._alive(self.bus):
                await self._stopLauncher()
                await self._startBus(directory, env)
            if not self._alive(self.launcher):
                await self._startLauncher(directory, env)
        except AccessibilityUnavailable as e:
            self.reason = str(e)
            log.warn("Accessibility is unavailable: {reason}", reason=self.reason)
            return
        self.reason = None
        log.info("Accessibility bus is up (session bus {address})", address=self.address)

    async def _startBus(self, directory: str, env: dict[str, str]) -> None:
        self.address = None
        binary = findBinary(self.config.dbusDaemon, "dbus-daemon")
        socket = os.path.join(directory, "bus")
        if os.path.exists(socket):
            os.unlink(socket)
        bus = self.bus = SessionBusProcess(self.reactor, self.config.startTimeout)
        try:
            bus.spawn(self.reactor, sessionBusArgv(binary, socket), desktopEnvironment(env, None))
        except OSError as e:
            raise AccessibilityUnavailable(f"cannot run {binary}: {e}") from None
        await bus.addressReady()
        # Without the reported guid: programs holding this address can still
        # connect to a session bus restarted on the same socket.
        self.address = unixAddress(socket)
        bus.whenEnded().addCallback(self._ended, bus)

    async def _startLauncher(self, directory: str, env: dict[str, str]) -> None:
        binary = findBinary(self.config.busLauncher, "at-spi2-core")
        launcherEnv = dict(desktopEnvironment(env, self.address),
                           GSETTINGS_BACKEND="memory", XDG_RUNTIME_DIR=directory)
        launcher = self.launcher = SupervisedProcess("at-spi-bus-launcher", self.reactor)
        try:
            launcher.spawn(self.reactor, [binary, "--launch-immediately"], launcherEnv)
        except OSError as e:
            raise AccessibilityUnavailable(f"cannot run {binary}: {e}") from None
        try:
            await self._waitForLauncher(launcher)
            await self._call("enable", "the AT-SPI bus launcher failed")
        except AccessibilityUnavailable:
            await launcher.kill()
            raise
        launcher.whenEnded().addCallback(self._ended, launcher)

    async def _waitForLauncher(self, launcher: SupervisedProcess) -> None:
        for _ in range(max(1, int(self.config.startTimeout / 0.05))):
            if launcher.exited:
                why = launcher.lastError() or str(launcher.reason)
                raise AccessibilityUnavailable(f"at-spi-bus-launcher exited: {why}")
            if await self._call("launcherReady", "the session bus did not answer"):
                return
            await deferLater(self.reactor, 0.05, lambda: None)
        raise AccessibilityUnavailable("at-spi-bus-launcher did not take org.a11y.Bus in time")

    async def _call(self, name: str, failure: str) -> Any:
        assert self.address is not None
        try:
            return await self.worker.run(self.launcher, self.address, getattr(AtspiClient, name))
        except DesktopError as e:
            raise AccessibilityUnavailable(f"{failure}: {e}") from None

    def _ended(self, reason: BaseException, child: SupervisedProcess) -> None:
        if child not in (self.bus, self.launcher):
            return
        self.reason = f"{child.name} exited: {child.lastError() or reason}"
        # Restart at once: programs started meanwhile would find the dead
        # bus's address (the launcher's X root property) and stay
        # inaccessible.  Not in a loop, though: then requests restart it.
        now = self.reactor.seconds()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        if self._directory is None or len(self._restarts) >= MAX_RESTARTS:
            log.warn("Accessibility stopped working ({reason})", reason=self.reason)
            return
        self._restarts.append(now)
        log.warn("Accessibility stopped working ({reason}); restarting it", reason=self.reason)
        self.start(self._directory, self._env)

    def call(self, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """
        C{f(client, *args)} in the AT-SPI thread.

        @raise AccessibilityUnavailable: (in the Deferred) when the stack
            does not run, with the reason.
        """
        if not self.running or self.address is None:
            return defer.fail(AccessibilityUnavailable(self.reason or "the accessibility bus has stopped"))
        # A new launcher is a new accessibility bus: a new client.
        return self.worker.run(self.launcher, self.address, f, *args)

    async def _stopLauncher(self) -> None:
        launcher, self.launcher = self.launcher, None
        if launcher is not None:
            await launcher.terminate(self.config.stopGrace)

    def stop(self) -> defer.Deferred[None]:
        """
        Terminate the launcher (with the accessibility bus and registry) and
        the session bus.  @return: C{Deferred[None]}, once they have exited.
        """
        self.reason = "stopped"
        self._directory = None
        children = [c for c in (self.launcher, self.bus) if c is not None]
        self.launcher = self.bus = None
        # Also wait for what an earlier stop began (the desktop stops this
        # when Xvnc dies without waiting, and again when it starts afresh).
        self._stopping = [c for c in self._stopping + children if not c.exited]
        ended = defer.gatherResults([c.terminate(self.config.stopGrace) for c in self._stopping])
        return ended.addCallback(lambda _: None)

    def close(self) -> None:
        """Stop the worker thread (after L{stop})."""
        self.worker.stop()
