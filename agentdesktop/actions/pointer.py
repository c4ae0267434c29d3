"""
Pointer actions: moves, clicks, drags, buttons and the wheel.
"""

from __future__ import annotations

from typing import Any

from agentdesktop.actions.table import Context, Input, Space, Step, action, modifiers, need
from agentdesktop.errors import badRequest
from agentdesktop.interfaces import IDesktop
from agentdesktop.request import MAX_PATH_POINTS, ActionRequest

MAX_SCROLL_AMOUNT = 1000

#: action -> (button, clicks, 500 message)
CLICKS = {
    "left_click": (1, 1, "Left click failed."),
    "right_click": (3, 1, "Right click failed."),
    "middle_click": (2, 1, "Middle click failed."),
    "double_click": (1, 2, "Double click failed."),
    "triple_click": (1, 3, "Triple click failed."),
    "back_click": (8, 1, "Back click failed."),
    "forward_click": (9, 1, "Forward click failed."),
}

SCROLL_BUTTONS = {"up": 4, "down": 5, "left": 6, "right": 7}

#: Fields of the actions that can hold modifier keys.
HELD = ("text", "key")


def _coordinate(req: ActionRequest, space: Space) -> tuple[int, int]:
    c = need(req.coordinate, f'Missing "coordinate" for {req.action} action.')
    return space.point(c)


@action("mouse_move", fields=("coordinate", *HELD))
def mouseMove(req: ActionRequest, space: Space) -> Step:
    x, y = _coordinate(req, space)
    mods = modifiers(req)
    return Input("Mouse move failed.", lambda d: d.move(x, y, mods))


@action(*CLICKS, fields=("coordinate", *HELD))
def click(req: ActionRequest, space: Space) -> Step:
    button, count, failMessage = CLICKS[req.action or ""]
    x, y = _coordinate(req, space)
    mods = modifiers(req)
    return Input(failMessage, lambda d: d.click(x, y, button, count, mods))


def _dragPath(req: ActionRequest, space: Space) -> list[tuple[int, int]]:
    if req.path is not None:
        if req.coordinate is not None or req.start_coordinate is not None:
            raise badRequest(
                'Invalid "path" for left_click_drag.',
                'Give either "path" or "start_coordinate" and "coordinate", not both.',
            )
        if not 2 <= len(req.path) <= MAX_PATH_POINTS:
            raise badRequest(
                'Invalid "path" for left_click_drag.',
                f"path has {len(req.path)} points; it needs 2 to {MAX_PATH_POINTS}.",
            )
        return [space.point(p) for p in req.path]
    if req.coordinate is None or req.start_coordinate is None:
        raise badRequest('Missing "coordinate" or "start_coordinate" for left_click_drag.')
    return [space.point(req.start_coordinate), space.point(req.coordinate)]


@action("left_click_drag", fields=("coordinate", "start_coordinate", "path", *HELD))
def drag(req: ActionRequest, space: Space) -> Step:
    path = _dragPath(req, space)
    mods = modifiers(req)
    return Input("Left click drag failed.", lambda d: d.drag(path, mods))


@action("left_mouse_down", "left_mouse_up", fields=("coordinate",))
def button(req: ActionRequest, space: Space) -> Step:
    target = space.point(req.coordinate) if req.coordinate is not None else None
    down = req.action == "left_mouse_down"

    async def press(desktop: IDesktop) -> None:
        if target is not None:
            await desktop.move(*target, ())
        await (desktop.buttonDown(1) if down else desktop.buttonUp(1))

    return Input("Left mouse down failed." if down else "Left mouse up failed.", press)


def wheel(req: ActionRequest) -> tuple[int, int]:
    """
    The wheel button and the number of clicks of a scroll request
    (C{scroll_direction} default C{down}, C{scroll_amount} default 3).

    @raise APIError: 400 for a direction or an amount out of range.
    """
    direction = "down" if req.scroll_direction is None else req.scroll_direction
    if direction not in SCROLL_BUTTONS:
        raise badRequest(
            f"Invalid scroll direction: {direction}",
            "scroll_direction must be one of up, down, left, right.",
        )
    amount = 3 if req.scroll_amount is None else req.scroll_amount
    if not 0 <= amount <= MAX_SCROLL_AMOUNT:
        raise badRequest(
            f"Invalid scroll amount: {amount}",
            f"scroll_amount must be between 0 and {MAX_SCROLL_AMOUNT}.",
        )
    return SCROLL_BUTTONS[direction], amount


@action("scroll", fields=("coordinate", "scroll_direction", "scroll_amount", *HELD))
def scroll(req: ActionRequest, space: Space) -> Step:
    x, y = _coordinate(req, space)
    button, amount = wheel(req)
    mods = modifiers(req)
    if amount == 0:
        return Input("Scroll failed.", lambda d: d.move(x, y, mods))
    return Input("Scroll failed.", lambda d: d.click(x, y, button, amount, mods))


@action("reset_input")
def resetInput(req: ActionRequest, space: Space) -> Step:
    return Input("Reset input failed.", lambda d: d.releaseAll())


class AtPointer(Step):
    """
    A click or scroll where the pointer already is (no move): what the
    vendors' tools mean by a click without a coordinate.  C{/action} never
    makes one (a Coder client leaves out a [0, 0] coordinate).  A COUNT of
    0 (a scroll of no clicks) does nothing.
    """

    def __init__(self, failMessage: str, button: int, count: int, modifiers: list[str]) -> None:
        self.failMessage = failMessage
        self.button = button
        self.count = count
        self.modifiers = modifiers

    async def run(self, ctx: Context) -> dict[str, Any]:
        if self.count > 0:
            x, y = await ctx.desktop.pointer()
            await ctx.desktop.click(x, y, self.button, self.count, self.modifiers)
        return self.performed()
