"""
Batches against separate requests, and how soon an observation arrives
after the screen settled.

1. Five clicks and a screenshot (1920x1080 -> 1280x720 PNG) as six
   ``/action`` requests, against one ``/batch`` of five clicks with an
   observation (``settle_ms`` 0), rounds interleaved, same run.
2. An xterm that prints a few lines over about 150 ms after a key press:
   a batch presses the key and observes with ``settle_ms`` 150.  This
   process watches the screen itself (X DAMAGE, its own connection) and
   notes when the last change came; the overhead is how long after the
   last change + ``settle_ms`` the observation arrived.

    .venv/bin/python benchmarks/batch.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agentdesktop.x11.damage import DamageWatcher  # noqa: E402
from benchmarks.common import HEADER, Service, row, stop, timings  # noqa: E402

SIZE = {"scaled_width": 1280, "scaled_height": 720}
POINTS = [[100, 100], [200, 120], [300, 140], [400, 160], [500, 180]]
SETTLE_MS = 150


def clicksAndScreenshot(service: Service, rounds: int) -> None:
    clicks = [{"action": "left_click", "coordinate": p, **SIZE} for p in POINTS]

    def separate() -> None:
        for c in clicks:
            service.call("POST", "action", c)
        service.call("POST", "action", {"action": "screenshot", **SIZE})

    def batch() -> None:
        out = service.call("POST", "batch", {"actions": clicks, **SIZE,
                                             "observe": {"settle_ms": 0}})
        assert out["failed_index"] is None and "screenshot_data" in out["observation"]

    def screenshotAlone() -> None:
        service.call("POST", "action", {"action": "screenshot", **SIZE})

    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    separate(), batch()
    for _ in range(rounds):
        a += timings(separate, 1, warmup=0)
        b += timings(batch, 1, warmup=0)
        c += timings(screenshotAlone, 1, warmup=0)
    print(row("5 clicks + screenshot, one /batch with observe", b, a, "6 x /action", "<= 0.5"))
    # No batch can take less than the screenshot it contains.
    print(row("the screenshot alone, one /action (the batch's floor)", c, a, "6 x /action"))


def settleOverhead(service: Service, rounds: int) -> None:
    script = ("while read -r line; do for i in 1 2 3 4 5 6; do echo output $i; sleep 0.025; done; "
              "done")
    term = service.spawn(["xterm", "-geometry", "80x24+0+0", "-e", "sh", "-c", script])
    watcher = DamageWatcher(service.info["display"], service.info["xauthority"])
    watcher.start()
    try:
        time.sleep(1.5)
        service.call("POST", "action", {"action": "left_click", "coordinate": [200, 150]})
        overheads, waits, missed = [], [], 0
        for _ in range(rounds):
            time.sleep(0.3)
            sent = time.monotonic()
            out = service.call("POST", "batch", {
                "actions": [{"action": "key", "text": "Return"}], **SIZE,
                "observe": {"settle_ms": SETTLE_MS, "timeout_ms": 3000}})
            arrived = time.monotonic()
            assert out["observation"]["settled"], out["observation"]
            if watcher.lastChange < sent:
                missed += 1  # the xterm did not react: nothing to measure
                continue
            overheads.append(arrived - watcher.lastChange - SETTLE_MS / 1000)
            waits.append(out["observation"]["waited_ms"] / 1000)
        print(row(f"observation after last change + settle_ms ({SETTLE_MS})", overheads))
        print(row("waited_ms reported by the service", waits))
        print(f"\nsettle overhead median {statistics.median(overheads) * 1000:.1f} ms"
              f" (target <= 30 ms); rounds without a screen change: {missed}")
    finally:
        watcher.stop()
        stop(term)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with Service() as service:
        print(HEADER)
        clicksAndScreenshot(service, args.rounds)
        settleOverhead(service, args.rounds)


if __name__ == "__main__":
    main()
