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

from twisted.trial.unittest import SynchronousTestCase

from agentdesktop import cli


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
