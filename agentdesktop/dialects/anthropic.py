"""
Anthropic's computer-use tools (SPEC section 13): the legacy C{computer} tool
(C{computer_20250124}, C{computer_20251124}: one tool named C{computer} whose
C{input.action} names the action) and the computer toolset
(C{computer_toolset_20260801}: one member tool per action, its blocks
carrying C{toolset_name}).  Their C{tool_use} blocks come in; one
C{tool_result} block per block goes out.

L{actionSteps} translates one action given with Anthropic's argument names;
the MCP server's tools use it too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from agentdesktop import geometry
from agentdesktop.actions import Space, Step
from agentdesktop.actions.keyboard import Hold
from agentdesktop.actions.pointer import CLICKS, AtPointer, wheel
from agentdesktop.actions.runner import GroupOutcome
from agentdesktop.actions.screen import ImageStep, Settle, Wait
from agentdesktop.actions.table import combo, modifiers
from agentdesktop.dialects import apischema
from agentdesktop.dialects.base import (
    AFTER_TURN,
    DialectEndpoint,
    Group,
    Turn,
    callError,
    displaySize,
    inside,
    recommended,
    spaceFor,
    step,
)
from agentdesktop.errors import APIError, badRequest
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.request import ActionRequest, typeName
from agentdesktop.state import ServiceState
from agentdesktop.web.resource import Call, Endpoint, NotFound, ensureDesktop

LEGACY_VERSIONS = ("computer_20250124", "computer_20251124")
TOOLSET_VERSION = "computer_toolset_20260801"
VERSIONS = (*LEGACY_VERSIONS, TOOLSET_VERSION)

#: The legacy tool's name, and the toolset's name in its member blocks.
COMPUTER = "computer"

NOT_EXECUTED = "Not executed: an earlier computer action in this turn failed."

#: The longest C{wait} or C{hold_key}, in seconds.
MAX_SECONDS = 300

MAX_BLOCKS = 100

#: What the model reads after an action that returns nothing: the
#: acknowledgments the C{anthropic} SDK's own computer toolset runner writes
#: (C{lib/tools/_toolsets/_computer_registry.py}), fields filled from the call.
ACKNOWLEDGMENTS = {
    "key": "Pressed {text}.",
    "hold_key": "Held {text} for {duration}s.",
    "type": "Typed.",
    "mouse_move": "Moved the mouse.",
    "left_mouse_down": "Left mouse button pressed.",
    "left_mouse_up": "Left mouse button released.",
    "left_click": "Clicked.",
    "left_click_drag": "Dragged.",
    "right_click": "Right-clicked.",
    "middle_click": "Middle-clicked.",
    "double_click": "Double-clicked.",
    "triple_click": "Triple-clicked.",
    "scroll": "Scrolled {scroll_direction}.",
    "wait": "Waited {duration}s.",
}

_TEMPLATE_FIELD = re.compile(r"\{(text|duration|scroll_direction)\}")

#: Characters that would break or reorder a line of text: folded to spaces.
_LINE_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")

#: The longest line the model reads back from a field of its call.
FIELD_MAX = 4096

Translate = Callable[[Space, str, Mapping[str, Any]], list[Step]]

_ACTIONS: dict[str, Translate] = {}

_CURSOR = re.compile(r"x=(-?\d+),y=(-?\d+)")


def _register(*names: str) -> Callable[[Translate], Translate]:
    def register(translate: Translate) -> Translate:
        for name in names:
            _ACTIONS[name] = translate
        return translate

    return register


def actionNames() -> list[str]:
    """Every action, as Anthropic's tools name them."""
    return list(_ACTIONS)


def actionSteps(space: Space, action: Any, args: Mapping[str, Any]) -> list[Step]:
    """
    The steps of one computer action ACTION with Anthropic's arguments
    ARGS, its coordinates in SPACE's declared (screenshot) space.  A null
    argument is an absent one; arguments the action does not read are
    ignored.

    @raise APIError: saying what to fix (the model's error result).
    """
    if action is None:
        raise callError('Missing "action": name the computer action to perform.')
    translate = _ACTIONS.get(action) if isinstance(action, str) else None
    if translate is None:
        raise APIError(400, f"Unknown action: {action}", f"Use one of: {', '.join(_ACTIONS)}.")
    return translate(space, action, args)


