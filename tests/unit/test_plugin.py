"""
The twistd plugin and its options, without starting anything.
"""

from __future__ import annotations

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import tap


class Plugin(SynchronousTestCase):
    def test_found(self) -> None:
        names = [p.tapname for p in getPlugins(IServiceMaker)]
        self.assertIn("agentdesktop", names)

    def test_badOptionsRefused(self) -> None:
        for argv in (["--geometry", "12x"], ["--depth", "7"], ["--recording-fps", "0"],
                     ["--auth-token-file", "/nonexistent/token"], ["--xdotool-mode", "fork"]):
            with self.assertRaises(UsageError, msg=argv):
                tap.Options().parseOptions(argv)

    def test_defaults(self) -> None:
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["listen"], [tap.DEFAULT_LISTEN])
        self.assertEqual(options["geometry"], (1920, 1080))
        self.assertEqual(options["window-manager"], ["openbox"])
        self.assertEqual(options["control-idle-timeout"], 60.0)
        self.assertEqual(options["viewer-input"], "with-control")
        self.assertFalse(options["allow-token-in-url"])
        self.assertFalse(options["vnc-listen-insecure"])
        self.assertFalse(options["metrics-without-auth"])

    def test_metricsWithoutAuth(self) -> None:
        """--metrics-without-auth reaches the service's state (nothing is started)."""
        for argv, expected in (([], False), (["--metrics-without-auth"], True)):
            options = tap.Options()
            options.parseOptions(argv)
            service = tap.makeService(options)
            self.assertIs(service.state.metricsWithoutAuth, expected)  # type: ignore[attr-defined]

    def test_sharingOptions(self) -> None:
        options = tap.Options()
        options.parseOptions(["--control-idle-timeout", "5", "--viewer-input", "always",
                              "--allow-token-in-url"])
        self.assertEqual(options["control-idle-timeout"], 5.0)
        self.assertEqual(options["viewer-input"], "always")
        self.assertTrue(options["allow-token-in-url"])
        for argv in (["--viewer-input", "sometimes"], ["--control-idle-timeout", "0"]):
            with self.assertRaises(UsageError, msg=argv):
                tap.Options().parseOptions(argv)

    def tokenFile(self) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("s3cret\n")
        return path

    def test_vncListenRefusedWhereOthersReachIt(self) -> None:
        """
        With a token, a raw VNC listener others can reach is refused in
        one line, unless --vnc-listen-insecure; loopback and unix sockets
        are fine, and so is anything without a token.
        """
        token = ["--auth-token-file", self.tokenFile()]
        for endpoint in ("tcp:5900", "tcp:5900:interface=0.0.0.0",
                         "tcp:5900:interface=192.0.2.7", "tcp6:5900:interface=\\:\\:"):
            with self.assertRaises(UsageError, msg=endpoint) as e:
                tap.Options().parseOptions(token + ["--vnc-listen", endpoint])
            message = str(e.exception)
            self.assertNotIn("\n", message)
            self.assertIn("--vnc-listen-insecure", message)
            self.assertIn("no authentication", message)
            tap.Options().parseOptions(token + ["--vnc-listen", endpoint, "--vnc-listen-insecure"])
            tap.Options().parseOptions(["--vnc-listen", endpoint])
        for endpoint in ("tcp:5900:interface=127.0.0.1", "tcp:5900:127.0.0.2",
                         "tcp6:5900:interface=\\:\\:1", "unix:/nonexistent/vnc.sock"):
            tap.Options().parseOptions(token + ["--vnc-listen", endpoint])

    def test_vncListenNotAnEndpoint(self) -> None:
        with self.assertRaises(UsageError) as e:
            tap.Options().parseOptions(["--vnc-listen", "bogus:5900"])
        self.assertIn("--vnc-listen bogus:5900", str(e.exception))

    def test_accessibilityBinaries(self) -> None:
        from twisted.internet.task import Clock

        options = tap.Options()
        options.parseOptions(["--dbus-daemon", "/opt/dbus-daemon", "--at-spi-bus-launcher", "/opt/launcher"])
        config = tap.makeDesktop(options, Clock()).a11y.config
        self.assertEqual((config.dbusDaemon, config.busLauncher), ("/opt/dbus-daemon", "/opt/launcher"))
        defaults = tap.Options()
        defaults.parseOptions([])
        self.assertEqual(defaults["at-spi-bus-launcher"], "/usr/libexec/at-spi-bus-launcher")

    def test_xdgOpenReachesTheDesktop(self) -> None:
        options = tap.Options()
        options.parseOptions(["--xdg-open", "/opt/bin/my-open"])
        self.assertEqual(tap.makeDesktop(options, None).config.xdgOpen, "/opt/bin/my-open")
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(tap.makeDesktop(options, None).config.xdgOpen, "xdg-open")

    def test_xdotoolMode(self) -> None:
        """One long-lived xdotool by default; one per action when asked."""
        from twisted.internet.task import Clock

        for argv, channel in (([], True), (["--xdotool-mode", "per-action"], False)):
            options = tap.Options()
            options.parseOptions(argv)
            self.assertIs(tap.makeDesktop(options, Clock()).config.xdotoolChannel, channel)

    def test_desktop(self) -> None:
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["desktop"], "default")
        self.assertEqual(tap.makeDesktop(options, None).config.desktop, "default")
        options = tap.Options()
        options.parseOptions(["--desktop", "minimal", "--tint2", "/nonexistent/tint2"])
        self.assertEqual(tap.makeDesktop(options, None).config.desktop, "minimal")
        with self.assertRaises(UsageError) as e:
            tap.Options().parseOptions(["--desktop", "fancy"])
        self.assertIn("--desktop", str(e.exception))
        self.assertIn("default or minimal", str(e.exception))

    def test_defaultDesktopNeedsItsPanel(self) -> None:
        with self.assertRaises(UsageError) as e:
            tap.Options().parseOptions(["--tint2", "/nonexistent/tint2"])
        message = str(e.exception)
        self.assertIn("--desktop default needs tint2", message)
        self.assertIn("--desktop minimal", message)
