"""
"Find a button by accessibility" against "take a screenshot", on the same
window of the same desktop: the median HTTP round trip of
`GET /accessibility?window=<id>` followed by picking the "Press me" push
button out of the answer, and of a `screenshot` action (native 1920x1080
scaled to 1280x720, what a vision model would then have to read).  The
window is the integration tests' GTK 3 application.

    .venv/bin/python benchmarks/accessibility.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GTKAPP = os.path.join(ROOT, "tests", "integration", "gtkapp.py")
TITLE = "accessibility benchmark"


def median_ms(f: Any, rounds: int) -> float:
    f()  # warm up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def find(node: dict[str, Any], role: str, name: str) -> dict[str, Any] | None:
    if node["role"] == role and node["name"] == name:
        return node
    for child in node["children"]:
        found = find(child, role, name)
        if found is not None:
            return found
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = tempfile.mkdtemp(prefix="adbench-")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon",
         "--pidfile=", "--logfile=/dev/null", "agentdesktop", "--listen",
         f"tcp:{port}:interface=127.0.0.1", "--runtime-dir", runtime],
        cwd=ROOT, start_new_session=True,
    )
    app = None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/api/v0/desktop/" + path, body=data)
            response = conn.getresponse()
            return response.status, json.loads(response.read())

        for _ in range(300):
            try:
                _, info = call("GET", "info")
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.1)
        # The application finds the desktop's accessibility bus through the
        # display (the AT_SPI_BUS root window property).
        env = {k: v for k, v in os.environ.items()
               if k not in ("DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "NO_AT_BRIDGE")}
        env.update(DISPLAY=info["display"], XAUTHORITY=info["xauthority"])
        app = subprocess.Popen(["/usr/bin/python3", GTKAPP, TITLE, os.devnull], env=env,
                               start_new_session=True, stderr=subprocess.DEVNULL)
        out = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", TITLE],
                             env=env, check=True, capture_output=True, timeout=30).stdout
        window = int(out.split()[0])

        def findButton() -> dict[str, Any]:
            status, tree = call("GET", f"accessibility?window={window}")
            button = find(tree, "push button", "Press me") if status == 200 else None
            assert button is not None, tree
            return button

        for _ in range(100):
            try:
                findButton()
                break
            except AssertionError:
                time.sleep(0.1)
        button = findButton()

        def screenshot() -> None:
            status, body = call("POST", "action", {
                "action": "screenshot", "scaled_width": 1280, "scaled_height": 720})
            assert status == 200, body

        a11y = median_ms(findButton, args.rounds)
        shot = median_ms(screenshot, args.rounds)
        print(f"find a button by accessibility (GET ?window=, pick the node): {a11y:.1f} ms median"
              f" of {args.rounds}; bounds {button['bounds']}")
        print(f"screenshot 1920x1080->1280x720 (before any vision model):      {shot:.1f} ms median"
              f" of {args.rounds}")
    finally:
        if app is not None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait()
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