def acknowledgment(action: str, args: Mapping[str, Any]) -> str:
    """
    The line the model reads after ACTION succeeded with ARGS (C{Clicked.},
    C{Pressed ctrl+s.}), its fields filled in one pass so that a value
    spelled like a placeholder stays data.
    """

    def field(match: re.Match[str]) -> str:
        value = args.get(match[1])
        if value is None:
            value = "down" if match[1] == "scroll_direction" else ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return _LINE_UNSAFE.sub(" ", str(value)).strip()[:FIELD_MAX]

    return _TEMPLATE_FIELD.sub(field, ACKNOWLEDGMENTS[action])


def cursorPoint(body: Mapping[str, Any]) -> tuple[int, int] | None:
    """The point a C{cursor_position} step's body gives, else C{None}."""
    match = _CURSOR.fullmatch(str(body.get("output", "")))
    return (int(match[1]), int(match[2])) if match else None


def settleLooks(groups: list[Group]) -> list[Group]:
    """
    GROUPS where each screenshot or zoom that follows input in the same turn
    first waits for the screen to settle, so that it shows the input's
    effect (the turn's C{type} + C{key Return} + C{screenshot}).
    """
    out: list[Group] = []
    inputSeen = False
    for group in groups:
        if not isinstance(group, APIError):
            if inputSeen and group and isinstance(group[-1], ImageStep):
                group = [Settle(AFTER_TURN.settleMs, AFTER_TURN.timeoutMs), *group]
            inputSeen = inputSeen or any(s.input for s in group)
        out.append(group)
    return out


# -- arguments


