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
                     ["--auth-token-file", "/nonexistent/token"]):
            with self.assertRaises(UsageError, msg=argv):
                tap.Options().parseOptions(argv)

    def test_defaults(self) -> None:
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["listen"], [tap.DEFAULT_LISTEN])
        self.assertEqual(options["geometry"], (1920, 1080))
        self.assertEqual(options["window-manager"], ["openbox"])

    def test_xdgOpenReachesTheDesktop(self) -> None:
        options = tap.Options()
        options.parseOptions(["--xdg-open", "/opt/bin/my-open"])
        self.assertEqual(tap.makeDesktop(options, None).config.xdgOpen, "/opt/bin/my-open")
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(tap.makeDesktop(options, None).config.xdgOpen, "xdg-open")
