"""
Every latency and throughput measurement of the service in one run:

    .venv/bin/pip install -e ".[bench]" --config-settings editable_mode=compat  # once: websockify
    .venv/bin/python -m benchmarks [--rounds 30] [--only screenshots,input,...]

It starts ``twistd agentdesktop`` on its own desktop (and a second one with
``--xdotool-mode per-action`` for the input comparison), draws a quiet
desktop (an xterm full of text) and a busy one (that, ``top -d 0.2`` in
colour and a photo-like window), and prints one Markdown table: medians and
95th percentiles, each next to its baseline measured in the same run, with
the calls taking turns (so that the machine's drift hits both alike) and
the ratio of the medians.  Sections:

- screenshots: 1920x1080 -> 1280x720 PNG, native PNG and 720p JPEG q80 over
  HTTP, against ffmpeg x11grab taking one frame, and against our own
  pipeline (grab, resize, encode) called directly in this process; PNG
  sizes against Pillow's PNG at zlib level 1 of the same frame;
- input: left_click, mouse_move, key, type (20 characters) over HTTP
  against one bare xdotool process doing the same with --delay 0, with the
  long-lived xdotool and with one xdotool per action;
- batch: five clicks and a screenshot as one /batch against six requests;
- vnc: ``benchmarks/vnc_throughput.py`` (interleaved rounds, its own
  desktop): /vnc and the raw listener against websockify and a minimal
  relay;
- viewer: headless Chromium, from navigating to the viewer page to the
  first frame of the desktop drawn on its canvas;
- memory: the service's resident set and open descriptors after 5 000 and
  10 000 actions and after 1 000 screenshots.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks import viewer
from benchmarks.common import HEADER, ROOT, Service, interleaved, memory, row
from benchmarks.scene import Scene

SECTIONS = ("screenshots", "input", "batch", "vnc", "viewer", "memory")
SIZE = {"scaled_width": 1280, "scaled_height": 720}
TYPED = "abcdefghij0123456789"


class Table:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.data: dict[str, Any] = {}
        self.current = ""

    def section(self, title: str) -> None:
        self.current = title
        self.lines.append(f"| **{title}** | | | | | |")
        print(self.lines[-1], flush=True)

    def add(self, name: str, samples: list[float], baseline: list[float] | None = None,
            baselineName: str = "", target: str = "") -> None:
        self.lines.append(row(name, samples, baseline, baselineName, target))
        self.data[f"{self.current}: {name} / {baselineName}"] = {
            "samples": samples, "baseline": baseline}
        print(self.lines[-1], flush=True)

    def note(self, name: str, value: str, target: str = "") -> None:
        self.lines.append(f"| {name} | {value} | | | | {target} |")
        self.data[f"{self.current}: {name}"] = value
        print(self.lines[-1], flush=True)


def ffmpeg(service: Service, codec: str, scale: bool, extra: tuple[str, ...] = ()) -> list[str]:
    info = service.info
    return ["ffmpeg", "-loglevel", "error", "-f", "x11grab", "-video_size",
            f"{info['width']}x{info['height']}", "-i", info["display"], "-frames:v", "1",
            *(["-vf", "scale=1280:720"] if scale else []), "-f", "image2pipe",
            "-vcodec", codec, *extra, "-y", "/dev/null"]


def screenshots(service: Service, scene: str, rounds: int, table: Table) -> None:
    from PIL import Image

    from agentdesktop.x11.session import XSession, screenshot

    x = XSession(service.info["display"], service.info["xauthority"])
    sizes: list[int] = []

    def direct(size: tuple[int, int], fmt: str, quality: int | None = None) -> Any:
        def f() -> None:
            data = screenshot(x, None, size, fmt, quality)
            if fmt == "png" and size == (1280, 720):
                sizes.append(len(data))
        return f

    native = (service.info["width"], service.info["height"])
    shot = {"action": "screenshot", **SIZE}
    fs = {
        "png": lambda: service.raw("POST", "action", shot),
        "png direct": direct((1280, 720), "png"),
        "png ffmpeg": lambda: service.run(ffmpeg(service, "png", True)),
        "native": lambda: service.raw("POST", "action", {"action": "screenshot"}),
        "native direct": direct(native, "png"),
        "native ffmpeg": lambda: service.run(ffmpeg(service, "png", False)),
        "jpeg": lambda: service.raw("POST", "action", {**shot, "format": "jpeg", "quality": 80}),
        "jpeg direct": direct((1280, 720), "jpeg", 80),
        "jpeg ffmpeg": lambda: service.run(ffmpeg(service, "mjpeg", True, ("-q:v", "5"))),
    }
    t = interleaved(fs, rounds)
    pillow = io.BytesIO()
    x.grab().resize((1280, 720), Image.BICUBIC).save(pillow, "PNG", compress_level=1)
    x.close()
    quiet = scene == "quiet"
    table.section(f"screenshots, {scene} desktop")
    table.add("1080p->720p PNG over HTTP", t["png"], t["png ffmpeg"], "ffmpeg one frame",
              "<= 0.10" if quiet else "<= 0.15")
    table.add("1080p->720p PNG over HTTP", t["png"], t["png direct"], "our pipeline, direct",
              "<= 1.20")
    table.add("native PNG over HTTP", t["native"], t["native ffmpeg"], "ffmpeg one frame",
              "<= 0.10" if quiet else "")
    table.add("native PNG over HTTP", t["native"], t["native direct"], "our pipeline, direct")
    table.add("720p JPEG q80 over HTTP", t["jpeg"], t["jpeg ffmpeg"], "ffmpeg mjpeg -q:v 5")
    table.add("720p JPEG q80 over HTTP", t["jpeg"], t["jpeg direct"], "our pipeline, direct")
    ours = statistics.median(sizes)
    table.note("720p PNG size: ours / Pillow zlib level 1",
               f"{ours / 1024:.0f} KiB / {len(pillow.getvalue()) / 1024:.0f} KiB = "
               f"{ours / len(pillow.getvalue()):.2f}", "<= 2.0 (busy)")


def inputs(service: Service, rounds: int, table: Table, label: str) -> None:
    points = [(640, 360, 960, 540), (100, 100, 150, 150)]
    turn = [0]

    def point() -> tuple[int, int, int, int]:
        turn[0] += 1
        return points[turn[0] % 2]

    def act(body: dict[str, Any]) -> Any:
        return lambda: service.raw("POST", "action", body)

    def move() -> None:
        x, y, _, _ = point()
        service.raw("POST", "action", {"action": "mouse_move", "coordinate": [x, y], **SIZE})

    def bareMove() -> None:
        _, _, nx, ny = point()
        service.run(["xdotool", "mousemove", str(nx), str(ny)])

    fs = {
        "click": act({"action": "left_click", "coordinate": [640, 360], **SIZE}),
        "click bare": lambda: service.run(
            ["xdotool", "mousemove", "960", "540", "click", "--delay", "0", "1"]),
        "move": move,
        "move bare": bareMove,
        "key": act({"action": "key", "text": "a"}),
        "key bare": lambda: service.run(["xdotool", "key", "--delay", "0", "a"]),
        "type": act({"action": "type", "text": TYPED}),
        "type bare": lambda: service.run(["xdotool", "type", "--delay", "0", TYPED]),
    }
    t = interleaved(fs, rounds)
    table.section(f"input over HTTP, {label}")
    for name, action in (("click", "left_click"), ("move", "mouse_move"), ("key", "key")):
        table.add(f"{action} ({label})", t[name], t[name + " bare"], "bare xdotool",
                  "<= 1.2 (<= 1.0 stretch)")
    table.add(f"type, 20 characters ({label})", t["type"], t["type bare"], "bare xdotool type")


def batch(service: Service, rounds: int, table: Table) -> None:
    points = [[100, 100], [200, 120], [300, 140], [400, 160], [500, 180]]
    clicks = [{"action": "left_click", "coordinate": p, **SIZE} for p in points]

    def separate() -> None:
        for c in clicks:
            service.raw("POST", "action", c)
        service.raw("POST", "action", {"action": "screenshot", **SIZE})

    def together() -> None:
        service.raw("POST", "batch", {"actions": clicks, **SIZE, "observe": {"settle_ms": 0}})

    def screenshotAlone() -> None:
        service.raw("POST", "action", {"action": "screenshot", **SIZE})

    t = interleaved({"batch": together, "separate": separate, "screenshot": screenshotAlone}, rounds)
    table.section("batch")
    table.add("5 clicks + screenshot, one /batch (settle_ms 0)", t["batch"], t["separate"],
              "6 x /action", "<= 0.5")
    # No batch can take less than the screenshot it contains.
    table.add("the screenshot alone, one /action (the batch's floor)", t["screenshot"], t["separate"],
              "6 x /action")


def vnc(rounds: int, table: Table) -> None:
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "vnc_throughput.py"), "--json",
         "--rounds", str(max(3, rounds // 6))],
        cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    paths = json.loads(out.decode().strip().splitlines()[-1])
    table.section("VNC, full 1920x1080 Raw updates/s (median of per-round ratios)")
    for name, target in (("agentdesktop /vnc (WebSocket)", ">= 0.95 relay, >= 1.3 websockify"),
                         ("agentdesktop raw listener", ">= 1.0 relay"),
                         ("websockify", ""), ("minimal relay (reference)", ""),
                         ("minimal WebSocket relay", ""), ("direct unix RFB socket", "")):
        p = paths[name]
        cpu = p["cpu_ms_per_update"]
        relaying = f"{cpu['relaying']:.2f}" if cpu["relaying"] is not None else "-"
        table.note(name, f"{statistics.median(p['updates_per_s']):.1f} updates/s; "
                   f"x{statistics.median(p['vs_relay']):.2f} relay, "
                   f"x{statistics.median(p['vs_websocket_relay']):.2f} WebSocket relay, "
                   f"x{statistics.median(p['vs_websockify']):.2f} websockify, "
                   f"x{statistics.median(p['vs_direct']):.2f} direct; "
                   f"CPU ms/update {relaying} relaying, {cpu['client']:.2f} client", target)


def firstFrame(service: Service, rounds: int, table: Table) -> None:
    from agentdesktop.x11.session import XSession

    x = XSession(service.info["display"], service.info["xauthority"])
    cx, cy = service.info["width"] // 2, service.info["height"] // 2
    # The viewer shows the pointer where the X server's picture has none:
    # keep it off the pixel compared.
    service.call("POST", "action", {"action": "mouse_move", "coordinate": [cx // 2, cy // 2]})
    url = f"http://127.0.0.1:{service.port}/api/v0/desktop/"
    try:
        samples = viewer.firstFrames(url, lambda: x.grab((cx, cy, cx + 1, cy + 1)).getpixel((0, 0)),
                                     rounds)
    finally:
        x.close()
    table.section("viewer")
    table.add("viewer page opened -> first desktop frame drawn (Chromium)", samples,
              target="<= 500 ms median")


def usage(pid: int) -> str:
    rss, fds = memory(pid)
    return f"{rss:.1f} / {fds}"


def footprint(service: Service, table: Table) -> None:
    actions = [{"action": "mouse_move", "coordinate": [300, 300]},
               {"action": "left_click", "coordinate": [310, 300]},
               {"action": "key", "text": "shift"},
               {"action": "cursor_position"}]
    table.section("memory (the service process)")
    table.note("RSS MiB / open fds at start", usage(service.pid))
    for done in (5000, 10000):
        for i in range(5000):
            service.raw("POST", "action", actions[i % len(actions)])
        table.note(f"RSS MiB / open fds after {done} actions", usage(service.pid),
                   "<= 120 MiB, flat over the last 5000; fds flat")
    for _ in range(1000):
        service.raw("POST", "action", {"action": "screenshot", **SIZE})
    table.note("RSS MiB / open fds after 1000 more screenshots", usage(service.pid))


def run(args: argparse.Namespace, table: Table) -> None:
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    with Service() as service:
        scene = Scene(service)
        try:
            scene.quiet()
            if "screenshots" in only:
                screenshots(service, "quiet", args.rounds, table)
            if "input" in only:
                inputs(service, args.rounds, table, "long-lived xdotool")
            if "batch" in only:
                batch(service, args.rounds, table)
            if "viewer" in only:
                firstFrame(service, args.rounds, table)
            if "memory" in only:
                footprint(service, table)
            if "screenshots" in only:
                scene.busy()
                screenshots(service, "busy", args.rounds, table)
        finally:
            scene.stop()
    if "input" in only:
        with Service("--xdotool-mode", "per-action") as service:
            scene = Scene(service)
            try:
                scene.quiet()
                inputs(service, args.rounds, table, "one xdotool per action")
            finally:
                scene.stop()
    if "vnc" in only:
        vnc(args.rounds, table)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="iterations per measurement")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--json", metavar="FILE", help="also write every sample to FILE")
    args = parser.parse_args()
    table = Table()
    started = time.monotonic()
    print(HEADER, flush=True)
    run(args, table)
    print(f"\n{args.rounds} rounds; {os.cpu_count()} CPUs; "
          f"{time.monotonic() - started:.0f} s\n\n{HEADER}\n" + "\n".join(table.lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table.data, f)


if __name__ == "__main__":
    main()
