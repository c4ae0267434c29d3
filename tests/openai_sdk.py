"""
The openai SDK's own types for the OpenAI dialect's tests: computer calls
built with them, answers validated against them (no network, no API key).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any, get_args

from openai.types.responses import ResponseComputerToolCall, ResponseComputerToolCallOutputItem
from openai.types.responses.image_detail import ImageDetail
from openai.types.responses.response_computer_tool_call import PendingSafetyCheck
from openai.types.responses.response_computer_tool_call_output_screenshot_param import (
    ResponseComputerToolCallOutputScreenshotParam,
)
from openai.types.responses.response_input_item_param import ComputerCallOutput
from PIL import Image
from pydantic import TypeAdapter

PNG_PREFIX = "data:image/png;base64,"

#: The guide's example of a batched call: no "id", no "pending_safety_checks".
GUIDE_CALL = {
    "type": "computer_call",
    "call_id": "call_002",
    "actions": [
        {"type": "click", "button": "left", "x": 405, "y": 157},
        {"type": "type", "text": "penguin"},
    ],
    "status": "completed",
}


def check(id: str, code: str = "malicious_instructions") -> PendingSafetyCheck:
    return PendingSafetyCheck(id=id, code=code, message=f"{code} detected")


def call(
    *actions: Any, callId: str = "call_1", checks: Sequence[PendingSafetyCheck] = ()
) -> dict[str, Any]:
    """A GA C{computer} tool call with batched ACTIONS (SDK action models), as JSON."""
    return ResponseComputerToolCall(
        id="cu_" + callId, call_id=callId, pending_safety_checks=list(checks),
        status="completed", type="computer_call", actions=list(actions),
    ).model_dump(mode="json")


def legacyCall(
    action: Any, callId: str = "call_1", checks: Sequence[PendingSafetyCheck] = ()
) -> dict[str, Any]:
    """A C{computer_use_preview} call: one C{action}, as JSON."""
    return ResponseComputerToolCall(
        id="cu_" + callId, call_id=callId, pending_safety_checks=list(checks),
        status="completed", type="computer_call", action=action,
    ).model_dump(mode="json")


def validOutput(item: dict[str, Any]) -> bytes:
    """
    Check ITEM is a C{computer_call_output} input item by the SDK's types
    (the input param, and the output item model the API lists it as);
    return its screenshot's bytes.

    The guide adds C{"detail": "original"} to the screenshot, which the
    SDK's C{ResponseComputerToolCallOutputScreenshotParam} does not declare:
    that key (and only that) is allowed beyond the param's keys.
    """
    validated = TypeAdapter(ComputerCallOutput).validate_python(item, strict=True)
    list(validated.get("acknowledged_safety_checks") or [])  # validated lazily
    ResponseComputerToolCallOutputItem.model_validate({"id": "x", "status": "completed", **item})
    unknown = set(item) - set(ComputerCallOutput.__annotations__)
    assert not unknown, f"keys the SDK does not know: {unknown}"
    screenshot = item["output"]
    allowed = set(ResponseComputerToolCallOutputScreenshotParam.__annotations__) | {"detail"}
    assert set(screenshot) <= allowed, screenshot.keys()
    assert screenshot["detail"] in get_args(ImageDetail)
    assert screenshot["image_url"].startswith(PNG_PREFIX), screenshot["image_url"][:40]
    return base64.b64decode(screenshot["image_url"][len(PNG_PREFIX):], validate=True)


def screenshotOf(item: dict[str, Any]) -> Image.Image:
    """The PNG screenshot of a valid C{computer_call_output} item."""
    image = Image.open(io.BytesIO(validOutput(item)))
    assert image.format == "PNG", image.format
    return image.convert("RGB")
