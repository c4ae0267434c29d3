"""
Strict decoding of request bodies (SPEC sections 5 and 9).  Pure: no
reactor.  A wrong JSON type is refused with a detail naming the field and
the type it needs; nothing is coerced.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from agentdesktop.errors import APIError, badRequest, decodeError
from agentdesktop.interfaces import MAX_CLIPBOARD_BYTES, SELECTIONS

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ActionRequest:
    """
    One decoded action.  C{sent} names every key the client gave a
    non-null value, so that the keys an action ignores can be reported.
    """

    action: str | None = None
    coordinate: tuple[int, int] | None = None
    start_coordinate: tuple[int, int] | None = None
    text: str | None = None
    key: str | None = None
    duration: int | None = None
    scroll_amount: int | None = None
    scroll_direction: str | None = None
    scaled_width: int | None = None
    scaled_height: int | None = None
    region: tuple[int, int, int, int] | None = None
    format: str | None = None
    quality: int | None = None
    repeat: int | None = None
    path: tuple[tuple[int, int], ...] | None = None
    sent: frozenset[str] = frozenset()


def typeName(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"an array of {len(value)} elements"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _isInt(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(name: str, value: object) -> int:
    if not _isInt(value):
        raise decodeError(
            f'field "{name}" must be an integer, got {typeName(value)}'
        )
    assert isinstance(value, int)
    return value


def _str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise decodeError(f'field "{name}" must be a string, got {typeName(value)}')
    return value


def _ints(name: str, value: object, n: int) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(_isInt(v) for v in value)
    ):
        what = typeName(value)
        if isinstance(value, list) and len(value) == n:
            what = "an array holding " + ", ".join(typeName(v) for v in value)
        raise decodeError(
            f'field "{name}" must be an array of {n} integers, got {what}'
        )
    return tuple(value)


def _rejectConstant(name: str) -> Any:
    raise ValueError(f"invalid JSON number {name}")


def decodeObject(body: bytes) -> dict[str, Any]:
    """
    Parse BODY as one JSON object.

    @raise APIError: 400 C{Failed to decode request body.} otherwise.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise decodeError(f"body is not UTF-8: {e}") from None
    if text.strip() == "":
        raise decodeError("body is empty; send a JSON object")
    try:
        value = json.loads(text, parse_constant=_rejectConstant)
    except (ValueError, RecursionError) as e:
        raise decodeError(str(e)) from None
    if not isinstance(value, dict):
        raise decodeError(f"body must be a JSON object, got {typeName(value)}")
    return value


_OPTIONAL_INTS = ("duration", "scroll_amount", "scaled_width", "scaled_height", "quality", "repeat")
_OPTIONAL_STRS = ("action", "text", "key", "scroll_direction", "format")

#: The most points a drag path may have.
MAX_PATH_POINTS = 1000


def _path(value: object) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise decodeError(
            f'field "path" must be an array of [x, y] integer pairs, got {typeName(value)}'
        )
    points = []
    for i, point in enumerate(value):
        points.append(_ints(f"path[{i}]", point, 2))
    return tuple((p[0], p[1]) for p in points)


def decodeAction(body: bytes) -> ActionRequest:
    """
    Decode the body of C{POST /action}.

    @raise APIError: 400 with the field and type in its detail.
    """
    return decodeActionObject(decodeObject(body))


def decodeActionObject(raw: dict[str, Any]) -> ActionRequest:
    """
    Decode one action given as a JSON object.

    @raise APIError: 400 with the field and type in its detail.
    """
    fields: dict[str, Any] = {}
    for name in _OPTIONAL_STRS:
        if raw.get(name) is not None:
            fields[name] = _str(name, raw[name])
    for name in _OPTIONAL_INTS:
        if raw.get(name) is not None:
            fields[name] = _int(name, raw[name])
    for name in ("coordinate", "start_coordinate"):
        if raw.get(name) is not None:
            fields[name] = _ints(name, raw[name], 2)
    if raw.get("region") is not None:
        fields["region"] = _ints("region", raw["region"], 4)
    if raw.get("path") is not None:
        fields["path"] = _path(raw["path"])
    fields["sent"] = frozenset(k for k, v in raw.items() if v is not None)
    return ActionRequest(**fields)


def decodeRecordingId(body: bytes) -> str:
    """
    Decode C{{"recording_id": "<uuid>"}} and return the canonical lower-case
    UUID.

    @raise APIError: 400 with the spec's messages.
    """
    raw = decodeObject(body)
    value = raw.get("recording_id")
    if value is None:
        value = ""
    value = _str("recording_id", value)
    if value == "":
        raise badRequest("Missing recording_id.")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise badRequest(
            "Invalid recording_id format.", "recording_id must be a valid UUID."
        ) from None