def _text(action: str, args: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = args.get(name)
    if value is None:
        if required:
            raise callError(f'{action} needs "{name}", a string.')
        return None
    if not isinstance(value, str):
        raise callError(f'"{name}" must be a string, got {typeName(value)}.')
    return value


def _int(args: Mapping[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise callError(f'"{name}" must be an integer, got {typeName(value)}.')
    return value


def _point(
    space: Space, action: str, args: Mapping[str, Any], name: str, required: bool
) -> tuple[int, int] | None:
    value = args.get(name)
    w, h = space.declared
    if value is None:
        if required:
            raise callError(f'{action} needs "{name}": [x, y] in the {w}x{h} screenshot space.')
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise callError(f'"{name}" must be [x, y], two integers, got {typeName(value)}.')
    return inside(space, value[0], value[1], name)


def _milliseconds(action: str, args: Mapping[str, Any]) -> int:
    value = args.get("duration")
    if value is None:
        raise callError(f'{action} needs "duration", in seconds (0 to {MAX_SECONDS}).')
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise callError(f'"duration" must be a number of seconds, got {typeName(value)}.')
    if not 0 <= value <= MAX_SECONDS:
        raise callError(f'"duration" is {value} seconds; it must be from 0 to {MAX_SECONDS}.')
    return round(value * 1000)


def _held(action: str, args: Mapping[str, Any]) -> str | None:
    """The keys held during a pointer action: C{text}, or C{key} as older clients send it."""
    held = _text(action, args, "text", False)
    return held if held is not None else _text(action, args, "key", False)


def _named(step: Step, name: str) -> list[Step]:
    step.name = name
    return [step]


# -- the actions, in the order of Anthropic's toolset members


@_register("key")
def _key(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    keys = _text(action, args, "text", True)
    return [step(space, "key", text=keys, repeat=_int(args, "repeat"))]


@_register("hold_key")
def _holdKey(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    keys = combo(_text(action, args, "text", True) or "")
    return _named(Hold(keys, _milliseconds(action, args)), action)


@_register("type")
def _type(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    return [step(space, "type", text=_text(action, args, "text", True))]


@_register("cursor_position")
def _cursorPosition(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    return [step(space, "cursor_position")]


@_register("mouse_move")
def _mouseMove(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    point = _point(space, action, args, "coordinate", True)
    return [step(space, "mouse_move", coordinate=point, text=_held(action, args))]


@_register("left_mouse_down", "left_mouse_up")
def _button(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    return [step(space, action, coordinate=_point(space, action, args, "coordinate", False))]


@_register("left_click")
def _leftClick(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    # Registered apart from the other clicks to keep the SDK's member order.
    return _click(space, action, args)


@_register("left_click_drag")
def _drag(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    start = _point(space, action, args, "start_coordinate", True)
    end = _point(space, action, args, "coordinate", True)
    return [step(space, action, start_coordinate=start, coordinate=end, text=_held(action, args))]


@_register("right_click", "middle_click", "double_click", "triple_click")
def _click(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    point = _point(space, action, args, "coordinate", False)
    held = _held(action, args)
    if point is not None:
        return [step(space, action, coordinate=point, text=held)]
    button, count, failMessage = CLICKS[action]
    return _named(AtPointer(failMessage, button, count, modifiers(ActionRequest(text=held))), action)


@_register("scroll")
def _scroll(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    point = _point(space, action, args, "coordinate", False)
    req = ActionRequest(
        scroll_direction=_text(action, args, "scroll_direction", False),
        scroll_amount=_int(args, "scroll_amount"),
        text=_held(action, args),
    )
    if point is not None:
        return [step(space, action, coordinate=point, scroll_direction=req.scroll_direction,
                     scroll_amount=req.scroll_amount, text=req.text)]
    button, count = wheel(req)
    return _named(AtPointer("Scroll failed.", button, count, modifiers(req)), action)


@_register("wait")
def _wait(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    return _named(Wait(_milliseconds(action, args)), action)


@_register("screenshot")
def _screenshot(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    return [step(space, "screenshot", format=_text(action, args, "format", False))]


@_register("zoom")
def _zoom(space: Space, action: str, args: Mapping[str, Any]) -> list[Step]:
    region = args.get("region")
    w, h = space.declared
    if region is None:
        raise callError(f'zoom needs "region": [x0, y0, x1, y1] in the {w}x{h} screenshot space.')
    if (not isinstance(region, list) or len(region) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in region)):
        raise callError(f'"region" must be [x0, y0, x1, y1], four integers, got {typeName(region)}.')
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise callError(
            f'"region" {region} must lie inside the {w}x{h} screenshot space, '
            "with x0 < x1 and y0 < y1."
        )
    fmt = _text(action, args, "format", False)
    return [step(space, "zoom", region=(x0, y0, x1, y1), format=fmt)]


# -- the route


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("tool_uses")
    shape = (f'Send {{"tool_uses": [...]}}: 1 to {MAX_BLOCKS} tool_use content blocks '
             "as the Messages API returns them.")
    if blocks is None:
        raise badRequest('Missing "tool_uses".', shape)
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
        raise badRequest('Invalid "tool_uses".', shape + f" Got {typeName(blocks)}.")
    for i, block in enumerate(blocks):
        if (not isinstance(block, dict) or block.get("type") != "tool_use"
                or not isinstance(block.get("id"), str)):
            raise badRequest(
                'Invalid "tool_uses".',
                f'tool_uses[{i}] is not a tool_use block (an object with "type": "tool_use" '
                'and a string "id"); send only the tool_use blocks of the model\'s turn.',
            )
    return blocks


def _group(block: dict[str, Any], legacy: Space, toolset: Space) -> Group:
    """One block's steps, or the error result it gets."""
    try:
        args = block.get("input")
        if not isinstance(args, dict):
            raise callError(f'The tool_use block\'s "input" must be an object, got {typeName(args)}.')
        family = block.get("toolset_name")
        if family is None:
            if block.get("name") != COMPUTER:
                raise callError(
                    f"Unknown tool: {block.get('name')}. This service runs Anthropic's "
                    f'"{COMPUTER}" tool and "{COMPUTER}" toolset only.'
                )
            return actionSteps(legacy, args.get("action"), args)
        if family != COMPUTER:
            raise callError(f'Unknown toolset: {family}. This service runs the "{COMPUTER}" toolset.')
        return actionSteps(toolset, block.get("name"), args)
    except APIError as e:
        return e


def resultContent(action: str, args: Mapping[str, Any], body: Mapping[str, Any]) -> list[Any]:
    """
    The C{tool_result} content of ACTION that succeeded with ARGS, its last
    step answering BODY: an image block for screenshots and zooms, else one
    line of text (as the SDK's toolset runner renders them).
    """
    if "screenshot_data" in body:
        source = {
            "type": "base64",
            "media_type": "image/" + body.get("screenshot_format", "png"),
            "data": body["screenshot_data"],
        }
        return [{"type": "image", "source": source}]
    point = cursorPoint(body)
    text = f"X={point[0]},Y={point[1]}" if point is not None else acknowledgment(action, args)
    return [{"type": "text", "text": text}]


def _action(block: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """A translated block's action and arguments."""
    args = block["input"]
    return (args["action"] if block.get("toolset_name") is None else block["name"]), args


def toolResult(block: Mapping[str, Any], outcome: GroupOutcome | None) -> dict[str, Any]:
    """The C{tool_result} block answering BLOCK (OUTCOME C{None}: it did not run)."""
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block["id"]}
    if block.get("toolset_name") is not None:
        result["toolset_name"] = block["toolset_name"]
    if outcome is None:
        result.update(is_error=True, content=NOT_EXECUTED)
    elif outcome.error is not None:
        result.update(is_error=True, content=outcome.message())
    else:
        result["content"] = resultContent(*_action(block), outcome.bodies[-1])
    return result


class AnthropicEndpoint(DialectEndpoint):
    """
    C{POST /dialects/anthropic}: a turn's C{tool_use} blocks in, their
    C{tool_result} blocks out; C{GET .../tool?version=} (a child) gives the
    tool definition.
    """

    name = "anthropic"
    isLeaf = False
    api = apischema.ANTHROPIC

    def __init__(self, state: ServiceState) -> None:
        super().__init__(state)
        self.putChild(b"tool", ToolEndpoint(state))

    def getChild(self, path: bytes, request: Any) -> Any:
        return NotFound(self.state)

    def translate(self, body: dict[str, Any], info: DesktopInfo) -> Turn:
        blocks = _blocks(body)
        display = displaySize(body.get("display"))
        legacy = spaceFor(info, display or recommended(info))
        toolset = spaceFor(info, display or geometry.toolsetSize(*info.size))
        groups = [_group(block, legacy, toolset) for block in blocks]
        return Turn(settleLooks(groups), legacy, calls=blocks)

    def answer(
        self, turn: Turn, outcomes: list[GroupOutcome], observation: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "content": [
                toolResult(block, outcomes[i] if i < len(outcomes) else None)
                for i, block in enumerate(turn.calls)
            ]
        }


class ToolEndpoint(Endpoint):
    """C{GET /dialects/anthropic/tool?version=<tool type>}: the tool definition."""

    api = apischema.ANTHROPIC_TOOL

    async def handle_GET(self, call: Call) -> Any:
        call.action = "dialects/anthropic/tool"
        version = call.arg("version")
        if version not in VERSIONS:
            message = 'Missing "version".' if version is None else f"Unknown tool version: {version}"
            raise badRequest(message, f"Known versions: {', '.join(VERSIONS)}.")
        if version == TOOLSET_VERSION:
            return {"type": TOOLSET_VERSION}
        info = await ensureDesktop(self.state)
        width, height = recommended(info)
        tool = {"type": version, "name": COMPUTER,
                "display_width_px": width, "display_height_px": height}
        if version == "computer_20251124":
            tool["enable_zoom"] = True
        return tool
