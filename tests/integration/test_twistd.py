"""
The service as operators run it: C{twistd agentdesktop} in a subprocess,
called over HTTP, stopped with SIGTERM, leaving no child behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from twisted.trial.unittest import SynchronousTestCase


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


class Twistd(SynchronousTestCase):
    def test_serveThenSigtermLeavesNoChild(self) -> None:
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
             "--geometry", "1280x800"],
            stdout=log, stderr=subprocess.STDOUT,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
            start_new_session=True,
        )
        self.addCleanup(lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
        base = f"http://127.0.0.1:{port}/api/v0/desktop/"
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
        self.assertGreaterEqual(len(children), 2)  # Xvnc and openbox
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
        proc = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "--nodaemon", "--pidfile=", "agentdesktop", "--auth-token-file", token,
             "--vnc-listen", "tcp:0:interface=0.0.0.0", "--runtime-dir", os.path.dirname(token)],
            capture_output=True, text=True, timeout=60,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        self.assertNotEqual(proc.returncode, 0)
        last = (proc.stdout + proc.stderr).strip().splitlines()[-1]
        self.assertIn("--vnc-listen tcp:0:interface=0.0.0.0 is reachable from other machines", last)
        self.assertIn("pass --vnc-listen-insecure", last)
        self.assertEqual(os.listdir(os.path.dirname(token)), [os.path.basename(token)])
