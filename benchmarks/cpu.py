"""
CPU time per request, for one or more checkouts of agentdesktop side by
side: the evidence that holds on a busy machine, where wall-clock times
are not.

Each checkout's service runs at once on its own desktop (quiet, then
busy: see L{benchmarks.scene}); the requests go to them in turns.  A
request's cost is the CPU time its service used (every thread, from
/proc/PID/task/*/schedstat, in nanoseconds, plus the children it reaped,
as one-off xdotool processes are), the X server's and the long-lived
xdotool's, per request, over --requests requests, median of --rounds.

    .venv/bin/python -m benchmarks.cpu [--rounds 7] [--requests 20] NAME=DIR[:OPTION...] ...

DIR is a checkout (e.g. ``git worktree add ../base <commit>``); its own
``agentdesktop`` package is imported by its service, started with the
twistd options given after colons (``new=.:--xdotool-mode=per-action``).
"""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from benchmarks import common
from benchmarks.scene import Scene

TICK = os.sysconf("SC_CLK_TCK")
REQUESTS: dict[str, dict[str, Any]] = {
    "screenshot 720p PNG": {"action": "screenshot", "scaled_width": 1280, "scaled_height": 720},
    "screenshot native PNG": {"action": "screenshot"},
    "screenshot 720p JPEG q80": {"action": "screenshot", "scaled_width": 1280,
                                 "scaled_height": 720, "format": "jpeg", "quality": 80},
    "left_click": {"action": "left_click", "coordinate": [640, 360], "scaled_width": 1280,
                   "scaled_height": 720},
    "mouse_move": {"action": "mouse_move", "coordinate": [100, 100]},
    "key": {"action": "key", "text": "shift"},
}


def threadsCPU(pid: int) -> float:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def reapedCPU(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICK


def children(pid: int) -> list[tuple[int, str]]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/comm") as f:
                    out.append((kid, f.read().strip()))
            except OSError:
                pass
    return out


def usage(pid: int) -> dict[str, float]:
    """CPU seconds so far: the service (with reaped children), Xvnc, a live xdotool."""
    out = {"service": threadsCPU(pid) + reapedCPU(pid), "Xvnc": 0.0, "xdotool": 0.0}
    for kid, name in children(pid):
        if name in ("Xvnc", "xdotool"):
            out[name] += threadsCPU(kid)
    return out


def perRequest(service: common.Service, body: dict[str, Any], n: int) -> dict[str, float]:
    before = usage(service.pid)
    for _ in range(n):
        service.raw("POST", "action", body)
    after = usage(service.pid)
    return {k: (after[k] - before[k]) * 1000 / n for k in before}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("checkouts", nargs="+", metavar="NAME=DIR")
    args = parser.parse_args()
    services: dict[str, common.Service] = {}
    scenes: list[Scene] = []
    try:
        for spec in args.checkouts:
            name, _, rest = spec.partition("=")
            directory, *options = rest.split(":")
            common.ROOT = os.path.abspath(directory)
            services[name] = common.Service(*options).__enter__()
            scenes.append(Scene(services[name]))
            scenes[-1].quiet()
        print("| desktop | request | checkout | service | Xvnc | xdotool | total ms CPU |")
        print("|---|---|---|---|---|---|---|")
        for desktop in ("quiet", "busy"):
            if desktop == "busy":
                for scene in scenes:
                    scene.busy()
            for label, body in REQUESTS.items():
                if desktop == "busy" and not label.startswith("screenshot"):
                    continue
                samples: dict[str, list[dict[str, float]]] = {name: [] for name in services}
                for _ in range(args.rounds):
                    for name, service in services.items():
                        samples[name].append(perRequest(service, body, args.requests))
                for name, rounds in samples.items():
                    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
                    total = statistics.median(sum(r.values()) for r in rounds)
                    print(f"| {desktop} | {label} | {name} | {med['service']:.2f} | "
                          f"{med['Xvnc']:.2f} | {med['xdotool']:.2f} | {total:.2f} |", flush=True)
    finally:
        for scene in scenes:
            scene.stop()
        for service in services.values():
            service.__exit__()


if __name__ == "__main__":
    main()
