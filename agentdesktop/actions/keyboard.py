"""
Keyboard actions: key combinations, held keys, and exact typing.
"""

from __future__ import annotations

from typing import Any

from agentdesktop.actions.table import (
    ActionFailed,
    Context,
    Input,
    Space,
    Step,
    action,
    combo,
    duration,
    keys,
    needText,
)
from agentdesktop.errors import DesktopError, badRequest
from agentdesktop.request import ActionRequest


@action("key")
def key(req: ActionRequest, space: Space) -> Step:
    combos = keys(needText(req))
    return Input("Key press failed.", lambda d: d.keys(combos))


@action("key_down")
def keyDown(req: ActionRequest, space: Space) -> Step:
    pressed = combo(needText(req))
    return Input("Key down failed.", lambda d: d.keyDown(pressed))


@action("key_up")
def keyUp(req: ActionRequest, space: Space) -> Step:
    released = combo(needText(req))
    return Input("Key up failed.", lambda d: d.keyUp(released))


class Hold(Step):
    """Press keys, wait, release them: released even when the wait is cut short."""

    failMessage = "Key down failed."

    def __init__(self, keys: list[str], ms: int) -> None:
        self.keys = keys
        self.ms = ms

    async def run(self, ctx: Context) -> dict[str, Any]:
        try:
            await ctx.desktop.keyDown(self.keys)
        except DesktopError as e:
            raise ActionFailed("Key down failed.", str(e)) from None
        try:
            await ctx.sleep(self.ms)
        finally:
            try:
                await ctx.desktop.keyUp(self.keys)
            except DesktopError as e:
                raise ActionFailed("Key up failed.", str(e)) from None
        return self.performed()


@action("hold_key")
def holdKey(req: ActionRequest, space: Space) -> Step:
    held = combo(needText(req))
    return Hold(held, duration(req))


def checkTypeable(text: str) -> None:
    """Refuse control characters (other than newline and tab) and lone surrogates."""
    for i, ch in enumerate(text):
        if ch in "\n\r\t":
            continue
        if ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            raise badRequest(
                'Invalid "text" for type action.',
                f"character U+{ord(ch):04X} at index {i} cannot be typed",
            )


@action("type")
def typeText(req: ActionRequest, space: Space) -> Step:
    text = needText(req)
    checkTypeable(text)
    return Input("Type action failed.", lambda d: d.typeText(text))
