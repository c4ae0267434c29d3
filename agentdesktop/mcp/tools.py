"""
The MCP server's tools: the computer actions with the names models are
trained on and Anthropic's argument names (translated by
L{agentdesktop.dialects.anthropic.actionSteps}, the one translation the
Anthropic dialect uses too), plus C{computer_batch}, and the tools beyond pixels of
L{agentdesktop.mcp.desktoptools}.  Coordinates are in the
recommended size (SPEC section 6), which the descriptions and a text item
next to every image state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer

from agentdesktop.actions import Space
from agentdesktop.actions.runner import GroupOutcome
from agentdesktop.dialects.anthropic import (
    MAX_SECONDS,
    acknowledgment,
    actionNames,
    actionSteps,
    cursorPoint,
    settleLooks,
)
from agentdesktop.dialects.base import Group, recommended
from agentdesktop.errors import APIError
from agentdesktop.mcp import desktoptools
from agentdesktop.request import typeName
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import ensureDesktop

BATCH = "computer_batch"
MAX_BATCH = 100

#: Tools that only look (MCP's C{readOnlyHint}).
LOOKS = frozenset({"screenshot", "zoom", "cursor_position", "wait"})

CLICK_WORDS = {
    "left_click": "Click the left mouse button",
    "right_click": "Click the right mouse button",
    "middle_click": "Click the middle mouse button",
    "double_click": "Double-click the left mouse button",
    "triple_click": "Triple-click the left mouse button",
}


class UnknownTool(Exception):
    """A C{tools/call} names no tool of this server."""


def _point(space: str, what: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2,
            "maxItems": 2, "description": f"[x, y]: {what}, in the {space} screenshot space."}


def _properties(space: str) -> dict[str, dict[str, Any]]:
    """Every argument any tool takes, by name."""
    return {
        "coordinate": _point(space, "the point"),
        "start_coordinate": _point(space, "where the drag starts"),
        "text": {"type": "string"},
        "scroll_direction": {"type": "string", "enum": ["up", "down", "left", "right"]},
        "scroll_amount": {"type": "integer", "minimum": 0, "maximum": 1000,
                          "description": "Wheel clicks."},
        "repeat": {"type": "integer", "minimum": 1, "maximum": 100,
                   "description": "Press the whole sequence this many times (default 1)."},
        "duration": {"type": "number", "minimum": 0, "maximum": MAX_SECONDS,
                     "description": "Seconds; fractions allowed."},
        "region": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4,
                   "maxItems": 4, "description": f"[x0, y0, x1, y1] in the {space} screenshot space."},
        "format": {"type": "string", "enum": ["png", "jpeg", "webp"],
                   "description": "Image format (default png)."},
    }


HELD = "Keys held during the action, e.g. \"shift\" or \"ctrl+alt\" (optional)."


def _catalogue(space: str) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """Tool name -> (description, {argument: description or ""}, required arguments)."""
    tools: dict[str, tuple[str, dict[str, str], list[str]]] = {
        "key": ("Press a key or key combination (\"ctrl+s\", \"Return\", \"alt+Tab\"; several "
                "separated by spaces). Key names are case-insensitive.",
                {"text": "The key or combination.", "repeat": ""}, ["text"]),
        "hold_key": ("Hold a key or key combination down for a while, then release it.",
                     {"text": "The key or combination.", "duration": ""}, ["text", "duration"]),
        "type": ("Type a string of text on the keyboard, exactly as given.",
                 {"text": "The text to type."}, ["text"]),
        "cursor_position": (f"The mouse pointer's position as x, y in the {space} screenshot space.",
                            {}, []),
        "mouse_move": (f"Move the mouse pointer to a point of the {space} screenshot space.",
                       {"coordinate": "", "text": HELD}, ["coordinate"]),
        "left_mouse_down": ("Press the left mouse button (at coordinate, in the "
                            f"{space} screenshot space, or where the pointer is).",
                            {"coordinate": ""}, []),
        "left_mouse_up": ("Release the left mouse button (at coordinate, in the "
                          f"{space} screenshot space, or where the pointer is).",
                          {"coordinate": ""}, []),
    }
    for name, words in CLICK_WORDS.items():
        tools[name] = (f"{words} at coordinate (in the {space} screenshot space), or where the "
                       "pointer is when coordinate is omitted.", {"coordinate": "", "text": HELD}, [])
        if name == "left_click":
            tools["left_click_drag"] = (
                f"Press the left button at start_coordinate, move to coordinate and release "
                f"(both in the {space} screenshot space).",
                {"start_coordinate": "", "coordinate": "", "text": HELD},
                ["start_coordinate", "coordinate"])
    tools["scroll"] = (f"Turn the mouse wheel at coordinate (in the {space} screenshot space), or "
                       "where the pointer is when coordinate is omitted.",
                       {"coordinate": "", "scroll_direction": "", "scroll_amount": "", "text": HELD},
                       ["scroll_direction", "scroll_amount"])
    tools["wait"] = ("Wait for a while.", {"duration": ""}, ["duration"])
    tools["screenshot"] = (f"A screenshot of the whole screen, {space} pixels: every coordinate "
                           "the other tools take is a pixel of this image.", {"format": ""}, [])
    tools["zoom"] = (f"A region of the {space} screenshot space at the screen's full detail, "
                     "as an image that fits the screenshot size.", {"region": "", "format": ""},
                     ["region"])
    return tools


def toolList(declared: tuple[int, int], structured: bool) -> list[dict[str, Any]]:
    """
    Every tool's definition for a screen whose screenshot space is DECLARED;
    STRUCTURED: the protocol version has C{outputSchema}.
    """
    space = f"{declared[0]}x{declared[1]}"
    properties = _properties(space)
    tools = []
    for name, (description, args, required) in _catalogue(space).items():
        schema: dict[str, Any] = {"type": "object", "properties": {}, "required": required}
        for arg, words in args.items():
            schema["properties"][arg] = dict(properties[arg], **({"description": words} if words else {}))
        tool: dict[str, Any] = {"name": name, "description": description, "inputSchema": schema,
                                "annotations": {"readOnlyHint": name in LOOKS}}
        if name == "cursor_position" and structured:
            tool["outputSchema"] = {"type": "object", "required": ["x", "y"], "properties": {
                "x": {"type": "integer"}, "y": {"type": "integer"}}}
        tools.append(tool)
    tools.append(_batchTool(space, properties))
    tools += [tool.definition(name) for name, tool in desktoptools.catalogue(space).items()]
    return tools


def _batchTool(space: str, properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    item = {"type": "object", "required": ["action"],
            "properties": {"action": {"type": "string", "enum": actionNames()}, **properties}}
    return {
        "name": BATCH,
        "description": (
            "Several computer actions in one call, run in order with no other input in between; "
            "the first that fails stops the rest. Each item is {\"action\": <a tool's name>, "
            f"<that tool's arguments>}}; coordinates are in the {space} screenshot space."),
        "inputSchema": {"type": "object", "required": ["actions"], "properties": {"actions": {
            "type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": item}}},
        "annotations": {"readOnlyHint": False},
    }


# -- calls


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _content(action: str, args: Mapping[str, Any], body: Mapping[str, Any],
             space: Space) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A succeeded action's content items and structured content."""
    w, h = space.declared
    if "screenshot_data" in body:
        fmt = body.get("screenshot_format", "png")
        iw, ih = body["screenshot_width"], body["screenshot_height"]
        what = "The screen" if action == "screenshot" else f"The region {list(args['region'])}"
        note = (f"{what}, as a {iw}x{ih} image. Coordinates for the computer tools are pixels "
                f"of the {w}x{h} screenshot space.")
        return [{"type": "image", "data": body["screenshot_data"], "mimeType": f"image/{fmt}"},
                _text(note)], None
    point = cursorPoint(body)
    if point is not None:
        return [_text(f"x={point[0]},y={point[1]}")], {"x": point[0], "y": point[1]}
    return [_text(acknowledgment(action, args))], None


