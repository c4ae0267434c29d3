"""
Endpoint strings checked without listening, the listener service that
logs what it bound and names its option when it cannot bind, and the
one-line option errors under twistd.
"""

from __future__ import annotations

import io

from twisted.internet import error, protocol
from twisted.internet.testing import MemoryReactor
from twisted.logger import globalLogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import endpoints, tap


class Plans(SynchronousTestCase):
    def test_whereItWouldListen(self) -> None:
        self.assertEqual(endpoints.planListen("tcp:8790:interface=127.0.0.1").tcp, [(8790, "127.0.0.1")])
        self.assertEqual(endpoints.planListen("tcp:0").tcp, [(0, "")])
        self.assertEqual(endpoints.planListen("unix:/run/a.sock").unix, ["/run/a.sock"])

    def test_refused(self) -> None:
        for description, reason in [
            ("nonsense", "Unknown endpoint type"),
            ("tcp:99999", "port 99999 is not between 0 and 65535"),
            ("tcp:-1", "port -1 is not between 0 and 65535"),
            ("tcp:http", "invalid literal"),
            ("tcp", "port"),
        ]:
            with self.assertRaises(ValueError, msg=description) as e:
                endpoints.checkServerEndpoint("--listen", description)
            message = str(e.exception)
            self.assertTrue(message.startswith(f"--listen {description}: "), message)
            self.assertIn(reason, message)
            self.assertIn("tcp:8790:interface=127.0.0.1", message)
            self.assertNotIn("\n", message)

    def test_local(self) -> None:
        for description in ("tcp:1:interface=127.0.0.1", "tcp6:1:interface=\\:\\:1", "unix:/x"):
            self.assertTrue(endpoints.isLocalEndpoint(description), description)
        for description in ("tcp:1", "tcp:1:interface=0.0.0.0", "tcp:1:interface=192.0.2.1"):
            self.assertFalse(endpoints.isLocalEndpoint(description), description)


class _Refusing(MemoryReactor):
    def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> object:
        raise error.CannotListenError(interface, port, OSError(98, "Address already in use"))


class ListenerTests(SynchronousTestCase):
    def announce(self, where: str, secure: bool) -> str:
        return f"API on {where} secure={secure}"

    def test_logsWhatItBound(self) -> None:
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        reactor = MemoryReactor()
        listener = endpoints.Listener(reactor, "--listen", "tcp6:0:interface=\\:\\:1",
                                      protocol.Factory(), self.announce)
        listener.privilegedStartService()
        listener.startService()
        self.assertEqual(len(reactor.tcpServers), 1)
        [event] = [e for e in events if e.get("option") == "--listen"]
        self.assertEqual(event["what"], "API on [::1]:0 secure=False")
        self.assertIs(self.successResultOf(listener.whenListening()), listener.port)
        self.successResultOf(listener.stopService())
        self.assertIsNone(listener.port)

    def test_cannotBindNamesTheOption(self) -> None:
        listener = endpoints.Listener(_Refusing(), "--vnc-listen", "tcp:5900", protocol.Factory(),
                                      self.announce)
        with self.assertRaises(endpoints.ListenFailed) as e:
            listener.privilegedStartService()
        self.assertIn("--vnc-listen tcp:5900: Couldn't listen on any:5900", str(e.exception))
        self.assertIn("Address already in use", str(e.exception))

    def test_serviceExitsOnOneLine(self) -> None:
        """The service turns that into a log line and exit status 1."""
        from agentdesktop.service import DesktopService, makeState
        from agentdesktop.testing import FakeDesktop

        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        svc = DesktopService(makeState(FakeDesktop(), MemoryReactor()))
        endpoints.Listener(_Refusing(), "--listen", "tcp:8790", protocol.Factory(),
                           self.announce).setServiceParent(svc)
        with self.assertRaises(SystemExit) as e:
            svc.privilegedStartService()
        self.assertEqual(e.exception.code, 1)
        [event] = [e for e in events if e.get("log_format", "").startswith("Cannot listen")]
        self.assertIn("--listen tcp:8790", event["error"])


class UnderTwistd(SynchronousTestCase):
    def parse(self, argv: list[str]) -> tuple[int | str | None, str]:
        stderr = io.StringIO()
        self.patch(tap.sys, "stderr", stderr)
        options = tap.Options()
        options.parent = usage.Options()  # as twistd's ServerOptions sets it
        with self.assertRaises(SystemExit) as e:
            options.parseOptions(argv)
        return e.exception.code, stderr.getvalue()

    def test_oneLineExitTwo(self) -> None:
        code, text = self.parse(["--geometry", "12x"])
        self.assertEqual(code, 2)
        self.assertEqual(text, "twistd agentdesktop: --geometry 12x: expected WIDTHxHEIGHT like "
                               "1920x1080, got '12x'\n")

    def test_directCallersGetUsageError(self) -> None:
        with self.assertRaises(usage.UsageError):
            tap.Options().parseOptions(["--geometry", "12x"])

    def test_version(self) -> None:
        stdout = io.StringIO()
        self.patch(tap.sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as e:
            tap.Options().parseOptions(["--version"])
        self.assertEqual(e.exception.code, 0)
        self.assertTrue(stdout.getvalue().startswith(f"agentdesktop {tap.__version__} (Twisted "))

    def test_helpKeepsCoerceDocs(self) -> None:
        text = str(tap.Options())
        self.assertIn("WIDTHxHEIGHT.", text)
        self.assertIn("Must be positive.", text)
        self.assertIn("--version", text)
