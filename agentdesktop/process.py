"""
Child processes: short-lived tools run to completion, and long-lived
supervised children (Xvnc, the window manager, ffmpeg) in their own process
groups, stopped with TERM and then KILL.  argv lists only, never a shell.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from agentdesktop.errors import DesktopError, ToolTimeout

log = Logger()

STDERR_KEEP = 4096

#: Prefix for long-lived children: a new session (so the child leads its own
#: process group and can be signalled as a group) and death when the service
#: dies, even by SIGKILL.  Both exec in place, so the PID is the tool's.
DETACH = ("setsid", "setpriv", "--pdeathsig", "KILL", "--")


class ToolError(DesktopError):
    """
    A tool exited unsuccessfully.

    @ivar code: its exit code, or C{None} if a signal ended it.
    @ivar stderr: the end of what it wrote on standard error.
    """

    def __init__(self, name: str, code: int | None, stderr: str) -> None:
        self.name = name
        self.code = code
        self.stderr = stderr
        how = f"exited with status {code}" if code is not None else "was killed"
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        super().__init__(f"{name} {how}" + (f": {detail}" if detail else ""))


def _tail(buf: bytearray, data: bytes) -> None:
    buf += data
    if len(buf) > STDERR_KEEP:
        del buf[: len(buf) - STDERR_KEEP]


class _ToolProtocol(protocol.ProcessProtocol):
    def __init__(self, name: str, stdin: bytes | None) -> None:
        self.name = name
        self.stdin = stdin
        self.out = bytearray()
        self.err = bytearray()
        self.done: defer.Deferred[bytes] = defer.Deferred()
        self.timedOut = False

    def connectionMade(self) -> None:
        assert self.transport is not None
        if self.stdin:
            self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        _tail(self.err, data)

    def processEnded(self, reason: Failure) -> None:
        stderr = self.err.decode("utf-8", "replace")
        if self.timedOut:
            self.done.errback(ToolTimeout(f"{self.name} timed out and was killed"))
        elif reason.check(error.ProcessDone):
            self.done.callback(bytes(self.out))
        else:
            code = getattr(reason.value, "exitCode", None)
            self.done.errback(ToolError(self.name, code, stderr))


def runTool(
    reactor: IReactorProcess,
    clock: IReactorTime,
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float = 10.0,
    stdin: bytes | None = None,
) -> defer.Deferred[bytes]:
    """
    Run ARGV to completion.

    @return: C{Deferred[bytes]} with its standard output; fails with
        L{ToolError} on a non-zero exit and L{ToolTimeout} if it ran longer
        than TIMEOUT seconds (it is then killed).
    """
    name = os.path.basename(argv[0])
    proto = _ToolProtocol(name, stdin)
    try:
        transport = reactor.spawnProcess(proto, argv[0], list(argv), env=dict(env))
    except OSError as e:
        return defer.fail(DesktopError(f"cannot run {name}: {e}"))

    def expire() -> None:
        proto.timedOut = True
        try:
            transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass

    timer = clock.callLater(timeout, expire)

    def cancelTimer(result: Any) -> Any:
        if timer.active():
            timer.cancel()
        return result

    return proto.done.addBoth(cancelTimer)


class _ChildProtocol(protocol.ProcessProtocol):
    def __init__(self, child: Child) -> None:
        self.child = child

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            _tail(self.child.stderr, data)
        self.child.dataReceived(childFD, data)

    def processEnded(self, reason: Failure) -> None:
        self.child._ended(reason)


class Child:
    """
    A long-lived child process in its own process group.

    L{whenEnded} and L{terminate} fire (never errback) with the exit
    reason exception (L{error.ProcessDone} or L{error.ProcessTerminated})
    once the process has exited and been reaped.
    """

    def __init__(
        self,
        reactor: IReactorProcess,
        clock: IReactorTime,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        childFDs: Mapping[int, int | str] | None = None,
        path: str | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.stderr = bytearray()
        self.exited = False
        self.reason: BaseException | None = None
        self._waiters: list[defer.Deferred[BaseException]] = []
        self._kill: Any = None
        self.onData: Any = None
        fds: dict[int, int | str] = (
            dict(childFDs) if childFDs is not None else {0: "w", 1: "r", 2: "r"}
        )
        self.process = reactor.spawnProcess(
            _ChildProtocol(self), DETACH[0], list(DETACH) + list(argv),
            env=dict(env), childFDs=fds, path=path,
        )
        self.pid: int = self.process.pid

    def dataReceived(self, childFD: int, data: bytes) -> None:
        if self.onData is not None:
            self.onData(childFD, data)

    def stderrText(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def _ended(self, reason: Failure) -> None:
        self.exited = True
        self.reason = reason.value
        if self._kill is not None and self._kill.active():
            self._kill.cancel()
        # Children of the child die with their group.
        self._signalGroup(signal.SIGKILL)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self.reason)

    def whenEnded(self) -> defer.Deferred[BaseException]:
        """@return: C{Deferred} firing with the exit reason."""
        if self.exited:
            assert self.reason is not None
            return defer.succeed(self.reason)
        d: defer.Deferred[BaseException] = defer.Deferred()
        self._waiters.append(d)
        return d

    def _signalGroup(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self, grace: float = 5.0) -> defer.Deferred[BaseException]:
        """
        Send TERM to the process group, then KILL after GRACE seconds.

        @return: C{Deferred} firing with the exit reason once reaped.
        """
        if not self.exited:
            self._signalGroup(signal.SIGTERM)
            if self._kill is None:
                self._kill = self.clock.callLater(
                    grace, self._signalGroup, signal.SIGKILL
                )
        return self.whenEnded()

    def kill(self) -> defer.Deferred[BaseException]:
        """KILL the process group at once.  @return: as L{terminate}."""
        if not self.exited:
            self._signalGroup(signal.SIGKILL)
        return self.whenEnded()
