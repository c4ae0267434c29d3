"""
Time from opening the viewer page in headless Chromium to its first drawn
desktop frame.

A script added before the page's own (DevTools'
C{Page.addScriptToEvaluateOnNewDocument}) watches noVNC's canvas on every
animation frame and notes C{performance.now()} (milliseconds since the
navigation started) when the canvas's centre pixel shows what the X
server's centre pixel is; the benchmark reads that value, so polling does
not add to it.  Each round navigates to C{about:blank} first.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

from benchmarks.rfbblocking import maskedFrame

WATCH = """
(() => {
  const want = %s;
  const look = () => {
    const c = document.querySelector('#screen canvas');
    if (c && c.width > 1) {
      const d = c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
      if (d[0] === want[0] && d[1] === want[1] && d[2] === want[2]) {
        window.__firstFrame = performance.now();
        return;
      }
    }
    requestAnimationFrame(look);
  };
  if (location.protocol.startsWith('http')) requestAnimationFrame(look);
})();
"""


class DevTools:
    """A blocking Chrome DevTools Protocol client over one WebSocket."""

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"DevTools refused the WebSocket: {head[:80]!r}")
        self.nextId = 0

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("DevTools closed the connection")
            out += chunk
        return out

    def _message(self) -> bytes:
        data = b""
        while True:
            b0, b1 = self._recv(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._recv(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._recv(8))
            payload = self._recv(length)
            if b0 & 0x0F in (0, 1, 2):
                data += payload
                if b0 & 0x80:
                    return data

    def call(self, method: str, **params: Any) -> Any:
        self.nextId += 1
        payload = json.dumps({"id": self.nextId, "method": method, "params": params}).encode()
        self.sock.sendall(maskedFrame(0x1, payload))
        while True:
            message = json.loads(self._message())
            if message.get("id") == self.nextId:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result")

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"].get("value")


class Chromium:
    """Headless Chromium with DevTools on a loopback port; killed on exit."""

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="adbench-chromium-")
        exe = shutil.which("chromium") or "chromium"
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "about:blank"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        portFile = os.path.join(self.profile, "DevToolsActivePort")
        for _ in range(600):
            if os.path.exists(portFile):
                with open(portFile) as f:
                    first = f.read().split("\n")[0].strip()
                if first.isdigit():
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("Chromium did not open DevTools")
        with urllib.request.urlopen(f"http://127.0.0.1:{first}/json/list") as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t.get("type") == "page")
        self.devtools = DevTools(page["webSocketDebuggerUrl"])
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def firstFrames(url: str, centre: Any, rounds: int, timeout: float = 20.0) -> list[float]:
    """
    Seconds from navigating to URL to the first frame whose centre pixel is
    CENTRE (a callable giving the X server's centre pixel now), ROUNDS times.
    """
    out = []
    with Chromium() as browser:
        cdp = browser.devtools
        cdp.call("Page.enable")
        script = None
        for _ in range(rounds + 1):
            if script is not None:
                cdp.call("Page.removeScriptToEvaluateOnNewDocument", identifier=script)
            script = cdp.call("Page.addScriptToEvaluateOnNewDocument",
                              source=WATCH % json.dumps(list(centre())))["identifier"]
            cdp.call("Page.navigate", url="about:blank")
            cdp.call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            seen = None
            while seen is None and time.monotonic() < deadline:
                time.sleep(0.02)
                seen = cdp.evaluate("window.__firstFrame ?? null")
            if seen is None:
                raise RuntimeError("the viewer drew no desktop frame in time")
            out.append(seen / 1000)
    return out[1:]  # the first round warms Chromium's cache up
