"""
OpenAI's computer-use tool (the Responses API): one C{computer_call} output
item in, the C{computer_call_output} input item to send back out (SPEC
section 13).  The mapping rules and their sources are in docs/dialects.md.

A call carries one C{action} (the legacy C{computer_use_preview} tool, and
the GA C{computer} tool's single form) or a batch C{actions[]} (the GA
tool).  Each action is one group of the turn: they run in order under the
input lock, the first failure stops the rest, and the screenshot is taken
once after all of them.  A call with C{pending_safety_checks} runs only when
the request acknowledges every check by id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentdesktop.actions import Space, Step
from agentdesktop.actions.batch import MAX_ITEMS
from agentdesktop.actions.runner import GroupOutcome
from agentdesktop.actions.screen import Wait
from agentdesktop.actions.table import unknownKey
from agentdesktop.dialects import apischema
from agentdesktop.dialects.base import (
    DialectEndpoint, Group, Turn, callError, displaySize, inside, spaceFor, step,
)
from agentdesktop.errors import APIError, badRequest
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.keys import UnknownKey, parseCombo
from agentdesktop.request import MAX_PATH_POINTS, typeName

#: click C{button} -> the action of our table that presses that button.
BUTTONS = {
    "left": "left_click",          # button 1
    "right": "right_click",        # button 3
    "wheel": "middle_click",       # button 2
    "back": "back_click",          # button 8
    "forward": "forward_click",    # button 9
}

#: Scroll distances are pixels; one wheel click counts as this many.
PIXELS_PER_CLICK = 100

#: The C{wait} action carries no duration.
WAIT_MS = 1000

SAFETY_MESSAGE = "Safety checks need acknowledgement."

Translate = Callable[[Space, dict[str, Any]], list[Step]]


class SafetyChecksPending(APIError):
    """The 409 for a call whose safety checks the request did not all acknowledge."""

    def __init__(self, pending: list[dict[str, Any]], missing: list[str]) -> None:
        super().__init__(
            409, SAFETY_MESSAGE,
            "Show the checks to the user; if they agree, send the call again with "
            "acknowledged_safety_checks: [" + ", ".join(f'"{i}"' for i in missing) + "].",
        )
        self.pending = pending

    def body(self) -> dict[str, Any]:
        return {**super().body(), "pending_safety_checks": self.pending}


@dataclass
class CallInfo:
    """
    What the answer needs of the call.

    @ivar acknowledged: the checks to echo in the output item.
    @ivar labels: per group, how the error names it (C{actions[1] (keypress)}).
    """

    callId: str
    acknowledged: list[dict[str, Any]]
    labels: list[str] = field(default_factory=list)


# -- the body


def invalidCall(detail: str) -> APIError:
    return badRequest('Invalid "call".', detail)


def parseCall(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """
    The body's C{call} and its C{call_id}.

    @raise APIError: 400 when the body holds no computer_call at all.
    """
    call = body.get("call")
    if call is None:
        raise badRequest('Missing "call".',
                         'Send {"call": <one computer_call output item of the Responses API>}.')
    if not isinstance(call, dict):
        raise invalidCall(f"call must be a computer_call object, got {typeName(call)}")
    if call.get("type") != "computer_call":
        got = json.dumps(call.get("type"))[:100]
        raise invalidCall(f'call.type must be "computer_call", got {got}')
    callId = call.get("call_id")
    if not isinstance(callId, str) or not callId:
        raise invalidCall(f"call.call_id must be a non-empty string, got {typeName(callId)}")
    return call, callId


def pendingChecks(call: dict[str, Any]) -> list[dict[str, Any]]:
    """
    The call's C{pending_safety_checks} (absent in the guide's examples).

    @raise APIError: 400 when they are malformed: the service cannot tell
        what it would be running.
    """
    checks = call.get("pending_safety_checks")
    if checks is None:
        return []
    if not isinstance(checks, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), str) for c in checks
    ):
        raise invalidCall("call.pending_safety_checks must be a list of "
                          '{"id": "...", "code": "...", "message": "..."} objects')
    return checks


def acknowledgedIds(value: Any) -> set[str]:
    """
    The ids in the request's C{acknowledged_safety_checks}: strings, or
    check objects as the SDK's output item carries them.

    @raise APIError: 400 when malformed.
    """
    invalid = badRequest('Invalid "acknowledged_safety_checks".',
                         "acknowledged_safety_checks must be a list of safety check ids "
                         '(strings), e.g. ["cu_sc_123"]')
    if value is None:
        return set()
    if not isinstance(value, list):
        raise invalid
    ids = set()
    for item in value:
        check = item.get("id") if isinstance(item, dict) else item
        if not isinstance(check, str):
            raise invalid
        ids.add(check)
    return ids


def checkSafety(pending: list[dict[str, Any]], acknowledged: set[str]) -> list[dict[str, Any]]:
    """
    The checks to echo in the output, when every pending check is
    acknowledged.

    @raise SafetyChecksPending: otherwise; nothing may run.
    """
    missing = [c["id"] for c in pending if c["id"] not in acknowledged]
    if missing:
        raise SafetyChecksPending(pending, missing)
    return [{k: c[k] for k in ("id", "code", "message") if k in c} for c in pending]


def actionList(call: dict[str, Any]) -> tuple[list[Any], bool]:
    """
    The call's actions, and whether they came as a batch C{actions[]}.

    @raise APIError: the error result for a call with no (or two kinds
        of) actions.
    """
    single, batch = call.get("action"), call.get("actions")
    if single is not None and batch is not None:
        raise callError('The call has both "action" and "actions"; it needs exactly one.')
    if single is not None:
        return [single], False
    if batch is None:
        raise callError('The call has no "action" or "actions".')
    if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_ITEMS:
        raise callError(f'"actions" must be a list of 1 to {MAX_ITEMS} actions, '
                        f"got {typeName(batch)}")
    return batch, True


# -- one action


def point(space: Space, action: dict[str, Any]) -> tuple[int, int]:
    return inside(space, action.get("x"), action.get("y"), "x, y")


def keyChord(keys: Any, what: str) -> str | None:
    """
    Vendor key names (C{["CTRL", "SHIFT"]}) as one combination of keysyms
    for our table (C{"Control_L+Shift_L"}), or C{None} for no keys.

    @raise APIError: for a malformed list or an unknown key name.
    """
    if keys is None:
        return None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise callError(f"{what} must be a list of key names, got {typeName(keys)}")
    try:
        names = [name for k in keys for name in parseCombo(k)]
    except UnknownKey as e:
        raise unknownKey(e) from None
    return "+".join(names) if names else None


def held(action: dict[str, Any]) -> str | None:
    """The keys held during a pointer action."""
    return keyChord(action.get("keys"), "keys")


def click(space: Space, action: dict[str, Any]) -> list[Step]:
    button = action.get("button", "left")
    name = BUTTONS.get(button) if isinstance(button, str) else None
    if name is None:
        raise APIError(400, f"Unknown button: {button}",
                       "button is one of left, right, wheel, back, forward.")
    return [step(space, name, coordinate=point(space, action), text=held(action))]


def doubleClick(space: Space, action: dict[str, Any]) -> list[Step]:
    button = action.get("button", "left")
    if button != "left":
        raise APIError(400, f"Unsupported button for double_click: {button}",
                       "double_click uses the left button.")
    return [step(space, "double_click", coordinate=point(space, action), text=held(action))]


def drag(space: Space, action: dict[str, Any]) -> list[Step]:
    path = action.get("path")
    if not isinstance(path, list) or not 2 <= len(path) <= MAX_PATH_POINTS:
        raise callError(f"path must be a list of 2 to {MAX_PATH_POINTS} "
                        f'{{"x": X, "y": Y}} points, got {typeName(path)}')
    points = []
    for i, p in enumerate(path):
        if not isinstance(p, dict):
            raise callError(f'path[{i}] must be an {{"x": X, "y": Y}} object, got {typeName(p)}')
        points.append(inside(space, p.get("x"), p.get("y"), f"path[{i}]"))
    return [step(space, "left_click_drag", path=tuple(points), text=held(action))]


def move(space: Space, action: dict[str, Any]) -> list[Step]:
    return [step(space, "mouse_move", coordinate=point(space, action), text=held(action))]


def wheelClicks(pixels: int) -> int:
    """
    Wheel clicks for a scroll of PIXELS (either sign): 100 px a click,
    rounded half away from zero, and at least one for any non-zero distance.
    """
    n = (abs(pixels) + PIXELS_PER_CLICK // 2) // PIXELS_PER_CLICK
    return max(n, 1) if pixels else 0


def scroll(space: Space, action: dict[str, Any]) -> list[Step]:
    at, keys = point(space, action), held(action)
    steps = []
    for name, negative, positive in (("scroll_y", "up", "down"), ("scroll_x", "left", "right")):
        pixels = action.get(name, 0)
        if not isinstance(pixels, int) or isinstance(pixels, bool):
            raise callError(f"{name} must be an integer number of pixels, got {typeName(pixels)}")
        if pixels:
            steps.append(step(space, "scroll", coordinate=at, text=keys,
                              scroll_direction=positive if pixels > 0 else negative,
                              scroll_amount=wheelClicks(pixels)))
    return steps or [step(space, "mouse_move", coordinate=at, text=keys)]


def keypress(space: Space, action: dict[str, Any]) -> list[Step]:
    chord = keyChord(action.get("keys"), "keys")
    if chord is None:
        raise callError('keypress needs "keys": a non-empty list of key names, e.g. ["CTRL", "L"]')
    return [step(space, "key", text=chord)]


def typeText(space: Space, action: dict[str, Any]) -> list[Step]:
    text = action.get("text")
    if not isinstance(text, str):
        raise callError(f"text must be a string, got {typeName(text)}")
    return [step(space, "type", text=text)] if text else []


def wait(space: Space, action: dict[str, Any]) -> list[Step]:
    return [Wait(WAIT_MS)]


def screenshot(space: Space, action: dict[str, Any]) -> list[Step]:
    # Every call answers with the screenshot taken after all its actions.
    return []


#: action C{type} -> its translation.
ACTIONS: dict[str, Translate] = {
    "click": click,
    "double_click": doubleClick,
    "drag": drag,
    "move": move,
    "scroll": scroll,
    "keypress": keypress,
    "type": typeText,
    "wait": wait,
    "screenshot": screenshot,
}


def translateAction(space: Space, action: Any) -> Group:
    """One action as the steps it runs, or the error result it gets."""
    if not isinstance(action, dict):
        return callError(f"Each action must be an object, got {typeName(action)}.")
    kind = action.get("type")
    translate = ACTIONS.get(kind) if isinstance(kind, str) else None
    if translate is None:
        return APIError(400, f"Unknown action: {kind}",
                        "type is one of " + ", ".join(ACTIONS) + ".")
    try:
        return translate(space, action)
    except APIError as e:
        return e


def label(index: int, action: Any, batched: bool) -> str:
    kind = action.get("type") if isinstance(action, dict) else None
    name = kind if isinstance(kind, str) else "action"
    return f"actions[{index}] ({name})" if batched else name


# -- the answer


def errorText(info: CallInfo, outcomes: list[GroupOutcome]) -> str | None:
    """The failure to tell the model, naming the actions that did not run."""
    failed = next((i for i, o in enumerate(outcomes) if o.error is not None), None)
    if failed is None:
        return None
    text = f"{info.labels[failed]} failed: {outcomes[failed].message()}"
    rest = len(info.labels) - failed - 1
    if rest:
        later = info.labels[failed + 1] + ("" if rest == 1 else f" to {info.labels[-1]}")
        text += f" Not executed: {later}."
    return text


def callOutput(info: CallInfo, observation: dict[str, Any] | None) -> dict[str, Any]:
    """
    The computer_call_output input item.

    @raise APIError: 500 when the screenshot failed: there is no output
        item without one.
    """
    if observation is None or "screenshot_data" not in observation:
        detail = (observation or {}).get("detail", "the client went away")
        raise APIError(500, "Screenshot failed.", detail)
    output: dict[str, Any] = {
        "type": "computer_call_output",
        "call_id": info.callId,
        "output": {
            "type": "computer_screenshot",
            "image_url": "data:image/png;base64," + observation["screenshot_data"],
            "detail": "original",
        },
    }
    if info.acknowledged:
        output["acknowledged_safety_checks"] = info.acknowledged
    return output


class OpenAIDialect(DialectEndpoint):
    """C{POST /dialects/openai}."""

    name = "openai"
    api = apischema.OPENAI

    def translate(self, body: dict[str, Any], info: DesktopInfo) -> Turn:
        call, callId = parseCall(body)
        display = displaySize(body.get("display"))
        echoed = checkSafety(pendingChecks(call), acknowledgedIds(
            body.get("acknowledged_safety_checks")))
        space = spaceFor(info, display or info.size)
        callInfo = CallInfo(callId, echoed)
        groups: list[Group]
        try:
            actions, batched = actionList(call)
        except APIError as e:
            groups, callInfo.labels = [e], ["computer_call"]
        else:
            groups = [translateAction(space, a) for a in actions]
            callInfo.labels = [label(i, a, batched) for i, a in enumerate(actions)]
        return Turn(groups, space, screenshotAfter=True, calls=[callInfo])

    def answer(
        self, turn: Turn, outcomes: list[GroupOutcome], observation: dict[str, Any] | None
    ) -> dict[str, Any]:
        info: CallInfo = turn.calls[0]
        error = errorText(info, outcomes)
        try:
            output = callOutput(info, observation)
        except APIError as e:
            if error:
                e.detail = f"{e.detail} (and {error})"
            raise
        return {"output": output, "error": error}
