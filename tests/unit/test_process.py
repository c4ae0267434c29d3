"""
The process protocols with a fake process reactor: a supervised child's
stop with grace, Xvnc's display report.
"""

from __future__ import annotations

from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import DesktopError
from agentdesktop.process import STDERR_KEEP, SupervisedProcess
from agentdesktop.testing import FakeProcessReactor
from agentdesktop.x11.xvnc import XvncProcess


class SupervisedProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.reactor.dieOnSignal = False

    def spawn(self) -> SupervisedProcess:
        return SupervisedProcess("tool", self.reactor).spawn(self.reactor, ["tool", "-x"], {"A": "1"})

    def test_detached(self) -> None:
        child = self.spawn()
        [p] = self.reactor.spawned
        self.assertEqual(p.argv, ["setsid", "setpriv", "--pdeathsig", "KILL", "--", "tool", "-x"])
        self.assertEqual(child.pid, p.pid)
        self.assertEqual(p.env, {"A": "1"})

    def test_terminateThenKill(self) -> None:
        child = self.spawn()
        [p] = self.reactor.spawned
        ended = child.terminate(grace=3)
        self.assertEqual(p.signals, ["TERM"])
        self.reactor.advance(2.9)
        self.assertEqual(p.signals, ["TERM"])
        self.reactor.advance(0.2)
        self.assertEqual(p.signals, ["TERM", "KILL"])
        self.assertNoResult(ended)
        p.end(error.ProcessTerminated(signal=9))
        self.assertIsInstance(self.successResultOf(ended), error.ProcessTerminated)
        self.assertTrue(child.exited)

    def test_endsWithinGrace(self) -> None:
        child = self.spawn()
        [p] = self.reactor.spawned
        ended = child.terminate(grace=3)
        p.end()
        self.assertIsInstance(self.successResultOf(ended), error.ProcessDone)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        # Signalling an ended child does nothing.
        child.signal(15)
        self.assertEqual(p.signals, ["TERM"])
        self.assertIsInstance(self.successResultOf(child.kill()), error.ProcessDone)

    def test_stderrTail(self) -> None:
        child = self.spawn()
        [p] = self.reactor.spawned
        p.output(2, b"x" * STDERR_KEEP)
        p.output(2, b"\nlast words\n")
        self.assertEqual(len(child.stderr), STDERR_KEEP)
        self.assertEqual(child.lastError(), "last words")


class XvncProcessTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.xvnc = XvncProcess(self.reactor, startTimeout=10)
        self.xvnc.spawn(self.reactor, ["Xvnc"], {})
        [self.p] = self.reactor.spawned

    def test_displayAcrossWrites(self) -> None:
        d = self.xvnc.displayReady()
        self.p.output(3, b"1")
        self.assertNoResult(d)
        self.p.output(3, b"2\n")
        self.assertEqual(self.successResultOf(d), ":12")
        self.assertEqual(self.successResultOf(self.xvnc.displayReady()), ":12")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_exitBeforeReady(self) -> None:
        d = self.xvnc.displayReady()
        self.p.output(2, b"(EE)\nXvnc TigerVNC warning: something\n(EE) no screens found\n")
        self.p.end(error.ProcessTerminated(1))
        e = self.failureResultOf(d, DesktopError).value
        self.assertEqual(str(e), "Xvnc exited before its display was ready: (EE) no screens found")

    def test_timeout(self) -> None:
        d = self.xvnc.displayReady()
        self.reactor.advance(10)
        self.failureResultOf(d, DesktopError)
        self.assertTrue(self.p.ended)