def _batchCalls(arguments: Mapping[str, Any]) -> list[tuple[Any, Mapping[str, Any]]]:
    """The (action, arguments) of each item of a C{computer_batch}."""
    actions = arguments.get("actions")
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_BATCH:
        raise APIError(400, f'"actions" must be a list of 1 to {MAX_BATCH} actions, '
                            f"got {typeName(actions)}.")
    calls: list[tuple[Any, Mapping[str, Any]]] = []
    for i, item in enumerate(actions):
        if not isinstance(item, dict):
            raise APIError(400, f"actions[{i}] must be an object like "
                                f'{{"action": "left_click", "coordinate": [10, 20]}}, got {typeName(item)}.')
        calls.append((item.get("action"), item))
    return calls


def _groups(space: Space, calls: list[tuple[Any, Mapping[str, Any]]]) -> list[Group]:
    groups: list[Group] = []
    for action, args in calls:
        try:
            groups.append(actionSteps(space, action, args))
        except APIError as e:
            groups.append(e)
    return settleLooks(groups)


def _message(error: APIError) -> str:
    return error.message + (f" {error.detail}" if error.detail else "")


def _result(calls: list[tuple[Any, Mapping[str, Any]]], outcomes: list[GroupOutcome],
            space: Space, batch: bool) -> dict[str, Any]:
    """The C{CallToolResult} of CALLS, given how they went."""
    content: list[dict[str, Any]] = []
    structured = None
    failed = False
    for i, (action, args) in enumerate(calls):
        where = f"actions[{i}] ({action}): " if batch else ""
        outcome = outcomes[i] if i < len(outcomes) else None
        if outcome is None:
            rest = ", ".join(str(a) for a, _ in calls[i:])
            content.append(_text(f"Not run, after the failure: actions[{i}:] ({rest})."))
            break
        if outcome.error is not None:
            content.append(_text(where + _message(outcome.error)))
            failed = True
            continue
        items, structured = _content(action, args, outcome.bodies[-1], space)
        if batch:
            items = [dict(item, text=where + item["text"]) if item["type"] == "text" else item
                     for item in items]
        content += items
    result: dict[str, Any] = {"content": content, "isError": failed}
    if structured is not None and not batch and not failed:
        result["structuredContent"] = structured
    return result


