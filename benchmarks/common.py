"""
What the benchmarks share: a real service (``twistd agentdesktop`` in a
child process, on its own desktop), a keep-alive HTTP client for it, and
timing statistics.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timings(f: Callable[[], object], rounds: int, warmup: int = 1) -> list[float]:
    """Seconds each of ROUNDS calls of F took (after WARMUP untimed calls)."""
    for _ in range(warmup):
        f()
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return out


def interleaved(fs: dict[str, Callable[[], object]], rounds: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """
    Seconds each call took, for each of FS, calling them in turn ROUNDS
    times (so that the machine's drift hits every one alike).
    """
    for _ in range(warmup):
        for f in fs.values():
            f()
    out: dict[str, list[float]] = {name: [] for name in fs}
    for _ in range(rounds):
        for name, f in fs.items():
            t = time.perf_counter()
            f()
            out[name].append(time.perf_counter() - t)
    return out


def memory(pid: int) -> tuple[float, int]:
    """The resident set (MiB) and the number of open file descriptors of PID."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000


class Service:
    """
    ``twistd agentdesktop`` on a free loopback port with its own runtime
    directory; stopped (SIGTERM to its process group) on exit.
    """

    def __init__(self, *options: str) -> None:
        self.options = options
        self.pid = 0
        self.runtime = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: http.client.HTTPConnection | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Service:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        runtime = self.runtime = tempfile.mkdtemp(prefix="adbench-")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon",
             "--pidfile=", "--logfile=/dev/null", "agentdesktop", "--listen",
             f"tcp:{self.port}:interface=127.0.0.1", "--runtime-dir", runtime, *self.options],
            cwd=ROOT, start_new_session=True,
        )
        self.pid = self.proc.pid
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        for _ in range(300):
            try:
                self.info = self.call("GET", "info")
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                time.sleep(0.1)
        else:
            raise RuntimeError("the service did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        shutil.rmtree(self.runtime, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a program on the service's desktop."""
        return dict(os.environ, DISPLAY=self.info["display"], XAUTHORITY=self.info["xauthority"])

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One request under /api/v0/desktop/; its JSON answer (200 only)."""
        out: dict[str, Any] = json.loads(self.raw(method, path, body))
        return out

    def raw(self, method: str, path: str, body: Any = None) -> bytes:
        """One request under /api/v0/desktop/; its body, undecoded (200 only)."""
        assert self.conn is not None
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, "/api/v0/desktop/" + path, body=data)
        response = self.conn.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {content[:300]!r}")
        return content

    def run(self, argv: list[str]) -> None:
        """Run a program on the desktop to completion (a baseline)."""
        subprocess.run(argv, env=self.env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start a program on the desktop; the caller stops it."""
        return subprocess.Popen(argv, env=self.env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a program started with L{Service.spawn} (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def row(name: str, samples: list[float], baseline: list[float] | None = None,
        baselineName: str = "", target: str = "") -> str:
    """
    One line of a table: median and p95, the baseline's median and p95, the
    ratio of the medians, and the target.
    """
    line = f"| {name} | {median_ms(samples):.2f} | {p95_ms(samples):.2f} |"
    if baseline is None:
        return line + f" | | {target} |"
    return line + (f" {baselineName}: {median_ms(baseline):.2f} / {p95_ms(baseline):.2f} |"
                   f" {median_ms(samples) / median_ms(baseline):.2f} | {target} |")


HEADER = ("| measurement | median ms | p95 ms | baseline: median / p95 ms | ratio | target |\n"
          "|---|---|---|---|---|---|")
