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


MAX_REPEAT = 100

#: The most key presses one C{key} action makes (combinations x repeat).
MAX_PRESSES = 5000


@action("key", fields=("text", "repeat"))
def key(req: ActionRequest, space: Space) -> Step:
    combos = keys(needText(req))
    repeat = 1 if req.repeat is None else req.repeat
    if not 1 <= repeat <= MAX_REPEAT:
        raise badRequest(f"Invalid repeat: {repeat}", f"repeat must be between 1 and {MAX_REPEAT}.")
    if len(combos) * repeat > MAX_PRESSES:
        raise badRequest(
            "Too many keys for key action.",
            f"{len(combos)} combinations x {repeat} repeats; at most {MAX_PRESSES} presses "
            "per action. Use the type action for text.",
        )
    combos = combos * repeat
    return Input("Key press failed.", lambda d: d.keys(combos))


@action("key_down", fields=("text",))
def keyDown(req: ActionRequest, space: Space) -> Step:
    pressed = combo(needText(req))
    return Input("Key down failed.", lambda d: d.keyDown(pressed))


@action("key_up", fields=("text",))
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


@action("hold_key", fields=("text", "duration"))
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


@action("type", fields=("text",))
def typeText(req: ActionRequest, space: Space) -> Step:
    text = needText(req)
    checkTypeable(text)
    return Input("Type action failed.", lambda d: d.typeText(text))
