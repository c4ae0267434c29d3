"""
xdotool as one long-lived child instead of one process per action.

C{xdotool -} reads commands from its standard input and runs each line as
soon as it has read it, in one X connection: an action then costs a pipe
write and a round trip instead of a fork, an exec, dynamic linking and an
X connection set-up.  After each command line the channel sends
C{getmouselocation}: its answer (a QueryPointer round trip on xdotool's
own connection, so the X server has processed every request before it) is
the acknowledgement, and once it arrives the input is visible to every
other X client.

xdotool writes its errors (an unknown command, a bad argument, an unknown
key name) on standard error and goes on with the next line.  Its standard
output and standard error are one pipe here, so an error is read before
the acknowledgement of the command that caused it: a command with any
output before its acknowledgement failed, with that output as the reason.

A command that gets no acknowledgement within the timeout kills the
process (its whole group) and fails, with every command queued behind it;
so does the process's death.  The owner then starts a fresh one for the
next command (L{XdotoolProcess.usable}).
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.process import ProcessReader
from twisted.logger import Logger
from twisted.python.failure import Failure

from agentdesktop.errors import DesktopError, ToolTimeout
from agentdesktop.process import SupervisedProcess

log = Logger()

#: Arguments xdotool's script reader takes literally: no white space (it
#: splits lines on it), no C{$} or C{%} (positional and window-stack
#: references), nothing that starts a comment.  Anything else goes to a
#: one-off xdotool process instead, as an argv.
_LITERAL = re.compile(r"[A-Za-z0-9_+.-]+\Z")
_ACK = re.compile(rb"x:-?\d+ y:-?\d+ screen:\d+ window:\d+\Z")
_ACK_COMMAND = b"getmouselocation"
_MAX_ERROR_LINES = 20


class XdotoolError(DesktopError):
    """xdotool reported an error for a command (its message is the detail)."""


def literal(args: Sequence[str]) -> bool:
    """Whether ARGS can be sent as one command line (L{_LITERAL})."""
    return bool(args) and all(_LITERAL.match(a) for a in args)


@dataclass
class _Command:
    done: defer.Deferred[None]
    timer: IDelayedCall
    output: list[str] = field(default_factory=list)


class XdotoolProcess(SupervisedProcess):
    """
    One C{xdotool -} child: L{run} sends it a command and fires once the X
    server has processed it.  Commands are answered in the order sent.
    """

    #: Standard output and standard error: one pipe, made in L{spawn}.
    OUTPUT = "output"

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        super().__init__("xdotool", clock)
        self.timeout = timeout
        self.broken = False
        self._queue: deque[_Command] = deque()
        self._partial = b""
        self._reader: ProcessReader | None = None

    def start(
        self, reactor: IReactorProcess, xdotool: str, env: Mapping[str, str]
    ) -> XdotoolProcess:
        """
        Start C{xdotool -} (line-buffered, so that an answer is not held
        in its buffer) with both output streams on one pipe.

        @raise OSError: when it cannot be started.
        """
        readFD, writeFD = os.pipe()
        self.childFDs = {0: "w", 1: writeFD, 2: writeFD}
        try:
            self.spawn(reactor, ["stdbuf", "-oL", xdotool, "-"], env)
        except BaseException:
            os.close(readFD)
            raise
        finally:
            os.close(writeFD)
        self._reader = ProcessReader(reactor, self, self.OUTPUT, readFD)
        return self

    @property
    def usable(self) -> bool:
        """Whether commands may still be sent to it."""
        return not self.exited and not self.broken

    def run(self, args: Sequence[str]) -> defer.Deferred[None]:
        """
        Send ARGS (L{literal} ones) as one command line.

        @return: C{Deferred} firing once the X server has processed it;
            fails with L{XdotoolError} when xdotool reported an error,
            L{ToolTimeout} or L{DesktopError} when the process hung or died.
        """
        if not self.usable or self.transport is None:
            return defer.fail(DesktopError("xdotool is not running"))
        if not literal(args):
            return defer.fail(ValueError(f"not literal xdotool arguments: {list(args)!r}"))
        command = _Command(defer.Deferred(), self.clock.callLater(self.timeout, self._expired))
        self._queue.append(command)
        self.transport.write(" ".join(args).encode("ascii") + b"\n" + _ACK_COMMAND + b"\n")
        return command.done

    # -- what xdotool says

    def childDataReceived(self, childFD: Any, data: bytes) -> None:
        if childFD != self.OUTPUT:
            super().childDataReceived(childFD, data)
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not self._queue:
            if line.strip():
                log.warn("xdotool said, unasked: {line}", line=line.decode("utf-8", "replace"))
            return
        if not _ACK.match(line):
            output = self._queue[0].output
            if line.strip() and len(output) < _MAX_ERROR_LINES:
                output.append(line.decode("utf-8", "replace").strip())
            return
        command = self._queue.popleft()
        if command.timer.active():
            command.timer.cancel()
        if command.output:
            command.done.errback(XdotoolError("xdotool: " + "; ".join(command.output)))
        else:
            command.done.callback(None)

    def childConnectionLost(self, childFD: Any, reason: object = None) -> None:
        # The output pipe's reader calls this with a reason too.
        if childFD == self.OUTPUT and self._reader is not None:
            os.close(self._reader.fd)
            self._reader = None

    # -- failures

    def _expired(self) -> None:
        self._failAll(ToolTimeout(f"xdotool did not answer within {self.timeout:g} s"))
        self.kill()

    def ended(self, reason: BaseException) -> None:
        if self._reader is not None:
            self._reader.loseConnection()
        self._failAll(DesktopError(f"xdotool exited: {reason}"))

    def _failAll(self, error: Exception) -> None:
        self.broken = True
        queue, self._queue = self._queue, deque()
        for command in queue:
            if command.timer.active():
                command.timer.cancel()
            command.done.errback(Failure(error))
