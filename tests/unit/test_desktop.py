"""
L{X11Desktop}'s policy (start, concurrent starts, restart after a crash,
shutdown) with a fake process reactor and fake X connections: no X server,
no child process.
"""

from __future__ import annotations

import os
import socket
import struct

from twisted.internet import error
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import IDesktop
from agentdesktop.testing import FakeAtspiWorker, FakeProcess, FakeProcessReactor, FakeXConnections
from agentdesktop.x11 import DesktopConfig, X11Desktop


def readXauthority(path: str) -> list[tuple[int, bytes, bytes, bytes, bytes]]:
    """The entries of an X authority file: (family, address, number, name, data)."""
    with open(path, "rb") as f:
        data = f.read()
    entries = []
    while data:
        (family,) = struct.unpack(">H", data[:2])
        data = data[2:]
        fields = []
        for _ in range(4):
            (n,) = struct.unpack(">H", data[:2])
            fields.append(data[2 : 2 + n])
            data = data[2 + n :]
        entries.append((family, *fields))
    return entries  # type: ignore[return-value]


def fakeBinary(case: SynchronousTestCase, name: str) -> str:
    """An empty executable file NAME (never run: the reactor is fake)."""
    directory = os.path.abspath(case.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, name)
    with open(path, "w"):
        pass
    os.chmod(path, 0o755)
    return path


class DesktopPolicyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = FakeProcessReactor()
        self.x = FakeXConnections(size=(1280, 800))
        self.runtime = os.path.abspath(self.mktemp())
        os.makedirs(self.runtime)
        self.dbus = fakeBinary(self, "dbus-daemon")
        self.launcher = fakeBinary(self, "at-spi-bus-launcher")
        self.atspi = FakeAtspiWorker()
        self.desktop = X11Desktop(
            self.reactor,
            DesktopConfig(width=1280, height=800, runtimeDir=self.runtime,
                          autostart=[["xterm", "-T", "auto"]], stopGrace=5,
                          dbusDaemon=self.dbus, atspiBusLauncher=self.launcher,
                          desktop="minimal"),
            x=self.x,
            a11yWorker=self.atspi,
        )

    def xvncs(self) -> list[FakeProcess]:
        return self.reactor.named("Xvnc")

    def started(self, number: bytes = b"7") -> None:
        """
        Xvnc reports its display (split across two writes, as a pipe may),
        then the session bus its address.
        """
        xvnc = self.xvncs()[-1]
        xvnc.output(3, number[:1])
        xvnc.output(3, number[1:] + b"\n")
        self.reactor.named(self.dbus)[-1].output(3, b"unix:path=/nonexistent/bus,guid=1\n")

    def programs(self) -> list[str]:
        return [os.path.basename(p.command[0]) for p in self.reactor.spawned]

    def test_provides(self) -> None:
        self.assertTrue(verifyObject(IDesktop, self.desktop))

    def test_start(self) -> None:
        d = self.desktop.start()
        self.assertNoResult(d)
        [xvnc] = self.xvncs()
        self.assertEqual(xvnc.argv[:5], ["setsid", "setpriv", "--pdeathsig", "KILL", "--"])
        argv = xvnc.command
        self.assertEqual(argv[argv.index("-displayfd") + 1], "3")
        self.assertEqual(xvnc.childFDs[3], "r")
        for flag in ("-AlwaysShared", "-AcceptSetDesktopSize=0"):
            self.assertIn(flag, argv)
        self.assertEqual(argv[argv.index("-SecurityTypes") + 1], "None")
        self.assertEqual(argv[argv.index("-geometry") + 1], "1280x800")
        self.assertNotIn("DISPLAY", xvnc.env)
        self.started(b"17")
        info = self.successResultOf(d)
        self.assertEqual((info.display, info.width, info.height), (":17", 1280, 800))
        # The minimal desktop: no background, no panel.
        self.assertIsNone(self.x.background)
        self.assertTrue(self.desktop.running)
        self.assertTrue(self.x.started)
        # The session bus and the AT-SPI bus launcher, then the window
        # manager, then the autostart command, on the display.
        self.assertEqual(self.programs(),
                         ["Xvnc", "dbus-daemon", "at-spi-bus-launcher", "openbox", "xterm"])
        xterm = self.reactor.named("xterm")[0]
        self.assertEqual((xterm.env["DISPLAY"], xterm.env["XAUTHORITY"]), (":17", info.xauthority))
        bus = os.path.join(os.path.dirname(info.xauthority), "bus")
        self.assertEqual(xterm.env["DBUS_SESSION_BUS_ADDRESS"], "unix:path=" + bus)
        # Cookie-only access: the wildcard entry Xvnc reads, and a local
        # entry for display 17 that python-xlib accepts; same cookie.
        self.assertEqual(os.stat(info.xauthority).st_mode & 0o777, 0o600)
        wild, local = readXauthority(info.xauthority)
        self.assertEqual(wild[:3], (0xFFFF, b"", b""))
        self.assertEqual(local[:3], (256, socket.gethostname().encode(), b"17"))
        self.assertEqual(wild[3:], local[3:])
        self.assertEqual(len(local[4]), 16)
        # Started means started: a second call spawns nothing.
        self.assertIs(self.successResultOf(self.desktop.start()), info)
        self.assertEqual(len(self.reactor.spawned), 5)

    def test_concurrentStartsShareOne(self) -> None:
        first, second = self.desktop.start(), self.desktop.start()
        self.assertEqual(len(self.xvncs()), 1)
        self.started()
        self.assertIs(self.successResultOf(first), self.successResultOf(second))

    def test_xvncExitsEarly(self) -> None:
        d = self.desktop.start()
        [xvnc] = self.xvncs()
        xvnc.output(2, b"(EE)\n(EE) Fatal server error:\n(EE) Cannot establish any listening sockets\n")
        xvnc.end(error.ProcessTerminated(1))
        e = self.failureResultOf(d, DesktopError).value
        self.assertIn("Xvnc exited before its display was ready", str(e))
        self.assertIn("Cannot establish any listening sockets", str(e))
        self.flushLoggedErrors(DesktopError)
        # The next request tries again with a fresh Xvnc.
        self.desktop.start()
        self.assertEqual(len(self.xvncs()), 2)

    def test_xvncTooSlow(self) -> None:
        d = self.desktop.start()
        [xvnc] = self.xvncs()
        self.reactor.advance(self.desktop.config.startTimeout)
        self.assertEqual(xvnc.signals, ["KILL"])
        e = self.failureResultOf(d, DesktopError).value
        self.assertIn("did not report its display in time", str(e))
        self.flushLoggedErrors(DesktopError)

    def test_restartAfterXvncCrash(self) -> None:
        restarts: list[str] = []
        self.desktop.restarted.append(restarts.append)
        self.desktop.start()
        self.started(b"7")
        self.assertEqual(restarts, [])
        [xvnc] = self.xvncs()
        wm, xterm = self.reactor.named("openbox")[0], self.reactor.named("xterm")[0]
        xvnc.end(error.ProcessTerminated(signal=9))
        self.assertFalse(self.desktop.running)
        # Its programs go with it.
        self.assertEqual((wm.signals, xterm.signals), (["TERM"], ["TERM"]))
        d = self.desktop.start()
        self.assertEqual(len(self.xvncs()), 2)
        self.started(b"8")
        self.assertEqual(self.successResultOf(d).display, ":8")
        self.assertEqual(len(self.reactor.named("openbox")), 2)
        self.assertEqual(len(self.reactor.named("xterm")), 2)
        # One restart: the window manager came back with the desktop.
        self.assertEqual(restarts, ["desktop"])

    def test_windowManagerRestartedAlone(self) -> None:
        restarts: list[str] = []
        self.desktop.restarted.append(restarts.append)
        self.desktop.start()
        self.started()
        self.reactor.named("openbox")[0].end(error.ProcessTerminated(1))
        self.assertTrue(self.desktop.running)
        self.successResultOf(self.desktop.start())
        self.assertEqual(restarts, ["window_manager"])
        self.assertEqual(len(self.xvncs()), 1)
        self.assertEqual(len(self.reactor.named("openbox")), 2)
        self.assertEqual(len(self.reactor.named("xterm")), 1)

    def test_windowManagerNeverAnnounces(self) -> None:
        """A window manager that never announces itself is used anyway."""
        self.x.wmAnnounced = False
        d = self.desktop.start()
        self.started()
        self.assertNoResult(d)
        self.reactor.pump([0.05] * int(self.desktop.config.wmTimeout / 0.05 + 1))
        self.successResultOf(d)

    def test_shutdown(self) -> None:
        self.desktop.start()
        self.started()
        self.reactor.dieOnSignal = False
        d = self.desktop.stop()
        # Keys and buttons are released first, then every child gets TERM.
        self.assertEqual(self.x.calls[-1][:2], ("input", "releaseAll"))
        running = self.reactor.running()
        self.assertEqual(len(running), 5)
        self.assertEqual([p.signals for p in running], [["TERM"]] * 5)
        running[0].end()
        self.reactor.advance(5)
        # Those that ignored TERM get KILL after the grace period.
        self.assertEqual([p.signals for p in running[1:]], [["TERM", "KILL"]] * 4)
        self.assertNoResult(d)
        for p in running[1:]:
            p.end(error.ProcessTerminated(signal=9))
        self.successResultOf(d)
        self.assertFalse(self.x.started)
        self.assertEqual(os.listdir(self.runtime), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.failureResultOf(self.desktop.start(), DesktopError)


class InputChannelTests(SynchronousTestCase):
    """Which xdotool runs an input command: the long-lived one, or one per action."""

    ACK = b"x:1 y:1 screen:0 window:1\n"

    def desktop(self, channel: bool) -> tuple[X11Desktop, FakeProcessReactor]:
        reactor = FakeProcessReactor()
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        # No accessibility buses (a missing binary is allowed): input only.
        desktop = X11Desktop(reactor, DesktopConfig(windowManager=None, runtimeDir=runtime,
                                                    xdotoolChannel=channel,
                                                    dbusDaemon=os.path.join(runtime, "none")),
                             x=FakeXConnections())
        d = desktop.start()
        reactor.named("Xvnc")[0].output(3, b"5\n")
        self.successResultOf(d)

        def stop() -> None:
            for process in reactor.running():
                process.end()
            reactor.advance(0)  # output readers close their pipes

        self.addCleanup(stop)
        return desktop, reactor

    def test_longLived(self) -> None:
        """Clicks and keys go to one `xdotool -`, started on first use."""
        desktop, reactor = self.desktop(channel=True)
        first = desktop.click(10, 20, 1, 1, ())
        [channel] = reactor.named("stdbuf")
        self.assertEqual(channel.command, ["stdbuf", "-oL", "xdotool", "-"])
        channel.output("output", self.ACK)  # type: ignore[arg-type]
        self.successResultOf(first)
        second = desktop.keys([["ctrl", "a"]])
        channel.output("output", self.ACK)  # type: ignore[arg-type]
        self.successResultOf(second)
        self.assertEqual(channel.written.split(b"\n")[::2][:2],
                         [b"mousemove 10 20 click --repeat 1 --delay 0 1",
                          b"key --delay 0 ctrl+a"])
        self.assertEqual(reactor.named("xdotool"), [])

    def test_replacedWhenDead(self) -> None:
        desktop, reactor = self.desktop(channel=True)
        lost = desktop.move(1, 1)
        [old] = reactor.named("stdbuf")
        old.end(error.ProcessTerminated(exitCode=1))
        self.assertIn("xdotool exited", str(self.failureResultOf(lost, DesktopError).value))
        moved = desktop.move(2, 2)
        old, new = reactor.named("stdbuf")
        self.assertEqual(new.written, b"mousemove 2 2\ngetmouselocation\n")
        new.output("output", self.ACK)  # type: ignore[arg-type]
        self.successResultOf(moved)

    def test_perAction(self) -> None:
        """--xdotool-mode per-action: one xdotool process, argv, per command."""
        desktop, reactor = self.desktop(channel=False)
        reactor.tools.append(lambda argv: (b"", None) if argv[0] == "xdotool" else None)
        self.successResultOf(desktop.move(3, 4))
        [one] = reactor.named("xdotool")
        self.assertEqual(one.command, ["xdotool", "mousemove", "3", "4"])
        self.assertEqual(reactor.named("stdbuf"), [])
