"""
C{agentdesktop-ctl}: the desktop from a shell, on L{agentdesktop.client}.

Exit status: 0 on success, 1 when the service answered an error (its
C{message: detail} on stderr) or could not be reached, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from twisted.internet import task
from twisted.internet.error import ConnectError
from twisted.web.client import ResponseFailed

from agentdesktop import __version__
from agentdesktop.client import DesktopAPIError, DesktopClient, apiBase

DEFAULT_URL = "http://127.0.0.1:8790"

#: --format inferred from the output file's extension.
EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}

BUTTONS = ("left", "right", "middle", "double", "triple", "back", "forward")


def size(text: str) -> tuple[int, int]:
    """C{WxH} (as C{1280x720}) as a pair of positive integers."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(width), int(height)


def _commands(sub: Any) -> None:
    sub.add_parser("info", help="print the desktop's size, display and version (JSON)")
    shot = sub.add_parser("screenshot", help="save a screenshot")
    shot.add_argument("-o", "--output", required=True, help="the image file (- for stdout)")
    shot.add_argument("--scaled", type=size, metavar="WxH", help="the declared size of the image")
    shot.add_argument("--format", choices=("png", "jpeg", "webp"), help="default: from the file's extension, else png")
    shot.add_argument("--quality", type=int, help="1-100, for jpeg and webp")
    click = sub.add_parser("click", help="click at X Y")
    click.add_argument("x", type=int)
    click.add_argument("y", type=int)
    click.add_argument("--button", choices=BUTTONS, default="left")
    click.add_argument("--scaled", type=size, metavar="WxH", help="the declared space X Y are in")
    click.add_argument("--modifiers", metavar="KEYS", help="keys held during the click, e.g. shift or ctrl+alt")
    typing = sub.add_parser("type", help="type TEXT exactly")
    typing.add_argument("text")
    key = sub.add_parser("key", help="press a key combination such as ctrl+shift+t")
    key.add_argument("combo")
    key.add_argument("--repeat", type=int)
    batch = sub.add_parser("batch", help="run a batch from a JSON file (- for stdin); print the answer")
    batch.add_argument("file")
    record = sub.add_parser("record", help="record the screen").add_subparsers(dest="verb", required=True)
    start = record.add_parser("start", help="start recording; print the recording's id")
    start.add_argument("id", nargs="?", help="a UUID (default: a new one)")
    stop = record.add_parser("stop", help="stop recording; save the video")
    stop.add_argument("id")
    stop.add_argument("-o", "--output", required=True, help="the MP4 file")
    stop.add_argument("--thumbnail", metavar="FILE", help="also save the JPEG thumbnail")
    clip = sub.add_parser("clipboard", help="read or set the clipboard").add_subparsers(dest="verb", required=True)
    get = clip.add_parser("get", help="print the clipboard's text")
    put = clip.add_parser("set", help="set the clipboard's text")
    put.add_argument("text")
    for p in (get, put):
        p.add_argument("--selection", choices=("clipboard", "primary"), default="clipboard")
    windows = sub.add_parser("windows", help="list the windows (JSON)")
    windows.add_argument("--scaled", type=size, metavar="WxH", help="the declared space of the rectangles")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentdesktop-ctl", description="Drive an agentdesktop service from the command line.",
        epilog="Exit status: 0 success, 1 an error from the service (or none reached), 2 bad usage.",
    )
    p.add_argument("--url", default=os.environ.get("AGENTDESKTOP_URL") or DEFAULT_URL,
                   help=f"the service's root or API URL (default: $AGENTDESKTOP_URL, else {DEFAULT_URL})")
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="the bearer token (default: $AGENTDESKTOP_TOKEN)")
    tokens.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _commands(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return p


def _token(p: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            p.error(f"--token-file: {e.strerror}: {args.token_file}")
        if not token:
            p.error(f"--token-file: {args.token_file} is empty")
        return token
    return args.token or os.environ.get("AGENTDESKTOP_TOKEN") or None


def _batchBody(p: argparse.ArgumentParser, name: str) -> Any:
    """The batch to send: a JSON object as it is, or a list of actions."""
    try:
        if name == "-":
            text = sys.stdin.read()
        else:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        body = json.loads(text)
    except OSError as e:
        p.error(f"batch: {e.strerror}: {name}")
    except ValueError as e:
        p.error(f"batch: {name} is not JSON: {e}")
    if isinstance(body, list):
        body = {"actions": body}
    if not isinstance(body, dict):
        p.error(f"batch: {name} must hold a JSON object or a list of actions")
    return body


def _scaled(args: argparse.Namespace) -> dict[str, int]:
    if args.scaled is None:
        return {}
    return {"scaled_width": args.scaled[0], "scaled_height": args.scaled[1]}


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _write(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with open(path, "wb") as f:
        f.write(data)


async def _screenshot(client: DesktopClient, args: argparse.Namespace) -> None:
    fmt = args.format or EXTENSIONS.get(os.path.splitext(args.output)[1].lower(), "png")
    shot = await client.screenshot(format=fmt, quality=args.quality, **_scaled(args))
    _write(args.output, shot.data)
    if args.output != "-":
        print(f"{args.output}: {shot.width}x{shot.height} {shot.format}, {len(shot.data)} bytes")


async def _click(client: DesktopClient, args: argparse.Namespace) -> None:
    click = getattr(client, args.button + "_click")
    print(await click(args.x, args.y, args.modifiers, **_scaled(args)))


async def _record(client: DesktopClient, args: argparse.Namespace) -> None:
    if args.verb == "start":
        print(await client.start_recording(args.id))
        return
    recording = await client.stop_recording(args.id)
    _write(args.output, recording.video)
    print(f"{args.output}: {len(recording.video)} bytes")
    if args.thumbnail is not None:
        if recording.thumbnail is None:
            print("the recording has no thumbnail", file=sys.stderr)
        else:
            _write(args.thumbnail, recording.thumbnail)
            print(f"{args.thumbnail}: {len(recording.thumbnail)} bytes")


async def _clipboard(client: DesktopClient, args: argparse.Namespace) -> None:
    if args.verb == "set":
        await client.set_clipboard(args.text, args.selection)
        return
    text = await client.get_clipboard(args.selection)
    if text is None:
        print(f"nobody owns the {args.selection} selection", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


async def _simple(client: DesktopClient, args: argparse.Namespace) -> None:
    if args.command == "info":
        _print(await client.info())
    elif args.command == "type":
        print(await client.type(args.text))
    elif args.command == "key":
        print(await client.key(args.combo, args.repeat))
    elif args.command == "batch":
        _print(await client.request("POST", "batch", args.body))
    elif args.command == "windows":
        _print(await client.windows(**_scaled(args)))


COMMANDS: dict[str, Callable[[DesktopClient, argparse.Namespace], Awaitable[None]]] = {
    "screenshot": _screenshot, "click": _click, "record": _record, "clipboard": _clipboard,
}


async def run(
    reactor: Any, args: argparse.Namespace, token: str | None, client: DesktopClient | None = None
) -> None:
    """
    Run the command (with CLIENT, by default one of C{args.url}); raise
    C{SystemExit(1)} for a failure, with what failed on stderr.
    """
    if client is None:
        client = DesktopClient(args.url, token, reactor=reactor)
    try:
        await COMMANDS.get(args.command, _simple)(client, args)
    except DesktopAPIError as e:
        print(f"{e.message}: {e.detail}" if e.detail else e.message, file=sys.stderr)
        raise SystemExit(1) from None
    except ResponseFailed as e:
        reasons = "; ".join(r.getErrorMessage() for r in e.reasons)
        print(f"no answer from {client.base}: {reasons}", file=sys.stderr)
        raise SystemExit(1) from None
    except (ConnectError, OSError) as e:
        print(f"cannot reach {client.base}: {e}" if isinstance(e, ConnectError) else str(e), file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        await client.close()


def prepare(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, str | None]:
    """
    Everything that needs no service: parse ARGV, check the URL, read the
    token and the batch file.  A usage error exits with status 2.
    """
    p = parser()
    args = p.parse_args(argv)
    try:
        apiBase(args.url)
    except ValueError as e:
        p.error(f"--url: {e}")
    token = _token(p, args)
    if args.command == "batch":
        args.body = _batchBody(p, args.file)
    return args, token


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: parse ARGV (default: the command line), run, exit."""
    task.react(run, prepare(argv))


if __name__ == "__main__":
    main()
