"""
Full raw framebuffer updates per second, six ways, in one run:

- directly on Xvnc's unix RFB socket (the ceiling),
- through C{GET /api/v0/desktop/vnc} (our WebSocket splice),
- through the raw RFB listener (C{vncListenService}),
- through websockify (PyPI C{websockify}) in front of the same unix socket,
- through a minimal relay (a reference, not a product): a separate process
  that does nothing but C{recv_into} from the unix socket and C{sendall} to
  TCP (with the service's loopback send buffer), about the least any relay
  over loopback TCP costs on this machine,
- through the same minimal relay behind a WebSocket upgrade (each read one
  binary frame, header and payload in one C{sendmsg}): the least a relay
  that speaks WebSocket costs, framing on both ends included.

Next to each path's rate: the CPU each full update cost the relaying
process (the service, or the relay; from /proc) and the measuring client's
thread, which shares the two cores with Xvnc and the relay.

The service side (desktop, site, listener) runs in a child process so the
measuring client does not share its reactor.  Each measurement: RFB 3.8
handshake, 32 bpp Raw, then "request a full non-incremental update, read
it" in a loop for --seconds.  The paths take turns, --rounds times, and a
ratio is taken within each round (against the direct socket measured
seconds before), because this machine's speed drifts between runs far
more than the paths differ; the table shows medians.

    python benchmarks/vnc_throughput.py [--geometry 1920x1080] [--seconds 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, protocol, reactor, stdio, task, threads  # noqa: E402

from benchmarks import rfbblocking  # noqa: E402


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
    from agentdesktop.service import makeState
    from agentdesktop.vnc.listener import vncListenService
    from agentdesktop.web.resource import makeSite
    from agentdesktop.web.root import makeRoot
    from agentdesktop.x11 import DesktopConfig, X11Desktop
    from tests.integration.harness import paintPattern

    desktop = X11Desktop(reactor, DesktopConfig(width=width, height=height, windowManager=None, xvnc=xvnc, desktop="minimal"))
    try:
        info = await desktop.start()
        await threads.deferToThread(paintPattern, info)
        state = makeState(desktop, reactor)
        port = reactor.listenTCP(
            0, makeSite(makeRoot(state, reactor)), interface="127.0.0.1"
        )
        raw = vncListenService("tcp:0:interface=127.0.0.1", state, reactor)
        raw.startService()
        rawPort = await raw.whenListening()
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


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def startListening(argv: list[str], port: int) -> tuple[Any, _Child]:
    """Run ARGV and wait until something accepts on PORT."""
    child = _Child()
    child.line.addErrback(lambda _: None)  # not every helper prints a line
    process = reactor.spawnProcess(child, argv[0], argv, env=dict(os.environ),
                                   childFDs={0: "w", 1: "r", 2: "r"})
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process, child
        if child.ended.called:
            break
        await sleep(0.05)
    raise RuntimeError(f"{argv[0]} did not listen on {port}")


async def startWebsockify(path: str) -> tuple[Any, _Child, int]:
    exe = shutil.which("websockify", path=os.path.dirname(sys.executable)) or shutil.which("websockify")
    if exe is None:
        raise SystemExit("websockify is not installed: pip install -e .[bench]")
    port = freePort()
    process, child = await startListening([exe, f"--unix-target={path}", f"127.0.0.1:{port}"], port)
    return process, child, port


async def startMinimalRelay(path: str, websocket: bool = False) -> tuple[Any, _Child, int]:
    port = freePort()
    argv = [sys.executable, os.path.abspath(__file__), "--relay", path, "--port", str(port)]
    if websocket:
        argv.append("--relay-websocket")
    process, child = await startListening(argv, port)
    return process, child, port


def _recvExactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _acceptWebSocket(viewer: socket.socket) -> None:
    """Read the upgrade request and answer 101 (nothing checked: a reference)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = viewer.recv(4096)
        if not chunk:
            raise EOFError
        head += chunk
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    viewer.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def _unmaskFrames(viewer: socket.socket, rfb: socket.socket) -> None:
    """The viewer's masked binary frames, unmasked, to RFB."""
    while True:
        b0, b1 = _recvExactly(viewer, 2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _recvExactly(viewer, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", _recvExactly(viewer, 8))
        mask = _recvExactly(viewer, 4)
        payload = _recvExactly(viewer, length)
        if b0 & 0x0F == 8:
            raise EOFError
        rfb.sendall(bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def minimalRelay(path: str, port: int, websocket: bool = False) -> None:
    """
    The reference relay (blocking; its own process): one client at a time,
    TCP to the unix socket at PATH, bytes unchanged, one reused buffer, the
    same loopback send buffer as the service's.  With WEBSOCKET, the same
    behind a WebSocket upgrade: each read goes out as one binary frame
    (header and payload in one C{sendmsg}), the viewer's frames unmasked.
    """
    from agentdesktop.vnc.splice import LOOPBACK_SEND_BUFFER, frameHeader

    server = socket.create_server(("127.0.0.1", port))
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        viewer, _ = server.accept()
        viewer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        viewer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LOOPBACK_SEND_BUFFER)
        rfb = socket.socket(socket.AF_UNIX)
        try:
            if websocket:
                _acceptWebSocket(viewer)
            rfb.connect(path)
        except (OSError, EOFError, StopIteration):
            viewer.close()
            continue

        def up(viewer: socket.socket = viewer, rfb: socket.socket = rfb) -> None:
            try:
                if websocket:
                    _unmaskFrames(viewer, rfb)
                else:
                    while data := viewer.recv(65536):
                        rfb.sendall(data)
            except (OSError, EOFError):
                pass
            try:
                rfb.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        try:
            while n := rfb.recv_into(buffer):
                if websocket:
                    header = frameHeader(n)
                    sent = viewer.sendmsg([header, view[:n]])
                    if sent < len(header):
                        viewer.sendall(header[sent:])
                        sent = len(header)
                    viewer.sendall(view[sent - len(header):n])
                else:
                    viewer.sendall(view[:n])
        except OSError:
            pass
        viewer.close()
        rfb.close()


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
    helpers: list[tuple[Any, _Child]] = []
    try:
        where = json.loads(await server.line)

        def unixSocket() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(where["rfb"])
            return sock

        def tcp(port: int) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        wsProcess, wsChild, wsPort = await startWebsockify(where["rfb"])
        helpers.append((wsProcess, wsChild))
        relayProcess, relayChild, relayPort = await startMinimalRelay(where["rfb"])
        helpers.append((relayProcess, relayChild))
        wsRelayProcess, wsRelayChild, wsRelayPort = await startMinimalRelay(where["rfb"], websocket=True)
        helpers.append((wsRelayProcess, wsRelayChild))
        paths: dict[str, Any] = {
            DIRECT: lambda: rfbblocking.Plain(unixSocket()),
            OURS: lambda: rfbblocking.WebSocket(tcp(where["http"]), "/api/v0/desktop/vnc"),
            RAW: lambda: rfbblocking.Plain(tcp(where["raw"])),
            WEBSOCKIFY: lambda: rfbblocking.WebSocket(tcp(wsPort), "/", "binary"),
            RELAY: lambda: rfbblocking.Plain(tcp(relayPort)),
            WS_RELAY: lambda: rfbblocking.WebSocket(tcp(wsRelayPort), "/"),
        }
        relaying = {OURS: where["pid"], RAW: where["pid"], RELAY: relayProcess.pid, WS_RELAY: wsRelayProcess.pid}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, make in paths.items():
                results[name].append(await threads.deferToThread(
                    lambda name=name, make=make: measureWithCPU(name, make, relaying.get(name), args.seconds)))
    finally:
        for helperProcess, helperChild in helpers:
            await stop(helperProcess, helperChild)
        process.closeStdin()
        timer = reactor.callLater(20, lambda: server.ended.called or process.signalProcess("KILL"))
        await server.ended
        if timer.active():
            timer.cancel()
    report(args, results)


DIRECT = "direct unix RFB socket"
OURS = "agentdesktop /vnc (WebSocket)"
RAW = "agentdesktop raw listener"
WEBSOCKIFY = "websockify"
RELAY = "minimal relay (reference)"
WS_RELAY = "minimal WebSocket relay"


#: CPU milliseconds per full update, by path: of the relaying process (the
#: service, or the minimal relay; websockify forks per connection, so it is
#: left out) and of the measuring client's thread.
CPU: dict[str, dict[str, list[float]]] = {}


def processCPU(pid: int) -> float:
    """PID's user + system CPU seconds (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measureWithCPU(name: str, make: Any, pid: int | None, seconds: float) -> tuple[float, float]:
    before = processCPU(pid) if pid else 0.0
    client = time.thread_time()
    fps, mbps = rfbblocking.measure(make(), seconds)
    client = time.thread_time() - client
    frames = fps * seconds
    record = CPU.setdefault(name, {"relaying": [], "client": []})
    if pid:
        record["relaying"].append((processCPU(pid) - before) / frames * 1000)
    record["client"].append(client / frames * 1000)
    return fps, mbps


def ratios(results: dict[str, list[tuple[float, float]]], name: str, base: str) -> list[float]:
    """NAME's updates/s over BASE's, within each round."""
    return [a[0] / b[0] for a, b in zip(results[name], results[base], strict=True)]


def report(args: argparse.Namespace, results: dict[str, list[tuple[float, float]]]) -> None:
    """Medians of each path's rounds, and of its ratios within each round."""
    if args.json:
        print(json.dumps({name: {
            "updates_per_s": [r[0] for r in rounds], "mb_per_s": [r[1] for r in rounds],
            "vs_direct": ratios(results, name, DIRECT),
            "vs_websockify": ratios(results, name, WEBSOCKIFY),
            "vs_relay": ratios(results, name, RELAY),
            "vs_websocket_relay": ratios(results, name, WS_RELAY),
            "cpu_ms_per_update": {k: statistics.median(v) if v else None for k, v in CPU[name].items()},
        } for name, rounds in results.items()}))
        return

    print(f"geometry {args.geometry}, 32 bpp Raw; {args.rounds} rounds of {args.seconds:g} s per path; "
          "medians, and the range of the per-round ratio to the direct socket")
    print(f"{'path':30} {'updates/s':>10} {'MB/s':>7} {'vs direct':>10} {'(range)':>12} {'vs websockify':>14} "
          f"{'vs relay':>9} {'vs WS relay':>12}")
    for name, rounds in results.items():
        fps = statistics.median(r[0] for r in rounds)
        mbps = statistics.median(r[1] for r in rounds)
        direct = ratios(results, name, DIRECT)
        print(f"{name:30} {fps:10.1f} {mbps:7.0f} {statistics.median(direct):10.2f} "
              f"{min(direct):5.2f}–{max(direct):4.2f} {statistics.median(ratios(results, name, WEBSOCKIFY)):14.2f} "
              f"{statistics.median(ratios(results, name, RELAY)):9.2f} "
              f"{statistics.median(ratios(results, name, WS_RELAY)):12.2f}")
    print("\nCPU ms per full update (medians of the rounds): the relaying process, the measuring client")
    for name, record in CPU.items():
        relaying = f"{statistics.median(record['relaying']):.2f}" if record["relaying"] else "-"
        print(f"{name:30} {relaying:>10} {statistics.median(record['client']):10.2f}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geometry", default="1920x1080")
    parser.add_argument("--seconds", type=float, default=2.0, help="per path and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--xvnc", default="Xvnc")
    parser.add_argument("--json", action="store_true", help="print the rounds as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--relay-websocket", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        minimalRelay(args.relay, args.port, args.relay_websocket)
        return
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
