"""
The service as operators run it: C{twistd agentdesktop} in a subprocess,
called over HTTP, stopped with SIGTERM, leaving no child behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

import agentdesktop


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
          "--nodaemon", "--pidfile=", "agentdesktop"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def twistd(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run C{twistd agentdesktop ARGV} to its end (for what refuses to start)."""
    return subprocess.run([*TWISTD, *argv], capture_output=True, text=True, timeout=60, cwd=ROOT)


class Twistd(SynchronousTestCase):
    def waitForLine(self, path: str, pattern: str, proc: subprocess.Popen[bytes]) -> re.Match[str]:
        """The first match of PATTERN in the log at PATH, once it is there."""
        for _ in range(300):
            with open(path) as f:
                found = re.search(pattern, f.read())
            if found is not None:
                return found
            self.assertIsNone(proc.poll(), open(path).read())
            time.sleep(0.1)
        self.fail(f"no {pattern!r} in the log: {open(path).read()}")

    def test_serveThenSigtermLeavesNoChild(self) -> None:
        """
        Serves on the port the log names (tcp:0: the kernel picks it), with
        the default desktop; SIGTERM leaves no child and no file behind.
        """
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        log = open(os.path.abspath(self.mktemp()), "w+")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [*TWISTD, "--listen", "tcp:0:interface=127.0.0.1", "--runtime-dir", runtime,
             "--geometry", "1280x800"],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        )
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        found = self.waitForLine(log.name, r"HTTP API on (http://127\.0\.0\.1:(\d+)/api/v0/desktop/)", proc)
        base = found.group(1)
        self.assertNotEqual(int(found.group(2)), 0)
        info = None
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "info", timeout=5) as r:
                    info = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert info is not None, open(log.name).read()
        self.assertEqual((info["width"], info["height"]), (1280, 800))
        request = urllib.request.Request(
            base + "action", data=json.dumps({"action": "left_click", "coordinate": [5, 5]}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            self.assertEqual(json.load(r)["output"], "left_click action performed")
        children = descendants(proc.pid)
        commands = {open(f"/proc/{pid}/comm").read().strip() for pid in children if alive(pid)}
        self.assertLessEqual({"Xvnc", "openbox", "tint2"}, commands)
        proc.send_signal(signal.SIGTERM)
        # twistd re-raises the signal it stopped on, so its status is -TERM.
        self.assertIn(proc.wait(timeout=30), (0, -signal.SIGTERM), open(log.name).read())
        self.assertEqual([pid for pid in children if alive(pid)], [])
        self.assertEqual(os.listdir(runtime), [])
        text = open(log.name).read()
        self.assertIn("every child process has exited", text)
        socketPath = text.split("VNC on ", 1)[1].split()[0]
        self.assertFalse(os.path.exists(os.path.dirname(socketPath)))

    def test_sigkillLeavesNoDescendant(self) -> None:
        """
        Even a SIGKILLed service takes everything it started with it: its
        children (pdeathsig) and their children (the process-group
        sentinel), here the background child of an autostart shell and the
        accessibility buses the AT-SPI launcher starts.
        """
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        log = open(os.path.abspath(self.mktemp()), "w+")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "--nodaemon", "--pidfile=", "agentdesktop",
             "--listen", f"tcp:{port}:interface=127.0.0.1", "--runtime-dir", runtime,
             "--geometry", "800x600",
             "--autostart", "sh -c 'sleep 300 & exec sleep 301'"],
            stdout=log, stderr=subprocess.STDOUT,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
            start_new_session=True,
        )
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        base = f"http://127.0.0.1:{port}/api/v0/desktop/"
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "info", timeout=5):
                    pass
                break
            except OSError:
                time.sleep(0.1)
        children: set[int] = set()
        for _ in range(100):
            children = descendants(proc.pid)
            commands = [open(f"/proc/{p}/cmdline", "rb").read() for p in children if alive(p)]
            if any(c.startswith(b"sleep\x00300") for c in commands):
                break
            time.sleep(0.1)
        self.assertTrue(any(c.startswith(b"sleep\x00300") for c in commands), commands)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for _ in range(100):
            if not [p for p in children if alive(p)]:
                break
            time.sleep(0.1)
        left = {p: open(f"/proc/{p}/cmdline", "rb").read() for p in children if alive(p)}
        self.assertEqual(left, {})

    def test_vncListenOthersCanReachRefused(self) -> None:
        """
        With a token, twistd refuses --vnc-listen on an interface other
        machines can reach, saying why in one line, and starts nothing.
        """
        token = os.path.abspath(self.mktemp())
        with open(token, "w") as f:
            f.write("s3cret\n")
        proc = twistd("--auth-token-file", token, "--vnc-listen", "tcp:0:interface=0.0.0.0",
                      "--runtime-dir", os.path.dirname(token))
        self.assertEqual(proc.returncode, 2)
        [line] = proc.stderr.splitlines()
        self.assertIn("--vnc-listen tcp:0:interface=0.0.0.0 is reachable from other machines", line)
        self.assertIn("pass --vnc-listen-insecure", line)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(os.listdir(os.path.dirname(token)), [os.path.basename(token)])

    def test_badOptionIsOneLine(self) -> None:
        """
        Each bad option or endpoint: exit status 2 and one line on standard
        error naming the option and what it needs; no help, no traceback.
        """
        cases = [
            (["--listen", "nonsense"], "--listen nonsense", "endpoint string like tcp:8790"),
            (["--listen", "tcp:99999"], "--listen tcp:99999", "not between 0 and 65535"),
            (["--vnc-listen", "tcp:70000"], "--vnc-listen tcp:70000", "not between 0 and 65535"),
            (["--geometry", "12x"], "--geometry 12x", "WIDTHxHEIGHT"),
            (["--depth", "7"], "--depth 7", "16, 24 or 32"),
            (["--recording-fps", "fast"], "--recording-fps fast", "expected a number"),
            (["--max-recordings", "0"], "--max-recordings 0", "must be positive"),
            (["--viewer-input", "sometimes"], "--viewer-input sometimes", "with-control or always"),
            (["--desktop", "fancy"], "--desktop fancy", "default or minimal"),
            (["--auth-token-file", "/nonexistent/token"], "--auth-token-file", "No such file"),
            (["--autostart", "'unclosed"], "--autostart", "quotation"),
            (["--tint2", "/nonexistent/tint2"], "--desktop default needs tint2", "--desktop minimal"),
            (["--no-such-option"], "--no-such-option", "not recognized"),
            (["--depth"], "--depth", "requires argument"),
        ]
        for argv, option, need in cases:
            proc = twistd(*argv)
            self.assertEqual(proc.returncode, 2, (argv, proc.stdout, proc.stderr))
            self.assertEqual(proc.stdout, "", argv)
            lines = proc.stderr.splitlines()
            self.assertEqual(len(lines), 1, (argv, proc.stderr))
            self.assertIn(option, lines[0])
            self.assertIn(need, lines[0])

    def test_portInUse(self) -> None:
        """One line naming the endpoint and the reason, a non-zero exit, no traceback."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            runtime = os.path.abspath(self.mktemp())
            os.makedirs(runtime)
            proc = twistd("--listen", f"tcp:{port}:interface=127.0.0.1", "--runtime-dir", runtime)
        self.assertNotEqual(proc.returncode, 0)
        output = proc.stdout + proc.stderr
        self.assertNotIn("Traceback", output)
        [line] = [line for line in output.splitlines() if str(port) in line]
        self.assertIn(f"--listen tcp:{port}:interface=127.0.0.1", line)
        self.assertIn("Address already in use", line)
        # Nothing was started.
        self.assertEqual(os.listdir(runtime), [])

    def test_version(self) -> None:
        proc = twistd("--version")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.split()[:2], ["agentdesktop", agentdesktop.__version__])
