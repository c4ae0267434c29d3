"""
Child processes: short-lived tools run to completion (L{runTool}), and
long-lived children (Xvnc, the window manager, ffmpeg) as
L{SupervisedProcess} protocols in their own process groups, stopped with
TERM and then KILL.  argv lists only, never a shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet import process as _posixProcess
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


def signalGroup(transport: Any, sig: int) -> None:
    """
    Send SIG to the process group led by the process behind TRANSPORT (our
    long-lived children lead their own group).  A transport that is not a
    real process (a test double) gets C{signalProcess} instead.
    """
    if isinstance(transport, _posixProcess.Process):
        if transport.pid is None:
            return
        try:
            os.killpg(transport.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        return
    try:
        transport.signalProcess(_SIGNAL_NAMES.get(sig, sig))
    except error.ProcessExitedAlready:
        pass


#: The sentinel's program: it reads "+<pgid>" and "-<pgid>" lines, and when
#: its input ends (this process exited, even by SIGKILL) it kills every
#: process group still listed.
_SENTINEL_SCRIPT = """
groups=" "
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} " ;;
    -*) kept=" "
        for g in $groups; do [ "$g" = "${line#-}" ] || kept="$kept$g "; done
        groups=$kept ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
"""


class GroupSentinel:
    """
    Takes our children's process groups down with us.  A killed service
    takes its direct children with it (C{setpriv --pdeathsig}), but not
    what those started (a launched program's children, the accessibility
    bus the AT-SPI launcher starts).  The sentinel, a small shell in a
    session of its own, holds the read end of a pipe from this process and
    a list of our children's groups; when the pipe ends, it kills them.
    It is not a reactor child: the reactor has no business with it, and it
    must outlive us for a moment.
    """

    def __init__(self) -> None:
        read, self._write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                ["sh", "-c", _SENTINEL_SCRIPT], stdin=read, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
            )
        finally:
            os.close(read)
        self.pid = self._proc.pid

    def _send(self, line: str) -> None:
        try:
            os.write(self._write, line.encode("ascii"))
        except OSError as e:
            log.warn("The process-group sentinel is gone ({error})", error=e)

    def watch(self, pgid: int) -> None:
        """Kill group PGID if this process dies before L{unwatch}."""
        self._send(f"+{pgid}\n")

    def unwatch(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self, timeout: float = 5.0) -> None:
        """End the sentinel (it kills whatever is still listed) and reap it."""
        try:
            os.close(self._write)
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_sentinel: GroupSentinel | None = None


def closeGroupSentinel() -> None:
    """At a clean shutdown: end and reap the sentinel, so it does not outlive us."""
    global _sentinel
    if _sentinel is not None:
        sentinel, _sentinel = _sentinel, None
        sentinel.close()


def groupSentinel() -> GroupSentinel:
    """The process's one L{GroupSentinel}, started on first use."""
    global _sentinel
    if _sentinel is None or _sentinel._proc.poll() is not None:
        _sentinel = GroupSentinel()
    return _sentinel


_SIGNAL_NAMES: dict[int, str] = {signal.SIGTERM: "TERM", signal.SIGKILL: "KILL", signal.SIGINT: "INT"}


class SupervisedProcess(protocol.ProcessProtocol):
    """
    The life of one long-lived child process in its own process group:
    L{spawn} it, learn when it has L{ended}, L{terminate} it (TERM, then
    KILL after a grace period) or L{kill} it.  Subclasses add what "ready"
    means for their tool by overriding L{childDataReceived}.

    L{whenEnded}, L{terminate} and L{kill} fire (never errback) with the
    exit reason exception (L{error.ProcessDone} or
    L{error.ProcessTerminated}) once the process has exited and been
    reaped.

    @ivar name: a short name for log lines and errors.
    @ivar stderr: the last L{STDERR_KEEP} bytes it wrote on standard error.
    """

    #: File descriptors of the child; subclasses may add their own.
    childFDs: dict[int, int | str] = {0: "w", 1: "r", 2: "r"}

    def __init__(self, name: str, clock: IReactorTime) -> None:
        self.name = name
        self.clock = clock
        self.stderr = bytearray()
        self.exited = False
        self.reason: BaseException | None = None
        self.pid: int | None = None
        self._waiters: list[defer.Deferred[BaseException]] = []
        self._killTimer: Any = None

    def spawn(
        self,
        reactor: IReactorProcess,
        argv: Sequence[str],
        env: Mapping[str, str],
        path: str | None = None,
    ) -> SupervisedProcess:
        """
        Start ARGV as a detached child (its own session and process group,
        killed by the kernel if this process dies).

        @return: C{self}.
        @raise OSError: when it cannot be started.
        """
        reactor.spawnProcess(
            self, DETACH[0], [*DETACH, *argv], env=dict(env),
            childFDs=dict(self.childFDs), path=path,
        )
        assert self.pid is not None
        return self

    # -- ProcessProtocol

    def connectionMade(self) -> None:
        # A child that exits at once is reaped inside spawnProcess, and its
        # transport forgets its pid then: note it now, and have the sentinel
        # watch its group now, before processEnded can unwatch it.
        self.pid = self.transport.pid  # type: ignore[union-attr]
        if isinstance(self.transport, _posixProcess.Process) and self.pid is not None:
            groupSentinel().watch(self.pid)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            _tail(self.stderr, data)

    def processEnded(self, reason: Failure) -> None:
        self.exited = True
        self.reason = reason.value
        if self._killTimer is not None and self._killTimer.active():
            self._killTimer.cancel()
        self._killTimer = None
        # Children of the child die with its group.
        if self.transport is not None:
            signalGroup(self.transport, signal.SIGKILL)
            if isinstance(self.transport, _posixProcess.Process) and self.pid is not None:
                groupSentinel().unwatch(self.pid)
        self.ended(reason.value)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(reason.value)

    def ended(self, reason: BaseException) -> None:
        """Called once the process has exited; for subclasses."""

    # -- the Deferred API

    def stderrText(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def lastError(self) -> str:
        """The last meaningful line it wrote on standard error, or C{""}."""
        lines = [line.strip() for line in self.stderrText().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def whenEnded(self) -> defer.Deferred[BaseException]:
        """@return: C{Deferred} firing with the exit reason."""
        if self.exited:
            assert self.reason is not None
            return defer.succeed(self.reason)
        d: defer.Deferred[BaseException] = defer.Deferred()
        self._waiters.append(d)
        return d

    def signal(self, sig: int) -> None:
        """Send SIG to its process group, if it still runs."""
        if not self.exited and self.transport is not None:
            signalGroup(self.transport, sig)

    def terminate(self, grace: float = 5.0) -> defer.Deferred[BaseException]:
        """
        Send TERM to the process group, then KILL after GRACE seconds.

        @return: C{Deferred} firing with the exit reason once reaped.
        """
        if not self.exited:
            self.signal(signal.SIGTERM)
            self.killAfter(grace)
        return self.whenEnded()

    def killAfter(self, grace: float) -> None:
        """KILL the process group in GRACE seconds unless it ended by then."""
        if not self.exited and self._killTimer is None:
            self._killTimer = self.clock.callLater(grace, self._graceOver)

    def _graceOver(self) -> None:
        self._killTimer = None
        self.killing()
        self.signal(signal.SIGKILL)

    def killing(self) -> None:
        """Called when the grace period ran out; for subclasses."""

    def kill(self) -> defer.Deferred[BaseException]:
        """KILL the process group at once.  @return: as L{terminate}."""
        self.signal(signal.SIGKILL)
        return self.whenEnded()
