"""
L{XdotoolProcess}, the long-lived C{xdotool -}: what it is sent, how its
answers, errors, silence and death are read.  A fake process reactor plays
xdotool's part: no X server, no child process.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import DesktopError, ToolTimeout
from agentdesktop.process import DETACH
from agentdesktop.testing import FakeProcess, FakeProcessReactor
from agentdesktop.x11.xdotool import XdotoolError, XdotoolProcess, literal

ACK = b"x:10 y:20 screen:0 window:1234\n"


class LiteralTests(SynchronousTestCase):
    def test_literal(self) -> None:
        """Only tokens xdotool's script reader takes as they are go on a line."""
        self.assertTrue(literal(["key", "--delay", "0", "ctrl+shift+t", "U1F642"]))
        self.assertTrue(literal(["mousemove", "10", "20", "click", "--repeat", "2", "1"]))
        for bad in (["type", "a b"], ["key", "$1"], ["key", "%@"], ["key", "a\nkey"],
                    ["key", "#"], ["key", ""], [], ["key", "é"]):
            self.assertFalse(literal(bad), bad)


class ChannelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.channel = XdotoolProcess(self.reactor, timeout=5)
        self.channel.start(self.reactor, "xdotool", {"DISPLAY": ":9"})
        self.process: FakeProcess = self.reactor.spawned[-1]
        self.addCleanup(self.finish)

    def finish(self) -> None:
        self.process.end()
        self.reactor.advance(0)  # the output reader closes its pipe

    def say(self, data: bytes) -> None:
        self.process.output(XdotoolProcess.OUTPUT, data)  # type: ignore[arg-type]

    def test_started(self) -> None:
        """
        C{xdotool -}, line-buffered, detached like every long-lived child,
        on the desktop's display, with standard output and error on one
        pipe that the reactor reads.
        """
        self.assertEqual(self.process.argv, [*DETACH, "stdbuf", "-oL", "xdotool", "-"])
        self.assertEqual(self.process.env, {"DISPLAY": ":9"})
        fds: Any = self.process.childFDs
        self.assertEqual(fds[0], "w")
        self.assertIsInstance(fds[1], int)
        self.assertEqual(fds[1], fds[2])
        self.assertEqual(len(self.reactor.readers), 1)

    def test_acknowledged(self) -> None:
        """
        A command goes as one line followed by C{getmouselocation}; the
        answer to that (a round trip to the X server) fires its Deferred.
        """
        d = self.channel.run(["mousemove", "10", "20", "click", "--delay", "0", "1"])
        self.assertEqual(self.process.written,
                         b"mousemove 10 20 click --delay 0 1\ngetmouselocation\n")
        self.assertNoResult(d)
        self.say(ACK[:7])
        self.assertNoResult(d)
        self.say(ACK[7:])
        self.assertIsNone(self.successResultOf(d))

    def test_inOrder(self) -> None:
        """Answers are matched to commands in the order they were sent."""
        first = self.channel.run(["mousedown", "1"])
        second = self.channel.run(["mouseup", "1"])
        self.say(ACK + b"(symbol) No such key name 'x'. Ignoring it.\n")
        self.successResultOf(first)
        self.assertNoResult(second)
        self.say(ACK)
        self.failureResultOf(second, XdotoolError)

    def test_error(self) -> None:
        """
        Anything xdotool writes before a command's acknowledgement is that
        command's error, reported with xdotool's words.
        """
        d = self.channel.run(["key", "--delay", "0", "nosuchkey"])
        self.say(b"(symbol) No such key name 'nosuchkey'. Ignoring it.\n\n" + ACK)
        failure = self.failureResultOf(d, XdotoolError)
        self.assertEqual(str(failure.value),
                         "xdotool: (symbol) No such key name 'nosuchkey'. Ignoring it.")
        self.assertTrue(self.channel.usable)
        later = self.channel.run(["mousemove", "1", "1"])
        self.say(ACK)
        self.successResultOf(later)

    def test_unaskedOutputIgnored(self) -> None:
        """Output with no command waiting does not fail the next one."""
        self.say(b"stray\n")
        d = self.channel.run(["mousemove", "1", "1"])
        self.say(ACK)
        self.successResultOf(d)

    def test_notLiteral(self) -> None:
        """Arguments that are not literal are refused, not sent."""
        self.failureResultOf(self.channel.run(["type", "a b"]), ValueError)
        self.assertEqual(self.process.written, b"")

    def test_timeout(self) -> None:
        """
        No answer within the timeout: every waiting command fails, the
        process group is killed and the channel is no longer used.
        """
        first = self.channel.run(["mousemove", "1", "1"])
        self.reactor.advance(1)
        second = self.channel.run(["mousemove", "2", "2"])
        self.reactor.advance(4)
        self.failureResultOf(first, ToolTimeout)
        self.failureResultOf(second, ToolTimeout)
        self.assertEqual(self.process.signals, ["KILL"])
        self.assertFalse(self.channel.usable)
        self.failureResultOf(self.channel.run(["mousemove", "1", "1"]), DesktopError)

    def test_answerCancelsTimer(self) -> None:
        d = self.channel.run(["mousemove", "1", "1"])
        self.say(ACK)
        self.successResultOf(d)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_died(self) -> None:
        """Its death fails what was waiting; it is not used again."""
        d = self.channel.run(["mousemove", "1", "1"])
        self.process.end(error.ProcessTerminated(exitCode=1))
        failure = self.failureResultOf(d, DesktopError)
        self.assertIn("xdotool exited", str(failure.value))
        self.assertFalse(self.channel.usable)
        self.reactor.advance(0)
        self.assertEqual(self.reactor.readers, [])
