"""
L{X11Desktop}'s clipboard, windows and launcher policy, with a fake process
reactor and fake X connections: no X server, no child process.
"""

from __future__ import annotations

import os

from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import DesktopError, UnknownWindow
from agentdesktop.interfaces import MAX_CLIPBOARD_BYTES, WindowInfo
from agentdesktop.testing import FakeProcess, FakeProcessReactor, FakeXConnections
from agentdesktop.x11 import DesktopConfig, X11Desktop


def window(windowId: int, pid: int | None, title: str = "w") -> WindowInfo:
    return WindowInfo(windowId, title, "App", pid, 10, 20, 300, 200, False, False, False)


class RunningDesktop(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.x = FakeXConnections()
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        self.bin = os.path.abspath(self.mktemp())
        os.makedirs(self.bin)
        for name in ("app", "xdg-open"):
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(path, 0o755)
        self.desktop = X11Desktop(
            self.reactor,
            # No accessibility buses (a missing binary is allowed): these
            # tests are about launched programs.
            DesktopConfig(runtimeDir=runtime, windowManager=None, stopGrace=5, desktop="minimal",
                          extraEnv={"PATH": self.bin},
                          dbusDaemon=os.path.join(self.bin, "no-dbus-daemon")),
            x=self.x,
        )
        d = self.desktop.start()
        self.reactor.named("Xvnc")[0].output(3, b"9\n")
        self.info = self.successResultOf(d)

    def process(self, pid: int) -> FakeProcess:
        [p] = [p for p in self.reactor.spawned if p.pid == pid]
        return p


class Launching(RunningDesktop):
    def test_launchIsADetachedChildOnTheDisplay(self) -> None:
        result = self.successResultOf(self.desktop.launch(["app", "--flag", "-x"], False, 0))
        self.assertIsNone(result.window)
        child = self.process(result.process.pid)
        self.assertEqual(child.argv[:5], ["setsid", "setpriv", "--pdeathsig", "KILL", "--"])
        self.assertEqual(child.command, ["app", "--flag", "-x"])
        self.assertEqual((child.env["DISPLAY"], child.env["XAUTHORITY"]),
                         (":9", self.info.xauthority))
        self.assertEqual(self.desktop.launched(), [result.process])
        self.assertEqual(result.process.command, ("app", "--flag", "-x"))
        child.end()
        self.assertEqual(self.desktop.launched(), [])

    def test_programThatExitsAtOnce(self) -> None:
        """
        A program that has exited (and been reaped) before spawnProcess
        returned still has its pid (schemathesis found a 500 here).
        """
        self.reactor.tools.append(lambda argv: (b"", None) if argv[0] == "app" else None)
        result = self.successResultOf(self.desktop.launch(["app"], True, 1000))
        self.assertIsNone(result.window)
        self.assertEqual(result.process.pid, self.reactor.spawned[-1].startPid)
        self.assertEqual(self.desktop.launched(), [])

    def test_missingProgramStartsNothing(self) -> None:
        count = len(self.reactor.spawned)
        for argv in (["no-such-app"], ["/no/such/path"], [os.path.join(self.bin)], []):
            self.failureResultOf(self.desktop.launch(argv, True, 1000), ValueError)
        e = self.failureResultOf(self.desktop.launch(["no-such-app"], False, 0)).value
        self.assertIn("no-such-app", str(e))
        self.assertEqual(len(self.reactor.spawned), count)
        # Checked before the window list is even looked at.
        self.assertNotIn("listWindows", [name for _, name, _ in self.x.calls])

    def test_firstNewWindowOfTheProcess(self) -> None:
        # A window that was there before, with the pid the child will get.
        self.x.windowList = [window(1, None), window(2, self.reactor.nextPid)]
        d = self.desktop.launch(["app"], True, 5000)
        self.assertNoResult(d)
        [child] = self.reactor.named("app")
        self.assertEqual(child.pid, self.x.windowList[1].pid)
        # A new window of another process does not count; a new one of its own does.
        self.x.windowList.append(window(3, 777))
        self.reactor.advance(0.1)
        self.assertNoResult(d)
        self.x.windowList.append(window(4, child.pid, "mine"))
        self.reactor.advance(0.1)
        self.assertEqual(self.successResultOf(d).window, window(4, child.pid, "mine"))
        self.assertEqual({lane for lane, name, _ in self.x.calls if name == "listWindows"},
                         {"windows"})

    def test_windowOfADescendant(self) -> None:
        d = self.desktop.launch(["app"], True, 5000)
        [child] = self.reactor.named("app")
        assert child.pid is not None
        self.desktop._launcher.parents = lambda: {500: child.pid, 501: 500, 600: 1}
        self.x.windowList = [window(7, 600), window(8, 501, "grandchild")]
        self.reactor.advance(0.1)
        self.assertEqual(self.successResultOf(d).window.title, "grandchild")  # type: ignore[union-attr]

    def test_noWindowInTimeKeepsItRunning(self) -> None:
        d = self.desktop.launch(["app"], True, 1000)
        self.reactor.pump([0.1] * 11)
        result = self.successResultOf(d)
        self.assertIsNone(result.window)
        [child] = self.reactor.named("app")
        self.assertEqual((child.signals, child.ended), ([], False))
        self.assertEqual(self.desktop.launched(), [result.process])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_exitBeforeAWindowEndsTheWait(self) -> None:
        d = self.desktop.launch(["app"], True, 10000)
        self.reactor.named("app")[0].end(error.ProcessTerminated(1))
        self.reactor.advance(0.1)
        self.assertIsNone(self.successResultOf(d).window)

    def test_stoppedWithTheDesktop(self) -> None:
        self.desktop.launch(["app"], False, 0)
        self.successResultOf(self.desktop.openTarget("https://example.org/"))
        children = self.reactor.named("app") + self.reactor.named(os.path.join(self.bin, "xdg-open"))
        self.assertEqual(len(children), 2)
        self.successResultOf(self.desktop.stop())
        self.assertEqual([p.signals[:1] for p in children], [["TERM"], ["TERM"]])
        self.assertTrue(all(p.ended for p in children))

    def test_stoppedWhenXvncDies(self) -> None:
        self.desktop.launch(["app"], False, 0)
        [child] = self.reactor.named("app")
        self.reactor.named("Xvnc")[0].end(error.ProcessTerminated(signal=9))
        self.assertEqual(child.signals[:1], ["TERM"])

    def test_open(self) -> None:
        launched = self.successResultOf(self.desktop.openTarget("https://example.org/a b"))
        child = self.process(launched.pid)
        self.assertEqual(child.command, [os.path.join(self.bin, "xdg-open"),
                                         "https://example.org/a b"])
        for bad in ("", "relative", "/no/such/file", "-rf"):
            self.failureResultOf(self.desktop.openTarget(bad), ValueError)
        os.unlink(os.path.join(self.bin, "xdg-open"))
        e = self.failureResultOf(self.desktop.openTarget("https://example.org/"), DesktopError)
        self.assertIn("xdg-open", str(e.value))


class ClipboardAndWindows(RunningDesktop):
    def test_clipboard(self) -> None:
        self.successResultOf(self.desktop.writeClipboard("primary", "héllo 🙂"))
        self.assertEqual(self.x.selections, {"primary": "héllo 🙂"})
        self.assertEqual(self.successResultOf(self.desktop.readClipboard("primary")), "héllo 🙂")
        self.assertIsNone(self.successResultOf(self.desktop.readClipboard("clipboard")))
        self.assertIn(("clipboard", "readSelection", ("primary", 5.0)), self.x.calls)
        self.failureResultOf(self.desktop.readClipboard("secondary"), ValueError)
        self.failureResultOf(self.desktop.writeClipboard("secondary", "x"), ValueError)
        big = "é" * (MAX_CLIPBOARD_BYTES // 2 + 1)
        self.failureResultOf(self.desktop.writeClipboard("clipboard", big), ValueError)
        self.failureResultOf(self.desktop.writeClipboard("clipboard", "\ud800"), ValueError)

    def test_windows(self) -> None:
        self.x.windowList = [window(5, 1)]
        self.assertEqual(self.successResultOf(self.desktop.windows()), [window(5, 1)])
        self.assertEqual(self.successResultOf(self.desktop.windowAction(5, "focus")),
                         window(5, 1))
        self.failureResultOf(self.desktop.windowAction(6, "focus"), UnknownWindow)
        self.failureResultOf(self.desktop.windowAction(5, "explode"), ValueError)

    def test_notRunning(self) -> None:
        self.successResultOf(self.desktop.stop())
        for d in (self.desktop.windows(), self.desktop.readClipboard("clipboard"),
                  self.desktop.writeClipboard("clipboard", "x"),
                  self.desktop.launch(["app"], False, 0),
                  self.desktop.openTarget("https://example.org/")):
            self.failureResultOf(d, DesktopError)
