"""
The MCP tools beyond pixels (SPEC section 15): the clipboard, the window
list, focusing a window, launching a program, the accessibility tree.  Each
calls the same operation as its HTTP route (validation, the control lease,
errors), so the two cannot drift apart; coordinates are in the recommended
size, like the computer tools'.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentdesktop.dialects.base import recommended
from agentdesktop.errors import badRequest
from agentdesktop.request import (
    decodeClipboardWriteObject,
    decodeLaunchObject,
    decodeSelection,
    typeName,
)
from agentdesktop.state import ServiceState
from agentdesktop.web import accessibility, apps, clipboard, windows
from agentdesktop.web.resource import ensureDesktop

Handler = Callable[[ServiceState, Mapping[str, Any]], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class DesktopTool:
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]
    readOnly: bool
    run: Handler

    def definition(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "description": self.description,
            "inputSchema": {"type": "object", "properties": self.properties,
                            "required": list(self.required)},
            "annotations": {"readOnlyHint": self.readOnly},
        }


def _int(args: Mapping[str, Any], name: str, required: bool = False) -> int | None:
    value = args.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise badRequest(f'Invalid "{name}".', f"{name} must be a non-negative integer, got {typeName(value)}")
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _spaces(state: ServiceState) -> tuple[tuple[int, int], tuple[int, int]]:
    info = await ensureDesktop(state)
    return info.size, recommended(info)


async def readClipboard(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    out = await clipboard.readClipboard(state, decodeSelection(args.get("selection")))
    text = out["text"]
    return ("(nobody owns the selection)" if text is None else text), out


async def writeClipboard(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    out = await clipboard.writeClipboard(state, decodeClipboardWriteObject(dict(args)))
    return f"Clipboard set ({out['bytes']} bytes in UTF-8); paste it with ctrl+v.", out


async def listWindows(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    native, declared = await _spaces(state)
    out = await windows.listWindows(state, native, declared)
    return _json(out), out


async def focusWindow(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    windowId = _int(args, "id", required=True)
    assert windowId is not None
    native, declared = await _spaces(state)
    out = await windows.windowVerb(state, windowId, "focus", native, declared)
    return _json(out), out


async def launch(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    native, declared = await _spaces(state)
    request = decodeLaunchObject({"wait_for_window": True, **args, "scaled_width": declared[0],
                                  "scaled_height": declared[1]})
    out = await apps.launch(state, request)
    return _json(out), out


async def accessibilityTree(state: ServiceState, args: Mapping[str, Any]) -> tuple[str, Any]:
    depth = _int(args, "max_depth")
    if depth is not None and depth > accessibility.MAX_DEPTH:
        raise badRequest('Invalid "max_depth".', f"max_depth is at most {accessibility.MAX_DEPTH}.")
    _, declared = await _spaces(state)
    out = await accessibility.accessibilityTree(
        state, _int(args, "window"), accessibility.DEFAULT_DEPTH if depth is None else depth,
        declared[0], declared[1])
    return _json(out), out


SELECTION = {"type": "string", "enum": ["clipboard", "primary"],
             "description": "Which selection: clipboard (ctrl+c/ctrl+v, the default) or primary "
                            "(the last selected text, pasted with a middle click)."}


def catalogue(space: str) -> dict[str, DesktopTool]:
    """The tools, their schemas and what runs them, for the SPACE (WxH) the model sees."""
    return {
        "read_clipboard": DesktopTool(
            "Read the clipboard's text (UTF-8).", {"selection": SELECTION}, (), True, readClipboard),
        "write_clipboard": DesktopTool(
            "Put text on the clipboard, so that ctrl+v pastes it (faster and more exact than "
            "typing long text).",
            {"text": {"type": "string", "description": "The text, up to 1 MiB in UTF-8."},
             "selection": SELECTION}, ("text",), False, writeClipboard),
        "list_windows": DesktopTool(
            f"List the open windows: id, title, class, pid, rectangle in the {space} screenshot "
            "space, focused, minimized, maximized.", {}, (), True, listWindows),
        "focus_window": DesktopTool(
            "Bring a window to the front and give it the keyboard focus.",
            {"id": {"type": "integer", "minimum": 0, "description": "A window id from list_windows."}},
            ("id",), False, focusWindow),
        "launch": DesktopTool(
            "Start a program on the desktop (an argv list, no shell) and wait for its first "
            f"window (its rectangle in the {space} screenshot space).",
            {"command": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "description": 'e.g. ["xterm", "-e", "top"]'},
             "wait_for_window": {"type": "boolean", "description": "Default true."},
             "timeout_ms": {"type": "integer", "minimum": 0, "maximum": 60000,
                            "description": "How long to wait for the window (default 10000)."}},
            ("command",), False, launch),
        "accessibility_tree": DesktopTool(
            "The accessibility tree of a window (or of the whole desktop): each node's role, name, "
            f"states, actions and bounds [x, y, width, height] in the {space} screenshot space. "
            "Finds buttons and fields without a screenshot.",
            {"window": {"type": "integer", "minimum": 0, "description": "A window id from list_windows."},
             "max_depth": {"type": "integer", "minimum": 0, "maximum": accessibility.MAX_DEPTH}},
            (), True, accessibilityTree),
    }
