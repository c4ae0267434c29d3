"""
agentdesktop-ctl's argument handling: what it sends is checked by the
integration tests, which run it against the live service.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import cli
from agentdesktop.client import DesktopClient
from tests.unit.test_client import ROOT, Canned


class Prepare(SynchronousTestCase):
    def setUp(self) -> None:
        self.patch(os, "environ", {})

    def usageError(self, *argv: str) -> str:
        """Run prepare(ARGV), expecting exit status 2; what it said on stderr."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            e = self.assertRaises(SystemExit, cli.prepare, list(argv))
        self.assertEqual(e.code, 2, err.getvalue())
        return err.getvalue()

    def file(self, content: str) -> str:
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        return path

    def test_defaults(self) -> None:
        args, token = cli.prepare(["info"])
        self.assertEqual((args.url, token, args.command), ("http://127.0.0.1:8790", None, "info"))

    def test_environment(self) -> None:
        os.environ.update(AGENTDESKTOP_URL="http://h:1/api/v0/desktop", AGENTDESKTOP_TOKEN="envtok")
        args, token = cli.prepare(["info"])
        self.assertEqual((args.url, token), ("http://h:1/api/v0/desktop", "envtok"))
        args, token = cli.prepare(["--url", "http://other", "--token", "argtok", "info"])
        self.assertEqual((args.url, token), ("http://other", "argtok"))

    def test_tokenFile(self) -> None:
        os.environ["AGENTDESKTOP_TOKEN"] = "envtok"
        _, token = cli.prepare(["--token-file", self.file("  filetok\n"), "info"])
        self.assertEqual(token, "filetok")
        self.assertIn("is empty", self.usageError("--token-file", self.file("\n"), "info"))
        self.assertIn("No such file", self.usageError("--token-file", "/nonexistent/token", "info"))
        self.assertIn("not allowed with", self.usageError("--token", "a", "--token-file", self.file("b"), "info"))

    def test_sizes(self) -> None:
        args, _ = cli.prepare(["screenshot", "-o", "x.png", "--scaled", "1280X720"])
        self.assertEqual(args.scaled, (1280, 720))
        for bad in ["1280", "0x720", "-1x2", "axb", "1280x720x3", ""]:
            self.assertIn("WIDTHxHEIGHT", self.usageError("click", "1", "2", f"--scaled={bad}"))

    def test_usageErrors(self) -> None:
        self.assertIn("required", self.usageError())
        self.assertIn("invalid choice", self.usageError("dance"))
        self.assertIn("required: y", self.usageError("click", "1"))
        self.assertIn("invalid int", self.usageError("click", "1", "2.5"))
        self.assertIn("invalid choice", self.usageError("click", "1", "2", "--button", "fourth"))
        self.assertIn("-o/--output", self.usageError("screenshot"))
        self.assertIn("-o/--output", self.usageError("record", "stop", "ID"))
        self.assertIn("required", self.usageError("record"))
        self.assertIn("invalid choice", self.usageError("clipboard", "get", "--selection", "secondary"))
        self.assertIn("--url", self.usageError("--url", "127.0.0.1:8790", "info"))

    def test_batchFile(self) -> None:
        actions = [{"action": "type", "text": "hi"}]
        args, _ = cli.prepare(["batch", self.file(json.dumps(actions))])
        self.assertEqual(args.body, {"actions": actions})
        body: dict[str, Any] = {"actions": actions, "observe": {"settle_ms": 50}, "scaled_width": 1280}
        args, _ = cli.prepare(["batch", self.file(json.dumps(body))])
        self.assertEqual(args.body, body)
        self.patch(cli.sys, "stdin", io.StringIO(json.dumps(actions)))
        args, _ = cli.prepare(["batch", "-"])
        self.assertEqual(args.body, {"actions": actions})
        self.assertIn("is not JSON", self.usageError("batch", self.file("{nope")))
        self.assertIn("a JSON object or a list", self.usageError("batch", self.file("42")))
        self.assertIn("No such file", self.usageError("batch", "/nonexistent/batch.json"))


class Commands(SynchronousTestCase):
    """The commands' requests and output, through StubTreq (the routes other modules serve included)."""

    def command(self, body: Any, *argv: str, code: int = 200) -> tuple[Canned, str, str, int]:
        res = Canned(code, body)
        stub = StubTreq(res)
        args, token = cli.prepare(list(argv))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            d = defer.Deferred.fromCoroutine(cli.run(None, args, token, DesktopClient(ROOT, token, http=stub)))
            stub.flush()
        status = 0
        if isinstance(d.result, Failure):
            status = self.failureResultOf(d, SystemExit).value.code  # type: ignore[union-attr]
        else:
            self.successResultOf(d)
        return res, out.getvalue(), err.getvalue(), status

    def test_clipboard(self) -> None:
        res, out, err, status = self.command({"text": "two\nlines 🙂"}, "clipboard", "get")
        self.assertEqual((out, err, status), ("two\nlines 🙂", "", 0))
        self.assertEqual(res.seen[0].uri, "/api/v0/desktop/clipboard?selection=clipboard")
        res, out, err, status = self.command({"text": None}, "clipboard", "get", "--selection", "primary")
        self.assertEqual((out, err, status), ("", "nobody owns the primary selection\n", 0))
        self.assertEqual(res.seen[0].uri, "/api/v0/desktop/clipboard?selection=primary")
        res, out, err, status = self.command({"message": "Clipboard set."}, "clipboard", "set", "héllo")
        self.assertEqual((res.seen[0].method, res.seen[0].json(), status),
                         ("POST", {"text": "héllo", "selection": "clipboard"}, 0))

    def test_windows(self) -> None:
        windows = [{"id": 1, "title": "t", "x": 0, "y": 0, "width": 10, "height": 10}]
        res, out, err, status = self.command({"windows": windows}, "windows", "--scaled", "1280x720")
        self.assertEqual((json.loads(out), status), (windows, 0))
        self.assertEqual(res.seen[0].uri, "/api/v0/desktop/windows?scaled_width=1280&scaled_height=720")

    def test_errors(self) -> None:
        _, out, err, status = self.command({"message": "Failed to read clipboard.", "detail": "the owner did not answer"},
                                       "clipboard", "get", code=500)
        self.assertEqual((out, err, status), ("", "Failed to read clipboard.: the owner did not answer\n", 1))
        _, out, err, status = self.command({"message": "Not found."}, "windows", code=404)
        self.assertEqual((out, err, status), ("", "Not found.\n", 1))
        _, out, err, status = self.command(b"<html>oops</html>", "info", code=502)
        self.assertEqual((err, status), ("HTTP 502 Bad Gateway: <html>oops</html>\n", 1))
