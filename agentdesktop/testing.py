"""
Public test doubles, for this package's tests and for anyone testing code
against it (as C{treq.testing} is for treq):

  - L{FakeDesktop} and L{FakeRecorder} implement L{IDesktop} and
    L{IRecorder} (the tests verify them against the interfaces).  They
    model state, not calls: the fake desktop knows where its pointer is and
    which keys and buttons are down.
  - L{FakeProcessReactor} stands in for C{IReactorProcess} (and, with a
    L{task.Clock}, time): it starts nothing, records every spawn, and lets
    a test play each child's part (write its output, end it).
  - L{FakeXConnections} answers L{agentdesktop.x11.desktop.X11Desktop}'s
    own X calls (screen size, window manager, releasing keys) without an X
    server.

Nothing here imports python-xlib or Pillow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer, error, task
from twisted.python.failure import Failure
from zope.interface import implementer

from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import DesktopInfo, IDesktop, IRecorder, RecordingResult, Settled


@implementer(IDesktop)
class FakeDesktop:
    """
    An in-memory desktop.

    @ivar failing: names of methods that fail with L{DesktopError}.
    @ivar pressedKeys: keysyms currently held.
    @ivar pressedButtons: buttons currently held.
    @ivar log: C{(method, args)} for every call, in order.
    """

    def __init__(self, width: int = 1920, height: int = 1080) -> None:
        self.info = DesktopInfo(":99", "/nonexistent/Xauthority", "/nonexistent/rfb", width, height)
        self.running = False
        self.failing: set[str] = set()
        self.pointerAt = (0, 0)
        self.pressedKeys: list[str] = []
        self.pressedButtons: set[int] = set()
        self.typed = ""
        self.clicks: list[tuple[int, int, int, int, tuple[str, ...]]] = []
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.stopped = False
        #: Whether the screen never stops changing (see L{settle}).
        self.busy = False

    def _call(self, name: str, *args: Any) -> None:
        self.log.append((name, args))
        if name in self.failing:
            raise DesktopError(f"{name} failed on purpose")

    def _do(self, name: str, *args: Any) -> defer.Deferred[Any]:
        try:
            self._call(name, *args)
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(None)

    def start(self) -> defer.Deferred[DesktopInfo]:
        if "start" in self.failing:
            return defer.fail(DesktopError("Xvnc exited before its display was ready"))
        self.running = True
        return defer.succeed(self.info)

    def stop(self) -> defer.Deferred[None]:
        self.stopped = True
        self.running = False
        return self.releaseAll()

    def move(self, x: int, y: int, modifiers: Sequence[str] = ()) -> defer.Deferred[None]:
        d = self._do("move", x, y, tuple(modifiers))
        if d.result is None:
            self.pointerAt = (x, y)
        return d

    def click(
        self, x: int, y: int, button: int, count: int, modifiers: Sequence[str]
    ) -> defer.Deferred[None]:
        self.pointerAt = (x, y)
        d = self._do("click", x, y, button, count, tuple(modifiers))
        if d.result is None:
            self.clicks.append((x, y, button, count, tuple(modifiers)))
        return d

    def buttonDown(self, button: int) -> defer.Deferred[None]:
        d = self._do("buttonDown", button)
        if d.result is None:
            self.pressedButtons.add(button)
        return d

    def buttonUp(self, button: int) -> defer.Deferred[None]:
        d = self._do("buttonUp", button)
        if d.result is None:
            self.pressedButtons.discard(button)
        return d

    def drag(
        self, path: Sequence[tuple[int, int]], modifiers: Sequence[str] = ()
    ) -> defer.Deferred[None]:
        d = self._do("drag", tuple(path), tuple(modifiers))
        if d.result is None:
            self.pointerAt = path[-1]
        return d

    def keys(self, combos: Sequence[Sequence[str]]) -> defer.Deferred[None]:
        return self._do("keys", tuple(tuple(c) for c in combos))

    def keyDown(self, combo: Sequence[str]) -> defer.Deferred[None]:
        d = self._do("keyDown", tuple(combo))
        if d.result is None:
            self.pressedKeys.extend(combo)
        return d

    def keyUp(self, combo: Sequence[str]) -> defer.Deferred[None]:
        d = self._do("keyUp", tuple(combo))
        if d.result is None:
            for k in combo:
                if k in self.pressedKeys:
                    self.pressedKeys.remove(k)
        return d

    def typeText(self, text: str) -> defer.Deferred[None]:
        d = self._do("typeText", text)
        if d.result is None:
            self.typed += text
        return d

    def pointer(self) -> defer.Deferred[tuple[int, int]]:
        try:
            self._call("pointer")
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(self.pointerAt)

    def screenshot(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        format: str,
        quality: int | None,
    ) -> defer.Deferred[bytes]:
        try:
            self._call("screenshot", region, size, format, quality)
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(f"{format}:{size[0]}x{size[1]}:{region}".encode())

    def releaseAll(self) -> defer.Deferred[None]:
        self.log.append(("releaseAll", ()))
        self.pressedKeys.clear()
        self.pressedButtons.clear()
        return defer.succeed(None)

    def settle(self, settleMs: int, timeoutMs: int) -> defer.Deferred[Settled]:
        """Settles at once unless L{busy}: then the wait runs out."""
        self.log.append(("settle", (settleMs, timeoutMs)))
        if self.busy:
            return defer.succeed(Settled(False, timeoutMs))
        return defer.succeed(Settled(True, settleMs))


@implementer(IRecorder)
class FakeRecorder:
    """
    A recorder whose outcomes a test sets.

    @ivar started: every id C{start} was called with, in order.
    @ivar failStart: id -> the L{APIError} C{start} fails with.
    @ivar results: id -> the L{RecordingResult} (or L{APIError}) C{stop}
        gives; an id not in it is 404.
    @ivar activities: how many times C{activity} was called.
    """

    def __init__(self) -> None:
        self.started: list[str] = []
        self.failStart: dict[str, APIError] = {}
        self.results: dict[str, RecordingResult | APIError] = {}
        self.activities = 0
        self.closed = False

    def start(self, recordingId: str) -> defer.Deferred[None]:
        self.started.append(recordingId)
        if recordingId in self.failStart:
            return defer.fail(self.failStart[recordingId])
        return defer.succeed(None)

    def stop(self, recordingId: str) -> defer.Deferred[RecordingResult]:
        result = self.results.get(recordingId)
        if result is None:
            return defer.fail(APIError(404, "Recording not found.", "unknown recording ID"))
        if isinstance(result, APIError):
            return defer.fail(result)
        return defer.succeed(result)

    def activity(self) -> None:
        self.activities += 1

    def close(self) -> defer.Deferred[None]:
        self.closed = True
        return defer.succeed(None)


class FakeProcess:
    """
    The transport of a child that L{FakeProcessReactor} pretended to start.

    @ivar argv: its whole command line.
    @ivar command: the command line after our detach prefix, if any.
    @ivar written: what was written to its standard input.
    @ivar signals: the signals sent to it, by name (C{"TERM"}, C{"KILL"}).
    """

    def __init__(self, reactor: FakeProcessReactor, proto: Any, argv: list[str],
                 env: dict[str, str], childFDs: dict[int, Any] | None) -> None:
        self.reactor = reactor
        self.proto = proto
        self.argv = argv
        self.command = argv[argv.index("--") + 1:] if argv[:1] == ["setsid"] else argv
        self.env = env
        self.childFDs = childFDs
        self.pid = reactor.nextPid
        reactor.nextPid += 1
        self.written = b""
        self.signals: list[str] = []
        self.stdinClosed = False
        self.ended = False

    def write(self, data: bytes) -> None:
        self.written += data

    def closeStdin(self) -> None:
        self.stdinClosed = True

    def signalProcess(self, sig: str | int) -> None:
        if self.ended:
            raise error.ProcessExitedAlready()
        self.signals.append(str(sig))
        if self.reactor.dieOnSignal and sig in ("TERM", "KILL"):
            self.end(error.ProcessTerminated(signal=15 if sig == "TERM" else 9))

    def output(self, fd: int, data: bytes) -> None:
        """The child writes DATA on file descriptor FD."""
        self.proto.childDataReceived(fd, data)

    def end(self, reason: BaseException | None = None) -> None:
        """The child exits (successfully unless REASON says otherwise)."""
        if self.ended:
            return
        self.ended = True
        self.proto.processEnded(Failure(reason or error.ProcessDone(0)))


class FakeProcessReactor(task.Clock):
    """
    A clock that also "spawns" processes: nothing is started, every spawn is
    recorded in L{spawned}, and a test plays each child's part through its
    L{FakeProcess}.  Short-lived tools can be answered at once by a rule in
    L{tools}: a function of the command line returning C{(stdout, reason)}, or
    C{None} to leave the process running.

    @ivar dieOnSignal: whether a child exits when sent TERM or KILL.
    """

    def __init__(self) -> None:
        super().__init__()
        # Beyond any pid_max: a stray killpg would find nothing.
        self.nextPid = 2**30
        self.spawned: list[FakeProcess] = []
        self.tools: list[Callable[[list[str]], tuple[bytes, BaseException | None] | None]] = []
        self.dieOnSignal = True
        self.readers: list[Any] = []

    def addReader(self, reader: Any) -> None:
        """Record a descriptor to read from (nothing reads it)."""
        if reader not in self.readers:
            self.readers.append(reader)

    def removeReader(self, reader: Any) -> None:
        if reader in self.readers:
            self.readers.remove(reader)

    def removeWriter(self, writer: Any) -> None:
        """Nothing is ever written through this reactor."""

    def spawnProcess(self, proto: Any, executable: str, args: Sequence[str], env: Any = None,
                     path: Any = None, uid: Any = None, gid: Any = None, usePTY: Any = False,
                     childFDs: Any = None) -> FakeProcess:
        p = FakeProcess(self, proto, list(args), dict(env or {}), childFDs)
        self.spawned.append(p)
        proto.makeConnection(p)
        for rule in self.tools:
            answer = rule(p.command)
            if answer is not None:
                out, reason = answer
                if out:
                    proto.childDataReceived(1, out)
                p.end(reason)
                break
        return p

    def named(self, name: str) -> list[FakeProcess]:
        """The processes whose program is NAME."""
        return [p for p in self.spawned if p.command and p.command[0] == name]

    def running(self) -> list[FakeProcess]:
        return [p for p in self.spawned if not p.ended]


class FakeXConnections:
    """
    Stands in for L{agentdesktop.x11.desktop.XConnections}: no X server,
    no threads.  A call C{f(session, ...)} is answered by this object's
    method of the same name as C{f} (C{size}, C{hasWindowManager},
    C{releaseAll}, C{pointer}, ...), and recorded in L{calls}.

    @ivar screenSize: what C{size} answers.
    @ivar wmAnnounced: what C{hasWindowManager} answers.
    """

    def __init__(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.bannerBytes = b"RFB 003.008\n"
        self.screenSize = size
        self.wmAnnounced = True
        self.started = False
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def start(self, info: DesktopInfo) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def lastChange(self) -> float:
        return 0.0

    async def banner(self, path: str) -> bytes:
        return self.bannerBytes

    def call(self, lane: str, key: object, info: DesktopInfo, f: Callable[..., Any],
             *args: Any) -> defer.Deferred[Any]:
        self.calls.append((lane, f.__name__, args))
        return defer.maybeDeferred(getattr(self, f.__name__), *args)

    def size(self) -> tuple[int, int]:
        return self.screenSize

    def hasWindowManager(self) -> bool:
        return self.wmAnnounced

    def releaseAll(self) -> None:
        pass

    def pointer(self) -> tuple[int, int]:
        return (0, 0)