async def _runDesktopTool(
    state: ServiceState, tool: desktoptools.DesktopTool, arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """A section-15 tool's result: its text and structured content, or the error to fix."""
    try:
        text, structured = await tool.run(state, arguments)
    except APIError as e:
        return {"content": [_text(_message(e))], "isError": True}
    return {"content": [_text(text)], "structuredContent": structured, "isError": False}


async def callTool(
    state: ServiceState,
    name: str,
    arguments: Mapping[str, Any],
    disconnected: defer.Deferred[Any] | None = None,
    gone: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """
    Run tool NAME with ARGUMENTS: its C{CallToolResult} (as a dict).  A
    failure, or a wrong argument, is a result with C{isError} whose text
    says what to fix.

    @raise UnknownTool: NAME names no tool.
    """
    desktopTool = desktoptools.catalogue("").get(name)
    if name != BATCH and name not in actionNames() and desktopTool is None:
        raise UnknownTool(name)
    if state.recorder is not None:
        state.recorder.activity()
    if desktopTool is not None:
        return await _runDesktopTool(state, desktopTool, arguments)
    try:
        info = await ensureDesktop(state)
        space = Space(info.size, recommended(info))
        calls = _batchCalls(arguments) if name == BATCH else [(name, arguments)]
    except APIError as e:
        return {"content": [_text(_message(e))], "isError": True}
    outcomes = await state.runner.runGroups(_groups(space, calls), disconnected, gone)
    return _result(calls, outcomes, space, name == BATCH)
