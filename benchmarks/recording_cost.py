"""
What a recording costs, measured with the product's own ffmpeg command line
on a real Xvnc desktop:

  - the share of one CPU core ffmpeg uses on an idle desktop;
  - bytes per minute of a typical recording (a terminal running top, the
    pointer moving and the background changing);
  - how much of a recording survives a SIGKILLed ffmpeg.

Run: python benchmarks/recording_cost.py [--geometry 1920x1080] [--fps 10]
         [--seconds 10] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from typing import Any

from twisted.internet import defer, task

from agentdesktop.x11 import DesktopConfig, X11Desktop
from agentdesktop.recording import Recorder, RecorderConfig

TICKS = os.sysconf("SC_CLK_TCK")


def cpuSeconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def duration(path: str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", path],
        capture_output=True, check=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def sleep(reactor: Any, seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


def pidOf(recorder: Recorder, rid: str) -> int:
    child = recorder._recordings[rid].child
    assert child is not None
    return child.pid


async def busy(reactor: Any, env: dict[str, str], seconds: float) -> None:
    """A typical agent screen: the pointer moves, the background changes."""
    colours = ["#336699", "#993366", "#669933", "#cccccc"]
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        subprocess.run(["xdotool", "mousemove", str(200 + 37 * (i % 40)), str(150 + 23 * (i % 30))], env=env)
        if i % 10 == 0:
            subprocess.run(["xsetroot", "-solid", colours[(i // 10) % len(colours)]], env=env)
        i += 1
        await sleep(reactor, 0.5)


async def main(reactor: Any, args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.geometry.split("x"))
    desktop = X11Desktop(reactor, DesktopConfig(width=width, height=height, windowManager=("openbox",), desktop="minimal"))
    info = await desktop.start()
    env = dict(os.environ, DISPLAY=info.display, XAUTHORITY=info.xauthority)
    directory = tempfile.mkdtemp(prefix="recording-cost-")
    recorder = Recorder(reactor, reactor, desktop, RecorderConfig(
        directory=directory, fps=args.fps, preset=args.preset, stopGrace=5,
    ))
    terminal = None
    try:
        await sleep(reactor, 1)
        # 1. idle desktop
        rid = str(uuid.uuid4())
        await recorder.start(rid)
        pid = pidOf(recorder, rid)
        await sleep(reactor, 2)
        c0, t0 = cpuSeconds(pid), time.monotonic()
        await sleep(reactor, args.seconds)
        c1, t1 = cpuSeconds(pid), time.monotonic()
        idle = await recorder.stop(rid)
        print(f"idle {width}x{height} @ {args.fps} fps, preset {args.preset}: "
              f"ffmpeg uses {100 * (c1 - c0) / (t1 - t0):.1f}% of one core; "
              f"{idle.videoSize * 60 / (args.seconds + 2) / 1e6:.2f} MB/min")

        # 2. typical: a terminal running top, pointer and background moving
        terminal = subprocess.Popen(
            ["xterm", "-geometry", "120x40+100+100", "-e", "top", "-d", "1"], env=env,
        )
        await sleep(reactor, 1)
        rid = str(uuid.uuid4())
        began = time.monotonic()
        await recorder.start(rid)
        pid = pidOf(recorder, rid)
        c0 = cpuSeconds(pid)
        await busy(reactor, env, args.seconds * 2)
        c1, wall = cpuSeconds(pid), time.monotonic() - began
        typical = await recorder.stop(rid)
        print(f"typical: {typical.videoSize * 60 / wall / 1e6:.2f} MB/min "
              f"({typical.videoSize} bytes in {wall:.1f} s), "
              f"ffmpeg {100 * (c1 - c0) / wall:.1f}% of one core; "
              f"video {duration(typical.videoPath):.2f} s for {wall:.2f} s wall")

        # 3. SIGKILL mid-recording
        rid = str(uuid.uuid4())
        began = time.monotonic()
        await recorder.start(rid)
        await busy(reactor, env, args.seconds)
        os.kill(pidOf(recorder, rid), signal.SIGKILL)
        wall = time.monotonic() - began
        killed = await recorder.stop(rid)
        kept = duration(killed.videoPath)
        print(f"SIGKILL after {wall:.2f} s: {kept:.2f} s of video survives "
              f"({wall - kept:.2f} s lost), thumbnail {'yes' if killed.thumbnailPath else 'no'}")
    finally:
        if terminal is not None:
            terminal.terminate()
            terminal.wait()
        await recorder.close()
        await desktop.stop()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geometry", default="1920x1080")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--preset", default="veryfast")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor, arguments)))
