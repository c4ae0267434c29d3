"""
The twistd plugin and its options, without starting anything.
"""

from __future__ import annotations

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import tap


class Plugin(SynchronousTestCase):
    def test_found(self) -> None:
        names = [p.tapname for p in getPlugins(IServiceMaker)]
        self.assertIn("agentdesktop", names)

    def test_badOptionsRefused(self) -> None:
        from twisted.python.usage import UsageError

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

    def test_xdotoolMode(self) -> None:
        """One long-lived xdotool by default; one per action when asked."""
        from twisted.internet.task import Clock

        for argv, channel in (([], True), (["--xdotool-mode", "per-action"], False)):
            options = tap.Options()
            options.parseOptions(argv)
            self.assertIs(tap.makeDesktop(options, Clock()).config.xdotoolChannel, channel)
