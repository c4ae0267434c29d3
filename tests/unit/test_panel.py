"""
The default desktop's policy (background, panel, readiness, the panel's
buttons, restarts, shutdown) with the fakes, and its pure parts (the
panel's configuration, Chromium's command line): no X server, no child
process.
"""

from __future__ import annotations

import os
import re

from twisted.internet import defer, error
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import DesktopError
from agentdesktop.testing import FakeAtspiWorker, FakeProcess, FakeProcessReactor, FakeXConnections
from agentdesktop.x11 import DesktopConfig, X11Desktop
from agentdesktop.x11 import desktop as xdesktop
from agentdesktop.x11 import panel
from tests.unit.test_desktop import fakeBinary


class DefaultDesktop(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.x = FakeXConnections(size=(1280, 800))
        self.runtime = os.path.abspath(self.mktemp())
        os.makedirs(self.runtime)
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(self.home)
        self.dbus = fakeBinary(self, "dbus-daemon")
        bin = os.path.dirname(self.dbus)
        for name in ("xterm", "chromium", "l3afpad"):
            open(os.path.join(bin, name), "w").close()
            os.chmod(os.path.join(bin, name), 0o755)
        self.patch(xdesktop, "geteuid", lambda: 0)
        self.desktop = X11Desktop(
            self.reactor,
            DesktopConfig(width=1280, height=800, runtimeDir=self.runtime,
                          autostart=[["xclock"]], stopGrace=5, dbusDaemon=self.dbus,
                          atspiBusLauncher=fakeBinary(self, "at-spi-bus-launcher"),
                          extraEnv={"PATH": bin, "HOME": self.home}),
            x=self.x,
            a11yWorker=FakeAtspiWorker(),
        )

    def started(self, number: bytes = b"7") -> None:
        self.reactor.named("Xvnc")[-1].output(3, number + b"\n")
        self.reactor.named(self.dbus)[-1].output(3, b"unix:path=/nonexistent/bus,guid=1\n")

    def programs(self) -> list[str]:
        return [os.path.basename(p.command[0]) for p in self.reactor.spawned]

    def panels(self) -> list[FakeProcess]:
        return self.reactor.named("tint2")

    def test_backgroundThenPanelThenAutostart(self) -> None:
        d = self.desktop.start()
        self.started()
        info = self.successResultOf(d)
        self.assertEqual(self.programs(),
                         ["Xvnc", "dbus-daemon", "at-spi-bus-launcher", "openbox", "tint2", "xclock"])
        self.assertEqual(self.x.background, panel.BACKGROUND)
        calls = [name for _, name, _ in self.x.calls]
        self.assertLess(calls.index("hasWindowManager"), calls.index("paintBackground"))
        self.assertLess(calls.index("paintBackground"), calls.index("panelShown"))
        # The panel runs on the desktop, with its configuration from the
        # private directory; its buttons write to the FIFO beside it.
        [tint2] = self.panels()
        self.assertEqual(tint2.command[:2], ["tint2", "-c"])
        config = tint2.command[2]
        directory = os.path.dirname(info.xauthority)
        self.assertEqual(os.path.dirname(config), directory)
        self.assertEqual(tint2.env["DISPLAY"], ":7")
        with open(config) as f:
            text = f.read()
        fifo = os.path.join(directory, panel.REQUESTS_NAME)
        for name in ("terminal", "browser", "editor"):
            self.assertIn(f"button_lclick_command = echo {name} > {fifo}\n", text)
        self.assertEqual(os.stat(fifo).st_mode & 0o777, 0o600)
        # Started means started.
        self.successResultOf(self.desktop.start())
        self.assertEqual(len(self.panels()), 1)

    def test_readyOnlyOnceThePanelShows(self) -> None:
        self.x.panelUp = False
        d = self.desktop.start()
        self.started()
        self.assertNoResult(d)
        self.reactor.advance(0.05)
        self.assertNoResult(d)
        self.assertNotIn("xclock", self.programs())
        self.x.panelUp = True
        self.reactor.advance(0.05)
        self.successResultOf(d)
        self.assertIn("xclock", self.programs())

    def test_panelThatNeverShowsIsUsedAnyway(self) -> None:
        self.x.panelUp = False
        d = self.desktop.start()
        self.started()
        self.reactor.pump([0.05] * int(self.desktop.config.panelTimeout / 0.05 + 1))
        self.successResultOf(d)

    def test_panelThatExitsAtOnce(self) -> None:
        """A panel that dies before it shows does not hold the desktop up."""
        self.x.panelUp = False
        d = self.desktop.start()
        self.started()
        self.panels()[0].end(error.ProcessTerminated(signal=11))
        self.reactor.advance(0.05)
        self.successResultOf(d)

    def test_buttonsStartLaunchedPrograms(self) -> None:
        """
        A button's line in the FIFO starts its program as a launched
        program of the desktop, in the home directory; anything else is
        ignored.
        """
        self.desktop.start()
        self.started()
        [reader] = self.reactor.readers
        with open(os.path.join(self.desktop._makeDir(), panel.REQUESTS_NAME), "w") as f:
            f.write("terminal\nnonsense\nedi")
        reader.doRead()
        with open(reader.path, "w") as f:
            f.write("tor\n")
        reader.doRead()
        xterm, l3afpad = self.reactor.spawned[-2:]
        self.assertEqual(xterm.command, list(panel.panelPrograms(False, "")[0].argv))
        self.assertEqual(l3afpad.command, ["l3afpad"])
        self.assertEqual(xterm.env["DISPLAY"], ":7")
        self.assertEqual([launched.command[0] for launched in self.desktop.launched()], ["xterm", "l3afpad"])
        self.assertEqual(self.reactor.spawned[-1].argv[:2], ["setsid", "setpriv"])
        self.assertEqual((xterm.path, l3afpad.path), (self.home, self.home))

    def test_browserHasTheDesktopsOwnProfile(self) -> None:
        """Not the user's: a Chromium on another desktop would take the window."""
        info = self.successResultOf(self.start())
        [reader] = self.reactor.readers
        with open(reader.path, "w") as f:
            f.write("browser\n")
        reader.doRead()
        [chromium] = self.reactor.named("chromium")
        profile = os.path.join(os.path.dirname(info.xauthority), "chromium")
        self.assertEqual(chromium.command[:2], ["chromium", f"--user-data-dir={profile}"])
        self.assertEqual(chromium.command[-1], "--no-sandbox")  # as root (patched)

    def start(self) -> defer.Deferred:
        d = self.desktop.start()
        self.started()
        return d

    def test_missingProgramHasNoButton(self) -> None:
        os.unlink(os.path.join(os.path.dirname(self.dbus), "l3afpad"))
        self.desktop.start()
        self.started()
        with open(self.panels()[0].command[2]) as f:
            text = f.read()
        self.assertIn("panel_items = PPT\n", text)
        self.assertNotIn("l3afpad", text)
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_panelRestartedAlone(self) -> None:
        self.desktop.start()
        self.started()
        self.panels()[0].end(error.ProcessTerminated(signal=11))
        self.x.background = None
        self.successResultOf(self.desktop.start())
        self.assertEqual(len(self.reactor.named("Xvnc")), 1)
        self.assertEqual(len(self.panels()), 2)
        self.assertIsNone(self.x.background)

    def test_restartAfterXvncCrash(self) -> None:
        self.desktop.start()
        self.started(b"7")
        first = self.panels()[0]
        self.reactor.named("Xvnc")[0].end(error.ProcessTerminated(signal=9))
        self.assertEqual(first.signals, ["TERM"])
        self.x.background = None
        d = self.desktop.start()
        self.started(b"8")
        self.successResultOf(d)
        self.assertEqual(len(self.panels()), 2)
        self.assertEqual(self.panels()[1].env["DISPLAY"], ":8")
        self.assertEqual(self.x.background, panel.BACKGROUND)

    def test_shutdownStopsThePanel(self) -> None:
        self.desktop.start()
        self.started()
        tint2 = self.panels()[0]
        self.successResultOf(self.desktop.stop())
        self.assertEqual(tint2.signals, ["TERM"])
        self.assertEqual(self.reactor.readers, [])
        self.assertEqual(os.listdir(self.runtime), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.failureResultOf(self.desktop.start(), DesktopError)


class Sandbox(SynchronousTestCase):
    """Chromium's sandbox: on only where it can work."""

    def desktop(self, probe: BaseException | None) -> tuple[X11Desktop, FakeProcessReactor]:
        reactor = FakeProcessReactor()
        reactor.tools.append(lambda argv: (b"", probe) if argv[0] == "unshare" else None)
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        d = X11Desktop(reactor, DesktopConfig(runtimeDir=runtime, dbusDaemon=fakeBinary(self, "dbus-daemon")),
                       x=FakeXConnections(), a11yWorker=FakeAtspiWorker())
        return d, reactor

    def sandboxed(self, probe: BaseException | None) -> tuple[bool, list[list[str]]]:
        desktop, reactor = self.desktop(probe)
        result = self.successResultOf(defer.Deferred.fromCoroutine(desktop._chromiumSandbox()))
        return result, [p.command for p in reactor.named("unshare")]

    def test_userNamespaces(self) -> None:
        self.patch(xdesktop, "geteuid", lambda: 1000)
        self.assertEqual(self.sandboxed(None),
                         (True, [["unshare", "--user", "--pid", "--net", "--fork", "true"]]))

    def test_noUserNamespaces(self) -> None:
        self.patch(xdesktop, "geteuid", lambda: 1000)
        sandbox, probes = self.sandboxed(error.ProcessTerminated(1))
        self.assertFalse(sandbox)
        self.assertEqual(len(probes), 1)

    def test_rootNeverProbes(self) -> None:
        self.patch(xdesktop, "geteuid", lambda: 0)
        self.assertEqual(self.sandboxed(None), (False, []))

    def test_flags(self) -> None:
        self.assertNotIn("--no-sandbox", panel.chromiumArgv(True, "/p"))
        self.assertEqual(panel.chromiumArgv(False, "/p")[-1], "--no-sandbox")
        self.assertEqual(panel.chromiumArgv(True, "/p")[:2], ("chromium", "--user-data-dir=/p"))


class Config(SynchronousTestCase):
    def render(self) -> str:
        return panel.renderConfig(panel.panelPrograms(True, "/p"), "/run/x y/panel-requests")

    def test_buttons(self) -> None:
        text = self.render()
        self.assertIn("panel_items = PPPT\n", text)
        self.assertEqual(re.findall(r"^button_text = (.*)$", text, re.M), ["Terminal", "Browser", "Text editor"])
        self.assertEqual(re.findall(r"^button_lclick_command = (.*)$", text, re.M)[1],
                         "echo browser > '/run/x y/panel-requests'")
        self.assertNotIn("$", text)

    def test_nothingChangesByItself(self) -> None:
        """No clock, no battery, no tooltips, no blinking, no startup notification."""
        text = self.render()
        items = re.search(r"^panel_items = (.*)$", text, re.M)
        assert items is not None
        self.assertNotIn("C", items.group(1))
        self.assertNotIn("B", items.group(1))
        for line in ("task_tooltip = 0", "launcher_tooltip = 0", "urgent_nb_of_blink = 0",
                     "startup_notifications = 0"):
            self.assertIn(line + "\n", text)

    def test_everyBackgroundSpelledOut(self) -> None:
        """tint2 17 crashed on a background with a state left out."""
        text = self.render()
        sections = re.split(r"^# Background \d+.*$", text.split("# Panel:")[0], flags=re.M)[1:]
        self.assertEqual(len(sections), 4)
        for section in sections:
            keys = set(re.findall(r"^(\w+) =", section, re.M))
            for state in ("", "_hover", "_pressed"):
                for key in ("background_color", "border_color", "gradient_id"):
                    self.assertIn(key + state, keys)