def decodeSelection(value: object) -> str:
    """
    A selection name (C{"clipboard"} when absent), from a body field or a
    query parameter.

    @raise APIError: 400 for any other value.
    """
    if value is None or value == "":
        return "clipboard"
    if not isinstance(value, str) or value.lower() not in SELECTIONS:
        raise badRequest(
            f"Unknown selection: {value}.", "selection must be \"clipboard\" or \"primary\"."
        )
    return value.lower()


@dataclass(frozen=True)
class ClipboardWrite:
    selection: str
    text: str


def decodeClipboardWrite(body: bytes) -> ClipboardWrite:
    """The body of C{POST /clipboard}; see L{decodeClipboardWriteObject}."""
    return decodeClipboardWriteObject(decodeObject(body))


def decodeClipboardWriteObject(raw: dict[str, Any]) -> ClipboardWrite:
    """
    Decode C{{"text": "...", "selection": "clipboard" | "primary"}}.

    @raise APIError: 400 for a missing or non-string C{text}; 413 for text
        over L{MAX_CLIPBOARD_BYTES} in UTF-8.
    """
    if raw.get("text") is None:
        raise badRequest('Missing "text".', 'Send {"text": "..."}.')
    text = _str("text", raw["text"])
    selection = decodeSelection(_optionalStr(raw, "selection"))
    checkClipboardText(text)
    return ClipboardWrite(selection, text)


def checkClipboardText(text: str) -> None:
    """
    @raise APIError: 400 for text that is not valid Unicode (a lone
        surrogate), 413 for text over L{MAX_CLIPBOARD_BYTES} in UTF-8.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise badRequest(
            "Invalid clipboard text.", f"text is not valid Unicode: {e.reason} at {e.start}"
        ) from None
    if size > MAX_CLIPBOARD_BYTES:
        raise APIError(
            413, "Clipboard text too large.",
            f"{size} bytes in UTF-8; the limit is {MAX_CLIPBOARD_BYTES}.",
        )


def _optionalStr(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return None if value is None else _str(name, value)


#: The longest C{timeout_ms} a launch may wait for its window.
MAX_LAUNCH_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class LaunchRequest:
    command: tuple[str, ...]
    waitForWindow: bool = False
    timeoutMs: int = 10_000
    scaled_width: int | None = None
    scaled_height: int | None = None


def _command(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list) or not value
        or not all(isinstance(v, str) for v in value)
    ):
        raise decodeError(
            'field "command" must be a non-empty array of strings (argv; no shell), '
            f"got {typeName(value)}"
        )
    if value[0] == "":
        raise badRequest("Missing program.", 'The first element of "command" is empty.')
    if any("\0" in v for v in value):
        raise badRequest("Invalid command.", 'An element of "command" holds a NUL character.')
    return tuple(value)


def decodeLaunch(body: bytes) -> LaunchRequest:
    """The body of C{POST /launch}; see L{decodeLaunchObject}."""
    return decodeLaunchObject(decodeObject(body))


def decodeLaunchObject(raw: dict[str, Any]) -> LaunchRequest:
    """
    Decode C{{"command": [...], "wait_for_window": bool, "timeout_ms": n}}
    (plus C{scaled_width}/C{scaled_height} for the window's geometry).

    @raise APIError: 400 naming the field.
    """
    if raw.get("command") is None:
        raise badRequest('Missing "command".', 'Send {"command": ["program", "arg", ...]}.')
    fields: dict[str, Any] = {"command": _command(raw["command"])}
    wait = raw.get("wait_for_window")
    if wait is not None:
        if not isinstance(wait, bool):
            raise decodeError(
                f'field "wait_for_window" must be a boolean, got {typeName(wait)}'
            )
        fields["waitForWindow"] = wait
    if raw.get("timeout_ms") is not None:
        timeout = _int("timeout_ms", raw["timeout_ms"])
        if not 0 <= timeout <= MAX_LAUNCH_TIMEOUT_MS:
            raise badRequest(
                "Invalid timeout_ms.", f"timeout_ms must be 0 to {MAX_LAUNCH_TIMEOUT_MS}."
            )
        fields["timeoutMs"] = timeout
    for name in ("scaled_width", "scaled_height"):
        if raw.get(name) is not None:
            fields[name] = _int(name, raw[name])
    return LaunchRequest(**fields)


def decodeOpen(body: bytes) -> str:
    """
    Decode C{{"target": "<path or URL>"}}; whether a path exists is the
    desktop's to check.

    @raise APIError: 400 for a missing, empty or non-string target.
    """
    raw = decodeObject(body)
    target = _optionalStr(raw, "target")
    if not target or not target.strip():
        raise badRequest('Missing "target".', 'Send {"target": "<absolute path or URL>"}.')
    return target


__all__ = [
    "MAX_BODY_BYTES", "APIError", "ActionRequest", "ClipboardWrite", "LaunchRequest",
    "decodeAction", "decodeActionObject", "decodeClipboardWrite", "decodeClipboardWriteObject",
    "decodeLaunch", "decodeLaunchObject", "decodeOpen",
    "decodeRecordingId", "decodeSelection",
]
