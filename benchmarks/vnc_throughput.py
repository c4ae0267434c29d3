"""
Full raw framebuffer updates per second, four ways, in one run:

- directly on Xvnc's unix RFB socket (the ceiling),
- through C{GET /api/v0/desktop/vnc} (our WebSocket splice),
- through the raw RFB listener (C{vncListenService}),
- through websockify (PyPI C{websockify}) in front of the same unix socket.

The service side (desktop, site, listener) runs in a child process so the
measuring client does not share its reactor.  Each path: RFB 3.8
handshake, 32 bpp Raw, then "request a full non-incremental update, read
it" in a loop for --seconds.

    python benchmarks/vnc_throughput.py [--geometry 1920x1080] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, protocol, reactor, stdio, task, threads  # noqa: E402

from benchmarks import rfbblocking  # noqa: E402
from tests import rfbclient  # noqa: E402


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


# -- the service side (child process)


class _UntilEOF(protocol.Protocol):
    def __init__(self) -> None:
        self.done: defer.Deferred[None] = defer.Deferred()

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(None)


async def serve(width: int, height: int, xvnc: str) -> None:
    from agentdesktop.desktop import DesktopConfig, X11Desktop
    from agentdesktop.service import makeState
    from agentdesktop.vnc import vncChildren, vncListenService
    from agentdesktop.web import makeRoot, makeSite
    from tests.test_vnc_integration import paintPattern

    desktop = X11Desktop(reactor, DesktopConfig(width=width, height=height, windowManager=None, xvnc=xvnc))
    try:
        info = await desktop.start()
        await threads.deferToThread(paintPattern, info.display)
        state = makeState(desktop, reactor)
        port = reactor.listenTCP(
            0, makeSite(makeRoot(state, extra=vncChildren(state, reactor))), interface="127.0.0.1"
        )
        raw = vncListenService("tcp:0:interface=127.0.0.1", state, reactor)
        raw.startService()
        rawPort = await raw._waitingForPort  # type: ignore[attr-defined]
        stdin = _UntilEOF()
        stdio.StandardIO(stdin)
        sys.stdout.write(json.dumps({
            "http": port.getHost().port, "raw": rawPort.getHost().port,
            "rfb": info.rfbSocket, "pid": os.getpid(),
        }) + "\n")
        sys.stdout.flush()
        await stdin.done
        await raw.stopService()
        await port.stopListening()
    finally:
        await desktop.stop()


# -- the measuring side


class _Child(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.out = b""
        self.line: defer.Deferred[bytes] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data
        if b"\n" in self.out and not self.line.called:
            self.line.callback(self.out.split(b"\n")[0])

    def processEnded(self, reason: Any) -> None:
        if not self.line.called:
            self.line.errback(RuntimeError(f"child exited: {reason.value}"))
        self.ended.callback(None)


async def measure(client: rfbclient.RFBClient, seconds: float) -> tuple[float, float]:
    await client.handshake()
    frame = client.width * client.height * 4
    for _ in range(2):  # warm up
        client.requestUpdate(False)
        await readDiscard(client)
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.requestUpdate(False)
        await readDiscard(client)
        frames += 1
    elapsed = time.perf_counter() - started
    client.close()
    return frames / elapsed, frames * frame / elapsed / 1e6


async def readDiscard(client: rfbclient.RFBClient) -> None:
    """Read one framebuffer update without keeping its pixels."""
    import struct

    r = client.reader
    while True:
        (kind,) = struct.unpack("!B", await r.read(1))
        if kind == 0:
            break
        if kind == 2:
            continue
        raise ValueError(f"unexpected server message {kind}")
    (count,) = struct.unpack("!xH", await r.read(3))
    for _ in range(count):
        x, y, w, h, encoding = struct.unpack("!HHHHi", await r.read(12))
        await r.read(w * h * 4)


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def startWebsockify(path: str) -> tuple[Any, _Child, int]:
    exe = shutil.which("websockify", path=os.path.dirname(sys.executable)) or shutil.which("websockify")
    if exe is None:
        raise SystemExit("websockify is not installed: pip install websockify")
    port = freePort()
    child = _Child()
    child.line.addErrback(lambda _: None)  # websockify prints no ready line
    argv = [exe, f"--unix-target={path}", f"127.0.0.1:{port}"]
    process = reactor.spawnProcess(child, exe, argv, env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r"})
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process, child, port
        await sleep(0.05)
    raise RuntimeError("websockify did not listen")


async def stop(process: Any, child: _Child) -> None:
    if not child.ended.called:
        process.signalProcess("TERM")
        timer = reactor.callLater(5, lambda: child.ended.called or process.signalProcess("KILL"))
        await child.ended
        if timer.active():
            timer.cancel()


async def main(args: argparse.Namespace) -> None:
    server = _Child()
    argv = [sys.executable, os.path.abspath(__file__), "--serve", "--geometry", args.geometry,
            "--xvnc", args.xvnc]
    process = reactor.spawnProcess(server, sys.executable, argv, env=dict(os.environ),
                                   childFDs={0: "w", 1: "r", 2: 2})
    try:
        where = json.loads(await server.line)
        results: dict[str, tuple[float, float]] = {}

        def unixSocket() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(where["rfb"])
            return sock

        def tcp(port: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        def run(make: Any) -> defer.Deferred[tuple[float, float]]:
            return threads.deferToThread(lambda: rfbblocking.measure(make(), args.seconds))

        results["direct unix RFB socket"] = await run(lambda: rfbblocking.Plain(unixSocket()))
        results["agentdesktop /vnc (WebSocket)"] = await run(
            lambda: rfbblocking.WebSocket(tcp(where["http"]), "/api/v0/desktop/vnc"))
        results["agentdesktop raw listener"] = await run(
            lambda: rfbblocking.Plain(tcp(where["raw"])))

        wsProcess, wsChild, wsPort = await startWebsockify(where["rfb"])
        try:
            results["websockify"] = await run(
                lambda: rfbblocking.WebSocket(tcp(wsPort), "/", "binary"))
        finally:
            await stop(wsProcess, wsChild)
    finally:
        process.closeStdin()
        timer = reactor.callLater(20, lambda: server.ended.called or process.signalProcess("KILL"))
        await server.ended
        if timer.active():
            timer.cancel()

    base = results["direct unix RFB socket"][0]
    ws = results.get("websockify", (0.0, 0.0))[0]
    print(f"geometry {args.geometry}, 32 bpp Raw, {args.seconds:g} s per path")
    print(f"{'path':34} {'updates/s':>10} {'MB/s':>8} {'vs direct':>10} {'vs websockify':>14}")
    for name, (fps, mbps) in results.items():
        print(f"{name:34} {fps:10.1f} {mbps:8.0f} {fps / base:10.2f} "
              f"{(fps / ws if ws else float('nan')):14.2f}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geometry", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--xvnc", default="Xvnc")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.geometry.split("x"))
    coroutine = serve(width, height, args.xvnc) if args.serve else main(args)
    failed: list[Any] = []

    def start() -> None:
        d = defer.Deferred.fromCoroutine(coroutine)
        d.addErrback(lambda f: (failed.append(f), f.printTraceback(file=sys.stderr)))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run()
