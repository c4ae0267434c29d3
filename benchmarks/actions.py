"""
Median HTTP round trips of `screenshot` (native 1920x1080 scaled to 1280x720)
and `left_click` / `mouse_move`, against baselines measured in the same run on
the same desktop: ffmpeg x11grab of one frame, and the bare xdotool commands.

    .venv/bin/python benchmarks/actions.py [--rounds 30]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(f, rounds: int) -> float:
    f()  # warm up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
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
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def call(method: str, path: str, body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/api/v0/desktop/" + path, body=data)
            response = conn.getresponse()
            out = json.loads(response.read())
            assert response.status == 200, out
            return out

        for _ in range(300):
            try:
                info = call("GET", "info")
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.1)
        env = dict(os.environ, DISPLAY=info["display"], XAUTHORITY=info["xauthority"])

        def run(argv: list[str]) -> None:
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

        shot = median_ms(lambda: call("POST", "action", {
            "action": "screenshot", "scaled_width": 1280, "scaled_height": 720}), args.rounds)
        ffmpeg = median_ms(lambda: run([
            "ffmpeg", "-loglevel", "error", "-f", "x11grab", "-video_size",
            f"{info['width']}x{info['height']}", "-i", info["display"], "-frames:v", "1",
            "-vf", "scale=1280:720", "-f", "image2pipe", "-vcodec", "png", "-y", "/dev/null"]),
            args.rounds)
        click = median_ms(lambda: call("POST", "action", {
            "action": "left_click", "coordinate": [640, 360], "scaled_width": 1280,
            "scaled_height": 720}), args.rounds)
        bare_click = median_ms(lambda: run(
            ["xdotool", "mousemove", "960", "540", "click", "--delay", "0", "1"]), args.rounds)
        move = median_ms(lambda: call("POST", "action", {
            "action": "mouse_move", "coordinate": [640, 360]}), args.rounds)
        bare_move = median_ms(lambda: run(["xdotool", "mousemove", "640", "360"]), args.rounds)
        print(f"screenshot 1920x1080->1280x720 over HTTP: {shot:.1f} ms median")
        print(f"ffmpeg x11grab one frame (baseline):       {ffmpeg:.1f} ms median")
        print(f"  ratio screenshot/ffmpeg = {shot / ffmpeg:.2f} (target <= 0.25)")
        print(f"left_click over HTTP: {click:.2f} ms; bare xdotool: {bare_click:.2f} ms;"
              f" ratio {click / bare_click:.2f} (target <= 1.5)")
        print(f"mouse_move over HTTP: {move:.2f} ms; bare xdotool: {bare_move:.2f} ms;"
              f" ratio {move / bare_move:.2f} (target <= 1.5)")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
