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
  - L{sample} reads one value of a service's metrics.

Nothing here imports python-xlib or Pillow.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from twisted.internet import defer, error, task
from twisted.python.failure import Failure
from zope.interface import implementer

from agentdesktop.errors import (
    AccessibilityUnavailable,
    APIError,
    DesktopError,
    NodeActionError,
    UnknownNode,
    UnknownWindow,
)
from agentdesktop.interfaces import (
    MAX_CLIPBOARD_BYTES,
    SELECTIONS,
    WINDOW_VERBS,
    AccessibleNode,
    DesktopInfo,
    IDesktop,
    IRecorder,
    Launched,
    LaunchResult,
    RecordingResult,
    Settled,
    WindowInfo,
)
from agentdesktop.metrics import Metrics
from agentdesktop.programs import checkOpenTarget


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """
    The value of the sample NAME (e.g. C{agentdesktop_actions_total}) with
    LABELS in METRICS' registry, or C{None} when there is none.
    """
    return metrics.registry.get_sample_value(name, labels)


@implementer(IDesktop)
class FakeDesktop:
    """
    An in-memory desktop.

    @ivar failing: names of methods that fail with L{DesktopError}.
    @ivar pressedKeys: keysyms currently held.
    @ivar pressedButtons: buttons currently held.
    @ivar log: C{(method, args)} for every call, in order.
    @ivar accessibleWindows: X window id -> the accessible tree of that
        window (the desktop's tree holds them all).
    @ivar accessibilityReason: when set, accessibility is unavailable for
        this reason.
    @ivar nodeActions: C{(node id, action, set_text)} of every node action done.
    @ivar clipboard: selection name → text.
    @ivar windowList: the managed windows; verbs change them as a window
        manager would.
    @ivar missingPrograms: program names that L{launch} does not find.
    @ivar running_: what L{launched} answers.
    @ivar restarted: the L{IDesktop.restarted} hooks; L{crash} makes the
        next start a restart.
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
        self.accessibleWindows: dict[int, AccessibleNode] = {}
        self.accessibilityReason: str | None = None
        self.nodeActions: list[tuple[str, str | None, str | None]] = []
        self.clipboard: dict[str, str] = {}
        self.windowList: list[WindowInfo] = []
        self.missingPrograms: set[str] = set()
        self.running_: list[Launched] = []
        self.nextPid = 1000
        self.env = {"HOME": "/nonexistent/home"}
        self.restarted: list[Callable[[str], None]] = []
        self.crashed = False

    def crash(self) -> None:
        """The desktop dies: the next L{start} starts a fresh one."""
        self.running = False
        self.crashed = True

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
        if self.crashed:
            self.crashed = False
            for hook in list(self.restarted):
                hook("desktop")
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


    # -- beyond pixels

    def _answer(self, name: str, f: Callable[[], Any], *args: Any) -> defer.Deferred[Any]:
        try:
            self._call(name, *args)
            return defer.succeed(f())
        except (DesktopError, ValueError, LookupError) as e:
            return defer.fail(e)

    @staticmethod
    def _selection(selection: str) -> str:
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}")
        return selection

    def readClipboard(self, selection: str) -> defer.Deferred[str | None]:
        return self._answer(
            "readClipboard", lambda: self.clipboard.get(self._selection(selection)), selection
        )

    def writeClipboard(self, selection: str, text: str) -> defer.Deferred[None]:
        def write() -> None:
            if len(text.encode("utf-8")) > MAX_CLIPBOARD_BYTES:
                raise ValueError("the text is too large")
            self.clipboard[self._selection(selection)] = text

        return self._answer("writeClipboard", write, selection, text)

    def windows(self) -> defer.Deferred[list[WindowInfo]]:
        return self._answer("windows", lambda: list(self.windowList))

    def _find(self, windowId: int) -> WindowInfo:
        for w in self.windowList:
            if w.id == windowId:
                return w
        raise UnknownWindow(windowId)

    def _act(self, windowId: int, verb: str) -> WindowInfo | None:
        if verb not in WINDOW_VERBS:
            raise ValueError(f"unknown window verb {verb!r}")
        window = self._find(windowId)
        if verb == "close":
            self.windowList.remove(window)
            return None
        change: dict[str, Callable[[WindowInfo], WindowInfo]] = {
            "focus": lambda w: dataclasses.replace(w, focused=True, minimized=False),
            "minimize": lambda w: dataclasses.replace(w, minimized=True, focused=False),
            "maximize": lambda w: dataclasses.replace(w, maximized=True),
            "restore": lambda w: dataclasses.replace(w, minimized=False, maximized=False),
        }
        if verb == "focus":
            self.windowList = [dataclasses.replace(w, focused=False) for w in self.windowList]
        after = change[verb](self._find(windowId))
        self.windowList = [after if w.id == windowId else w for w in self.windowList]
        return after

    def windowAction(self, windowId: int, verb: str) -> defer.Deferred[WindowInfo | None]:
        return self._answer("windowAction", lambda: self._act(windowId, verb), windowId, verb)

    def _start(self, argv: Sequence[str]) -> Launched:
        if not self.running:
            raise DesktopError("the desktop is not running")
        launched = Launched(self.nextPid, tuple(argv), time.time())
        self.nextPid += 1
        self.running_.append(launched)
        return launched

    def _launch(self, argv: Sequence[str], waitForWindow: bool) -> LaunchResult:
        if not argv or argv[0] in self.missingPrograms:
            raise ValueError(f"{argv[0] if argv else ''}: not found on the desktop's PATH")
        launched = self._start(argv)
        window = None
        if waitForWindow:
            window = WindowInfo(
                id=0x400000 + launched.pid, title=argv[0], windowClass=argv[0].title(),
                pid=launched.pid, x=0, y=0, width=640, height=480,
                focused=True, minimized=False, maximized=False,
            )
            self.windowList.append(window)
        return LaunchResult(launched, window)

    def launch(
        self, argv: Sequence[str], waitForWindow: bool, timeoutMs: int
    ) -> defer.Deferred[LaunchResult]:
        return self._answer(
            "launch", lambda: self._launch(argv, waitForWindow), tuple(argv), waitForWindow,
            timeoutMs,
        )

    def launched(self) -> list[Launched]:
        return list(self.running_)

    def openTarget(self, target: str) -> defer.Deferred[Launched]:
        return self._answer(
            "openTarget", lambda: self._start(["xdg-open", checkOpenTarget(target, self.env)]),
            target,
        )

    # -- accessibility

    def _nodes(self) -> Iterator[AccessibleNode]:
        stack = list(self.accessibleWindows.values())
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children)

    def _accessibility(self, name: str, *args: Any) -> None:
        self._call(name, *args)
        if self.accessibilityReason is not None:
            raise AccessibilityUnavailable(self.accessibilityReason)

    def accessibilityTree(
        self, windowId: int | None, maxDepth: int, nodeId: str | None
    ) -> defer.Deferred[AccessibleNode]:
        try:
            self._accessibility("accessibilityTree", windowId, maxDepth, nodeId)
            if windowId is not None:
                if windowId not in self.accessibleWindows:
                    raise UnknownWindow(f"{windowId} is not a client window")
                root = self.accessibleWindows[windowId]
            elif nodeId is not None:
                root = self._node(nodeId)
            else:
                root = AccessibleNode("desktop", "desktop frame", "main", (), (0, 0, *self.info.size),
                                      (), tuple(self.accessibleWindows.values()))
        except DesktopError as e:
            return defer.fail(e)
        return defer.succeed(_prune(root, maxDepth))

    def _node(self, nodeId: str) -> AccessibleNode:
        for node in self._nodes():
            if node.id == nodeId:
                return node
        raise UnknownNode(f"{nodeId!r} is not a node id")

    def accessibilityAction(
        self, nodeId: str, action: str | None, setText: str | None
    ) -> defer.Deferred[AccessibleNode]:
        try:
            self._accessibility("accessibilityAction", nodeId, action, setText)
            node = self._node(nodeId)
            if action is not None and action not in node.actions:
                raise NodeActionError(f"the node has no action {action!r}")
            if action is None and "editable" not in node.states:
                raise NodeActionError("the node has no editable text")
        except DesktopError as e:
            return defer.fail(e)
        self.nodeActions.append((nodeId, action, setText))
        return defer.succeed(_prune(node, 0))


def _prune(node: AccessibleNode, depth: int) -> AccessibleNode:
    """NODE with at most DEPTH levels of children."""
    if depth > 0:
        return replace(node, children=tuple(_prune(c, depth - 1) for c in node.children))
    return replace(node, children=(), truncated=node.truncated or bool(node.children))


@implementer(IRecorder)
class FakeRecorder:
    """
    A recorder whose outcomes a test sets.

    @ivar started: every id C{start} was called with, in order.
    @ivar failStart: id -> the L{APIError} C{start} fails with.
    @ivar results: id -> the L{RecordingResult} (or L{APIError}) C{stop}
        gives; an id not in it is 404.
    @ivar activities: how many times C{activity} was called.
    @ivar active: the ids started and not stopped since.
    """

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.started: list[str] = []
        self.failStart: dict[str, APIError] = {}
        self.results: dict[str, RecordingResult | APIError] = {}
        self.activities = 0
        self.closed = False

    def start(self, recordingId: str) -> defer.Deferred[None]:
        self.started.append(recordingId)
        if recordingId in self.failStart:
            return defer.fail(self.failStart[recordingId])
        self.active.add(recordingId)
        return defer.succeed(None)

    def stop(self, recordingId: str) -> defer.Deferred[RecordingResult]:
        self.active.discard(recordingId)
        result = self.results.get(recordingId)
        if result is None:
            return defer.fail(APIError(404, "Recording not found.", "unknown recording ID"))
        if isinstance(result, APIError):
            return defer.fail(result)
        return defer.succeed(result)

    def activity(self) -> None:
        self.activities += 1

    def activeCount(self) -> int:
        return len(self.active)

    def close(self) -> defer.Deferred[None]:
        self.closed = True
        self.active.clear()
        return defer.succeed(None)


class FakeProcess:
    """
    The transport of a child that L{FakeProcessReactor} pretended to start.

    @ivar argv: its whole command line.
    @ivar command: the command line after our detach prefix, if any.
    @ivar written: what was written to its standard input.
    @ivar signals: the signals sent to it, by name (C{"TERM"}, C{"KILL"}).
    @ivar path: the directory it was started in (C{None}: ours).
    """

    def __init__(self, reactor: FakeProcessReactor, proto: Any, argv: list[str],
                 env: dict[str, str], childFDs: dict[int, Any] | None) -> None:
        self.reactor = reactor
        self.proto = proto
        self.argv = argv
        self.command = argv[argv.index("--") + 1:] if argv[:1] == ["setsid"] else argv
        self.env = env
        self.childFDs = childFDs
        self.path: str | None = None
        self.pid: int | None = reactor.nextPid
        #: The pid it had (L{pid} is C{None} once it ended).
        self.startPid = reactor.nextPid
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
        """
        The child exits (successfully unless REASON says otherwise); like
        Twisted's process transports, this one forgets its pid then.
        """
        if self.ended:
            return
        self.ended = True
        self.pid = None
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
        """Record READER; a test calls its C{doRead} when it has data."""
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
        p.path = path
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
    @ivar panelUp: what C{panelShown} answers.
    @ivar background: the colour C{paintBackground} painted, if any.
    @ivar windowList: the windows C{listWindows} answers.
    @ivar selections: selection name → text, what C{own} set and
        C{readSelection} answers.
    """

    def __init__(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.bannerBytes = b"RFB 003.008\n"
        self.screenSize = size
        self.wmAnnounced = True
        self.panelUp = True
        self.background: tuple[int, int, int] | None = None
        self.started = False
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.windowList: list[WindowInfo] = []
        self.selections: dict[str, str] = {}

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

    def panelShown(self) -> bool:
        return self.panelUp

    def paintBackground(self, rgb: tuple[int, int, int]) -> None:
        self.background = rgb

    def releaseAll(self) -> None:
        pass

    def pointer(self) -> tuple[int, int]:
        return (0, 0)

    def waitReleased(self, buttons: int, timeout: float) -> bool:
        return True

    # -- windows and clipboard (the desktop's "windows" and "clipboard" lanes)

    def listWindows(self) -> list[WindowInfo]:
        return list(self.windowList)

    def windowAction(self, windowId: int, verb: str) -> WindowInfo | None:
        for w in self.windowList:
            if w.id == windowId:
                return w
        raise UnknownWindow(windowId)

    def readSelection(self, selection: str, timeout: float = 5.0) -> str | None:
        return self.selections.get(selection)

    def own(self, key: object, info: DesktopInfo, selection: str, text: str) -> defer.Deferred[None]:
        self.selections[selection] = text
        return defer.succeed(None)


class FakeAtspiWorker:
    """
    Stands in for L{agentdesktop.accessibility.stack.AtspiWorker}: no
    thread, no D-Bus.  A call C{f(client, ...)} is answered by this
    object's method of the same name as C{f} (C{launcherReady},
    C{enable}), and recorded in L{calls}.

    @ivar launcherUp: what C{launcherReady} answers.
    @ivar failing: method name -> the error its call fails with.
    """

    def __init__(self) -> None:
        self.launcherUp = True
        self.failing: dict[str, DesktopError] = {}
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def run(self, key: object, address: str, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        self.calls.append((f.__name__, address, args))
        if f.__name__ in self.failing:
            return defer.fail(self.failing[f.__name__])
        return defer.maybeDeferred(getattr(self, f.__name__), *args)

    def launcherReady(self) -> bool:
        return self.launcherUp

    def enable(self) -> str:
        return "unix:path=/nonexistent/at-spi/bus"
