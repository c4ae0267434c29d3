"""
Gemini's computer-use tool (SPEC section 13): the function calls of one
model turn in, one C{function_response} Part per call out, each carrying
the screenshot taken once the screen settled after the turn.

Coordinates are on Gemini's 0-999 grid on each axis, whatever the screen's
shape; they map to native pixels through section 6 with a declared size of
1000x1000, so 0 lands on the first pixel and 999 on the last.  Each
function is a small handler registered by name (L{function}); what a
handler cannot translate becomes that call's error response.  The mapping
rules and their sources are in docs/dialects.md, section "Gemini".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentdesktop import geometry
from agentdesktop.actions import Space, Step
from agentdesktop.actions.pointer import MAX_SCROLL_AMOUNT
from agentdesktop.actions.runner import GroupOutcome
from agentdesktop.actions.screen import Wait
from agentdesktop.actions.table import combo
from agentdesktop.dialects import apischema
from agentdesktop.dialects.base import DialectEndpoint, Group, Turn, callError, recommended, step
from agentdesktop.errors import APIError, badRequest
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.request import typeName

#: Gemini's grid: 0 to 999 on each axis.
GRID = 1000

#: The most calls one request may carry.
MAX_CALLS = 100

#: Scroll distance per wheel click, in pixels.
PX_PER_CLICK = 100

#: C{scroll_document}: wheel clicks at the screen's centre.
DOCUMENT_CLICKS = 10

#: The longest C{wait}, in seconds.
MAX_WAIT_S = 300

#: The largest C{scroll_at}/C{scroll} C{magnitude}, in grid units (ten screens).
MAX_MAGNITUDE = 10 * GRID

NOT_EXECUTED = "Not executed: an earlier computer action in this turn failed."

NO_BROWSER = (
    "the desktop has no browser control. Operate a browser window on the screen with the "
    "desktop functions instead (click, type, hotkey, scroll)."
)

#: Functions of Gemini's browser environment that a desktop cannot do.
BROWSER_ONLY = ("navigate", "go_back", "go_forward", "search", "open_web_browser")

#: The safety decision that needs a person's confirmation, and the ones
#: that mean "allowed" (the docs' "regular or allowed").
REQUIRE_CONFIRMATION = "require_confirmation"
ALLOWED = ("regular", "allowed")

#: Keys of the model's own parts (its text and thoughts) that a loop may
#: pass along with the function_call parts; they are skipped.
MODEL_PART_KEYS = ("text", "thought", "thought_signature", "thoughtSignature")


@dataclass
class FunctionCall:
    """
    One function call as received.

    @ivar index: its index in the request's C{function_calls}.
    @ivar acknowledged: whether it needed a person's confirmation and got it.
    """

    name: str
    args: Any
    id: str | None = None
    index: int = 0
    acknowledged: bool = False

    def safetyDecision(self) -> Any:
        return self.args.get("safety_decision") if isinstance(self.args, dict) else None

    def decision(self) -> str | None:
        """The safety decision, lower-cased; C{""} when malformed; C{None} when absent."""
        sd = self.safetyDecision()
        if sd is None:
            return None
        if isinstance(sd, dict):
            sd = sd.get("decision")
        return sd.lower() if isinstance(sd, str) else ""

    def explanation(self) -> str:
        sd = self.safetyDecision()
        text = sd.get("explanation") if isinstance(sd, dict) else None
        return text if isinstance(text, str) else ""


# -- the request body


def _invalidItem(index: int, detail: str) -> APIError:
    return badRequest(f"Invalid function call at index {index}.", detail)


def parseItem(index: int, item: Any) -> FunctionCall | None:
    """
    One element of C{function_calls}: a Part holding a C{function_call}
    (C{functionCall} in REST's spelling) or a bare FunctionCall.  A text
    or thought Part is C{None} (skipped).

    @raise APIError: 400 for anything else.
    """
    if not isinstance(item, dict):
        raise _invalidItem(index, f"each item must be a function_call part (an object), got {typeName(item)}")
    fc = item.get("function_call", item.get("functionCall"))
    if fc is None:
        if "name" in item:
            fc = item
        elif any(k in item for k in MODEL_PART_KEYS):
            return None
        else:
            raise _invalidItem(index, 'expected {"function_call": {"name": ..., "args": {...}}} '
                                      'or {"name": ..., "args": {...}}')
    if not isinstance(fc, dict):
        raise _invalidItem(index, f"function_call must be an object, got {typeName(fc)}")
    name, callId = fc.get("name"), fc.get("id")
    if not isinstance(name, str) or not name:
        raise _invalidItem(index, f"function_call.name must be a non-empty string, got {typeName(name)}")
    if callId is not None and not isinstance(callId, str):
        raise _invalidItem(index, f"function_call.id must be a string, got {typeName(callId)}")
    return FunctionCall(name, fc.get("args"), callId, index)


def parseCalls(body: dict[str, Any]) -> list[FunctionCall]:
    """
    The calls of a request body.

    @raise APIError: 400 when the body is not C{{"function_calls": [...]}}.
    """
    raw = body.get("function_calls")
    if raw is None:
        raise badRequest('Missing "function_calls".',
                         'Send {"function_calls": [<function_call parts>], "confirmed": [<ids or names>]}.')
    if not isinstance(raw, list):
        raise badRequest('Invalid "function_calls".',
                         f"function_calls must be an array of function_call parts, got {typeName(raw)}")
    calls = [c for i, item in enumerate(raw) if (c := parseItem(i, item)) is not None]
    if not 1 <= len(calls) <= MAX_CALLS:
        raise badRequest('Invalid "function_calls".',
                         f"A request holds 1 to {MAX_CALLS} function calls; got {len(calls)}.")
    return calls


def parseConfirmed(value: Any) -> set[str]:
    """
    The ids or names the user confirmed.

    @raise APIError: 400 unless an array of strings.
    """
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise badRequest('Invalid "confirmed".',
                         f"confirmed must be an array of call ids or names, got {typeName(value)}")
    return set(value)


class ConfirmationNeeded(APIError):
    """409: calls that need a person's confirmation, named in C{calls}."""

    def __init__(self, pending: list[FunctionCall]) -> None:
        self.calls = []
        named = []
        for call in pending:
            entry: dict[str, Any] = {"index": call.index, "name": call.name}
            if call.id is not None:
                entry["id"] = call.id
            entry["explanation"] = call.explanation()
            self.calls.append(entry)
            label = f"{call.name} (id {call.id})" if call.id is not None else call.name
            named.append(f"{label} at index {call.index}: {call.explanation() or 'no explanation given'}")
        super().__init__(
            409, "Safety confirmation needed.",
            "; ".join(named) + '. Ask the user; if they agree, send the same calls again with these '
            'ids (or names) in "confirmed". Nothing was run.',
        )

    def body(self) -> dict[str, Any]:
        return {**super().body(), "calls": self.calls}


def checkSafety(calls: Sequence[FunctionCall], confirmed: set[str]) -> None:
    """
    Mark the confirmed calls that need confirmation as acknowledged.

    @raise ConfirmationNeeded: if any such call is not confirmed.
    """
    pending = []
    for call in calls:
        if call.decision() != REQUIRE_CONFIRMATION:
            continue
        if call.name in confirmed or (call.id is not None and call.id in confirmed):
            call.acknowledged = True
        else:
            pending.append(call)
    if pending:
        raise ConfirmationNeeded(pending)


# -- a call's arguments


def _isNumber(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class Args:
    """
    A call's arguments, read with the checks Gemini's declarations imply.
    Every failure is an C{APIError} that becomes the call's error response.
    """

    def __init__(self, call: FunctionCall) -> None:
        if call.args is not None and not isinstance(call.args, dict):
            raise callError(f"args must be an object, got {typeName(call.args)}")
        self.name = call.name
        self.raw: dict[str, Any] = call.args or {}

    def has(self, *keys: str) -> bool:
        return any(self.raw.get(k) is not None for k in keys)

    def number(self, key: str, default: float | None, high: float) -> float:
        """A number from 0 to HIGH, DEFAULT when absent."""
        v = self.raw.get(key)
        if v is None:
            if default is None:
                raise callError(f'"{key}" is missing')
            return default
        if not _isNumber(v):
            raise callError(f'"{key}" must be a number, got {typeName(v)}')
        if not 0 <= v <= high:
            raise callError(f'"{key}" must be from 0 to {high:g}, got {v:g}')
        return float(v)

    def point(self, xKey: str = "x", yKey: str = "y") -> tuple[int, int]:
        """A point on the grid (not clamped: outside it is the call's error)."""
        out = []
        for key in (xKey, yKey):
            v = self.raw.get(key)
            if v is None:
                raise callError(f'"{key}" is missing; give {xKey} and {yKey} on the 0-999 grid')
            if not _isNumber(v):
                raise callError(f'"{key}" must be a number on the 0-999 grid, got {typeName(v)}')
            g = geometry.roundHalfAway(v)
            if not 0 <= g < GRID:
                raise callError(f'"{key}" is {v:g}, outside the 0-999 grid')
            out.append(g)
        return out[0], out[1]

    def flag(self, key: str, default: bool) -> bool:
        v = self.raw.get(key)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise callError(f'"{key}" must be true or false, got {typeName(v)}')
        return v

    def text(self, key: str) -> str:
        v = self.raw.get(key)
        if not isinstance(v, str):
            raise callError(f'"{key}" must be a string, got {typeName(v)}')
        return v

    def direction(self) -> str:
        v = self.raw.get("direction")
        if not isinstance(v, str) or v.lower() not in ("up", "down", "left", "right"):
            shown = repr(v) if isinstance(v, str) else typeName(v)
            raise callError(f'"direction" must be "up", "down", "left" or "right", got {shown}')
        return v.lower()


# -- the functions, by name

Handler = Callable[[Args, Space], list[Step]]

_FUNCTIONS: dict[str, Handler] = {}


def function(*names: str) -> Callable[[Handler], Handler]:
    """Register the decorated handler for each of NAMES."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if name in _FUNCTIONS:
                raise ValueError(f"function {name} registered twice")
            _FUNCTIONS[name] = handler
        return handler

    return register


def functionNames() -> list[str]:
    """Every function this dialect runs, sorted."""
    return sorted(n for n in _FUNCTIONS if n not in BROWSER_ONLY)


#: Gemini's click functions -> our action.
CLICKS = {
    "click": "left_click", "click_at": "left_click", "double_click": "double_click",
    "triple_click": "triple_click", "middle_click": "middle_click", "right_click": "right_click",
}


@function(*CLICKS)
def click(args: Args, grid: Space) -> list[Step]:
    return [step(grid, CLICKS[args.name], coordinate=args.point())]


@function("move", "hover_at")
def move(args: Args, grid: Space) -> list[Step]:
    return [step(grid, "mouse_move", coordinate=args.point())]


@function("mouse_down", "mouse_up")
def button(args: Args, grid: Space) -> list[Step]:
    """Left button down/up at (x, y); with neither, where the pointer is."""
    at = args.point() if args.has("x", "y") else None
    return [step(grid, "left_mouse_down" if args.name == "mouse_down" else "left_mouse_up", coordinate=at)]


def typing(grid: Space, text: str, pressEnter: bool) -> list[Step]:
    steps = [step(grid, "type", text=text)] if text else []
    if pressEnter:
        steps.append(step(grid, "key", text="Return"))
    return steps


@function("type")
def typeText(args: Args, grid: Space) -> list[Step]:
    return typing(grid, args.text("text"), args.flag("press_enter", False))


@function("type_text_at")
def typeTextAt(args: Args, grid: Space) -> list[Step]:
    """Click, clear (select all, delete) unless told not to, type, press Enter unless told not to."""
    at, text = args.point(), args.text("text")
    pressEnter, clear = args.flag("press_enter", True), args.flag("clear_before_typing", True)
    steps = [step(grid, "left_click", coordinate=at)]
    if clear:
        steps.append(step(grid, "key", text="ctrl+a BackSpace"))
    return steps + typing(grid, text, pressEnter)


@function("drag_and_drop")
def dragAndDrop(args: Args, grid: Space) -> list[Step]:
    """C{start_x, start_y, end_x, end_y}, or the legacy C{x, y, destination_x, destination_y}."""
    legacy = args.has("x", "y", "destination_x", "destination_y") and not args.has(
        "start_x", "start_y", "end_x", "end_y")
    if legacy:
        start, end = args.point("x", "y"), args.point("destination_x", "destination_y")
    else:
        start, end = args.point("start_x", "start_y"), args.point("end_x", "end_y")
    return [step(grid, "left_click_drag", start_coordinate=start, coordinate=end)]


@function("wait")
def wait(args: Args, grid: Space) -> list[Step]:
    return [Wait(geometry.roundHalfAway(args.number("seconds", 1, MAX_WAIT_S) * 1000))]


@function("wait_5_seconds")
def waitFive(args: Args, grid: Space) -> list[Step]:
    return [Wait(5000)]


def keyText(text: str) -> str:
    """A key or combination as our key actions read it: "Control + A" -> "Control+A"."""
    return re.sub(r"(?<=\S)\s*\+\s*(?=\S)", "+", text.strip()) if text.strip() else text


@function("press_key", "key_down", "key_up")
def pressKey(args: Args, grid: Space) -> list[Step]:
    text = keyText(args.text("key"))
    return [step(grid, "key" if args.name == "press_key" else args.name, text=text)]


@function("hotkey", "key_combination")
def hotkey(args: Args, grid: Space) -> list[Step]:
    """C{keys} pressed as one chord: a list (C{["Control", "A"]}) or a string (C{"Control+A"})."""
    keys = args.raw.get("keys")
    if isinstance(keys, str) and keys:
        return [step(grid, "key", text=keyText(keys))]
    if isinstance(keys, list) and keys and all(isinstance(k, str) and k for k in keys):
        return [step(grid, "key", text="+".join(k for name in keys for k in combo(name)))]
    raise callError(f'"keys" must be a list of key names like ["Control", "A"] or a combination like '
                    f'"Control+A", got {typeName(keys)}')


def wheelClicks(px: float) -> int:
    """Pixels to wheel clicks: rounded, and any distance at least one click."""
    clicks = geometry.roundHalfAway(px / PX_PER_CLICK)
    if px > 0 and clicks == 0:
        return 1
    if clicks > MAX_SCROLL_AMOUNT:
        raise callError(f"the distance is {clicks} wheel clicks ({PX_PER_CLICK} px each); "
                        f"at most {MAX_SCROLL_AMOUNT}")
    return clicks


def scrollDistance(args: Args, grid: Space, direction: str) -> int:
    """
    The wheel clicks of a C{scroll}/C{scroll_at}: C{magnitude_in_pixels}
    (C{scroll}, default 300), C{magnitude_in_wheel_clicks}, or C{magnitude}
    in grid units, a fraction of the screen's height (width for left and
    right; C{scroll_at}'s default 800).
    """
    if args.name == "scroll" and args.has("magnitude_in_pixels"):
        return wheelClicks(args.number("magnitude_in_pixels", None, MAX_SCROLL_AMOUNT * PX_PER_CLICK))
    if args.name == "scroll" and args.has("magnitude_in_wheel_clicks"):
        return geometry.roundHalfAway(args.number("magnitude_in_wheel_clicks", None, MAX_SCROLL_AMOUNT))
    if args.name == "scroll" and not args.has("magnitude"):
        return wheelClicks(300)
    units = args.number("magnitude", 800, MAX_MAGNITUDE)
    side = grid.native[1] if direction in ("up", "down") else grid.native[0]
    return wheelClicks(units / GRID * side)


@function("scroll", "scroll_at")
def scroll(args: Args, grid: Space) -> list[Step]:
    at, direction = args.point(), args.direction()
    clicks = scrollDistance(args, grid, direction)
    return [step(grid, "scroll", coordinate=at, scroll_direction=direction, scroll_amount=clicks)]


@function("scroll_document")
def scrollDocument(args: Args, grid: Space) -> list[Step]:
    centre = (GRID // 2, GRID // 2)
    return [step(grid, "scroll", coordinate=centre, scroll_direction=args.direction(),
                 scroll_amount=DOCUMENT_CLICKS)]


@function("take_screenshot")
def takeScreenshot(args: Args, grid: Space) -> list[Step]:
    """Nothing to do: every response carries the screenshot after the turn."""
    return []


@function(*BROWSER_ONLY)
def browserOnly(args: Args, grid: Space) -> list[Step]:
    raise callError(NO_BROWSER)


def translateCall(call: FunctionCall, grid: Space) -> Group:
    """
    CALL's steps on a desktop whose grid space is GRID, or the error its
    response carries (an unknown function, a malformed argument, a safety
    decision that is neither "require_confirmation" nor "allowed").
    """
    try:
        decision = call.decision()
        if decision not in (None, REQUIRE_CONFIRMATION, *ALLOWED):
            shown = f'"{decision}"' if decision else f"malformed ({typeName(call.safetyDecision())})"
            why = call.explanation()
            raise callError(f"not run: safety decision {shown}" + (f": {why}" if why else ""))
        handler = _FUNCTIONS.get(call.name)
        if handler is None:
            raise callError(f"unknown function. This desktop runs: {', '.join(functionNames())}.")
        return handler(Args(call), grid)
    except APIError as e:
        return APIError(e.status, f"{call.name}: {e.message}", e.detail)


# -- the answer


def screenshotParts(observation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The screenshot after the turn as FunctionResponse parts (none if it failed)."""
    if not observation or "screenshot_data" not in observation:
        return []
    return [{"inline_data": {"mime_type": "image/png", "data": observation["screenshot_data"]}}]


def functionResponse(call: FunctionCall, outcome: GroupOutcome | None, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """CALL's function_response Part; OUTCOME is C{None} when it did not run."""
    if outcome is None:
        response: dict[str, Any] = {"error": NOT_EXECUTED}
    elif outcome.error is not None:
        response = {"error": outcome.message()}
    else:
        response = {"status": "ok"}
    if call.acknowledged:
        response["safety_acknowledgement"] = "true"
    out: dict[str, Any] = {"name": call.name}
    if call.id is not None:
        out["id"] = call.id
    out["response"] = response
    if parts:
        out["parts"] = parts
    return {"function_response": out}


class GeminiEndpoint(DialectEndpoint):
    """C{POST /api/v0/desktop/dialects/gemini}."""

    api = apischema.GEMINI
    name = "gemini"

    def translate(self, body: dict[str, Any], info: DesktopInfo) -> Turn:
        calls = parseCalls(body)
        checkSafety(calls, parseConfirmed(body.get("confirmed")))
        grid = Space(info.size, (GRID, GRID))
        groups = [translateCall(call, grid) for call in calls]
        return Turn(groups, Space(info.size, recommended(info)), screenshotAfter=True, calls=list(calls))

    def answer(
        self, turn: Turn, outcomes: list[GroupOutcome], observation: dict[str, Any] | None
    ) -> dict[str, Any]:
        parts = screenshotParts(observation)
        return {"function_responses": [
            functionResponse(call, outcomes[i] if i < len(outcomes) else None, parts)
            for i, call in enumerate(turn.calls)
        ]}
