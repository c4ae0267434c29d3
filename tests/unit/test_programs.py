"""
Checks before a program starts, open targets, and the process tree.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.programs import (
    checkOpenTarget,
    descendants,
    isURL,
    parentsFromProc,
    resolveProgram,
)


class Programs(SynchronousTestCase):
    def setUp(self) -> None:
        self.bin = os.path.abspath(self.mktemp())
        os.makedirs(self.bin)
        self.tool = os.path.join(self.bin, "tool")
        with open(self.tool, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(self.tool, 0o755)
        self.plain = os.path.join(self.bin, "plain")
        with open(self.plain, "w") as f:
            f.write("data\n")
        self.env = {"PATH": self.bin, "HOME": self.bin}

    def test_onPath(self) -> None:
        self.assertEqual(resolveProgram("tool", self.env), self.tool)

    def test_missingIsNamed(self) -> None:
        e = self.assertRaises(ValueError, resolveProgram, "nosuch", self.env)
        self.assertIn("nosuch", str(e))
        self.assertIn(self.bin, str(e))
        # Not on the desktop's PATH, though it is on ours.
        self.assertRaises(ValueError, resolveProgram, "sh", self.env)

    def test_paths(self) -> None:
        self.assertEqual(resolveProgram(self.tool, {}), self.tool)
        e = self.assertRaises(ValueError, resolveProgram, self.plain, self.env)
        self.assertIn("not an executable file", str(e))
        e = self.assertRaises(ValueError, resolveProgram, self.bin, self.env)
        self.assertIn("not an executable file", str(e))
        e = self.assertRaises(ValueError, resolveProgram, self.bin + "/gone", self.env)
        self.assertIn("no such file", str(e))
        self.assertRaises(ValueError, resolveProgram, "", self.env)

    def test_urls(self) -> None:
        for url in ("https://example.org/x", "file:///etc", "mailto:a@b", "x-y.z+w:abc"):
            self.assertTrue(isURL(url), url)
        for path in ("/etc/passwd", "~/x", "c:", "relative/path", "-rf", ""):
            self.assertFalse(isURL(path), path)

    def test_openTargets(self) -> None:
        self.assertEqual(checkOpenTarget("https://example.org", self.env), "https://example.org")
        self.assertEqual(checkOpenTarget(self.plain, self.env), self.plain)
        self.assertEqual(checkOpenTarget("~/plain", self.env), self.plain)
        self.assertEqual(checkOpenTarget("file://" + self.plain, self.env), "file://" + self.plain)
        for bad in ("", "  ", "plain", "-x", self.plain + ".missing", "~/missing",
                    "file:///nonexistent-dir/x", "file://otherhost/etc/passwd", "/etc\0/x"):
            self.assertRaises(ValueError, checkOpenTarget, bad, self.env)

    def test_nothingGivenToXdgOpenLooksLikeAnOption(self) -> None:
        for target in ("https://e.org", self.plain, "~/plain"):
            self.assertFalse(checkOpenTarget(target, self.env).startswith("-"))


class Tree(SynchronousTestCase):
    def test_descendants(self) -> None:
        parents = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
        self.assertEqual(descendants([10], parents), {10, 11, 12, 13})
        self.assertEqual(descendants([11, 20], parents), {11, 12, 20, 21})
        self.assertEqual(descendants([99], parents), {99})

    def test_cycleDoesNotHang(self) -> None:
        self.assertEqual(descendants([1], {1: 2, 2: 1}), {1, 2})

    def test_parentsFromProc(self) -> None:
        proc = os.path.abspath(self.mktemp())
        for pid, stat in (("5", b"5 (sh) S 1 5 5"), ("7", b"7 (odd) name) (x) R 5 7 7"),
                          ("self", b"ignored"), ("9", b"")):
            os.makedirs(os.path.join(proc, pid))
            with open(os.path.join(proc, pid, "stat"), "wb") as f:
                f.write(stat)
        self.assertEqual(parentsFromProc(proc), {5: 1, 7: 5})

    def test_realProc(self) -> None:
        parents = parentsFromProc()
        self.assertEqual(parents[os.getpid()], os.getppid())
        self.assertIn(os.getpid(), descendants([os.getppid()], parents))
