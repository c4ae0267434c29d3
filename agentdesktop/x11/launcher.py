"""
Programs started on the desktop on request (C{/launch}, C{/open}):
L{Launcher} checks and starts them as supervised children, waits for their
first window, and stops them with the desktop.  The checks and the process
tree are in L{agentdesktop.programs}.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.logger import Logger

from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import Launched, LaunchResult, WindowInfo
from agentdesktop.process import SupervisedProcess
from agentdesktop.programs import descendants, parentsFromProc, resolveProgram

log = Logger()

#: How often a launch that waits for its window looks at the window list.
WINDOW_POLL_INTERVAL = 0.1


class Launcher:
    """
    The programs started on request, each a L{SupervisedProcess} in its
    own process group with the desktop's environment, kept while they run
    and stopped with the desktop.

    @ivar env: gives the environment of programs on the desktop.
    @ivar listWindows: gives the managed windows (a Deferred).
    """

    def __init__(
        self,
        reactor: Any,
        env: Callable[[], Mapping[str, str]],
        listWindows: Callable[[], defer.Deferred[list[WindowInfo]]],
        parents: Callable[[], Mapping[int, int]] = parentsFromProc,
    ) -> None:
        self.reactor = reactor
        self.env = env
        self.listWindows = listWindows
        self.parents = parents
        self.children: list[tuple[SupervisedProcess, Launched]] = []

    def running(self) -> list[Launched]:
        return [launched for child, launched in self.children if not child.exited]

    def start(
        self, name: str, argv: Sequence[str], path: str | None = None
    ) -> tuple[SupervisedProcess, Launched]:
        """
        Start ARGV (its program already checked), in directory PATH (or ours).

        @raise DesktopError: when it cannot be started.
        """
        child = SupervisedProcess(name, self.reactor)
        try:
            child.spawn(self.reactor, argv, self.env(), path)
        except OSError as e:
            raise DesktopError(f"cannot run {argv[0]}: {e}") from None
        assert child.pid is not None
        launched = Launched(child.pid, tuple(argv), time.time())
        entry = (child, launched)
        self.children.append(entry)
        log.info("Started {name} {argv} as pid {pid}", name=name, argv=list(argv), pid=child.pid)

        def ended(reason: BaseException) -> None:
            if entry in self.children:
                self.children.remove(entry)
            log.info("{name} {argv} (pid {pid}) exited: {reason}", name=name,
                     argv=list(argv), pid=launched.pid, reason=str(reason))

        child.whenEnded().addCallback(ended)
        return entry

    async def launch(
        self, argv: Sequence[str], waitForWindow: bool, timeoutMs: int
    ) -> LaunchResult:
        """
        Check ARGV's program, start it, and with WAITFORWINDOW wait up to
        TIMEOUTMS ms for its first new window.

        @raise ValueError: when the program is missing (nothing started).
        """
        if not argv:
            raise ValueError("the command is empty")
        resolveProgram(argv[0], self.env())
        before = {w.id for w in await self.listWindows()} if waitForWindow else set()
        child, launched = self.start("launched", argv)
        window = None
        if waitForWindow:
            window = await self.firstWindow(child, before, timeoutMs / 1000)
        return LaunchResult(launched, window)

    async def firstWindow(
        self, child: SupervisedProcess, before: set[int], timeout: float
    ) -> WindowInfo | None:
        """
        The first managed window not in BEFORE whose C{_NET_WM_PID} is
        CHILD or one of its descendants, or C{None} after TIMEOUT seconds
        (or once CHILD has exited and no such window showed up).
        """
        deadline = self.reactor.seconds() + timeout
        while True:
            exited = child.exited
            found = self._match(await self.listWindows(), child, before)
            if found is not None or exited or self.reactor.seconds() >= deadline:
                return found
            await deferLater(self.reactor, WINDOW_POLL_INTERVAL, lambda: None)

    def _match(
        self, windows: list[WindowInfo], child: SupervisedProcess, before: set[int]
    ) -> WindowInfo | None:
        fresh = [w for w in windows if w.id not in before and w.pid is not None]
        if not fresh:
            return None
        for w in fresh:
            if w.pid == child.pid:
                return w
        assert child.pid is not None
        family = descendants([child.pid], self.parents())
        return next((w for w in fresh if w.pid in family), None)

    def stopAll(self, grace: float) -> defer.Deferred[list[BaseException]]:
        """
        Terminate every launched program (TERM to its process group, then
        KILL after GRACE seconds).

        @return: C{Deferred} firing once all have exited.
        """
        children = [child for child, _ in self.children]
        return defer.gatherResults([child.terminate(grace) for child in children])
