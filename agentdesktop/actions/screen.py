"""
Actions that look: screenshots, zooms, the pointer's position, and waiting.
"""

from __future__ import annotations

from typing import Any

from agentdesktop import geometry
from agentdesktop.actions.table import Context, Space, Step, action, duration, need
from agentdesktop.errors import badRequest
from agentdesktop.jsonbody import Base64Text
from agentdesktop.request import ActionRequest

MAX_IMAGE_SIDE = 8192

FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}


def imageFormat(req: ActionRequest) -> tuple[str, int | None]:
    """The image format and quality a request asks for."""
    fmt = FORMATS.get((req.format or "png").lower())
    if fmt is None:
        raise badRequest(
            f"Invalid screenshot format: {req.format}", "format must be png, jpeg or webp."
        )
    if req.quality is not None and not 1 <= req.quality <= 100:
        raise badRequest(f"Invalid quality: {req.quality}", "quality must be between 1 and 100.")
    return fmt, req.quality


class ImageStep(Step):
    """Grab a region (or the screen), resize it, encode it."""

    input = False
    failMessage = "Screenshot failed."

    def __init__(
        self,
        region: tuple[int, int, int, int] | None,
        size: tuple[int, int],
        fmt: str,
        quality: int | None,
        output: str,
    ) -> None:
        if max(size) > MAX_IMAGE_SIDE:
            raise badRequest(
                f"Invalid image size: {size[0]}x{size[1]}",
                f"scaled_width and scaled_height are at most {MAX_IMAGE_SIDE} for images.",
            )
        self.region = region
        self.size = size
        self.fmt = fmt
        self.quality = quality
        self.output = output

    async def run(self, ctx: Context) -> dict[str, Any]:
        started = ctx.now()
        data = await ctx.desktop.screenshot(self.region, self.size, self.fmt, self.quality)
        if ctx.metrics is not None:
            ctx.metrics.screenshot(self.fmt, len(data), ctx.now() - started)
        return imageBody(self.output, data, self.size, self.fmt)


def imageBody(output: str, data: bytes, size: tuple[int, int], fmt: str) -> dict[str, Any]:
    """The response fields of an image."""
    body: dict[str, Any] = {
        "output": output,
        "screenshot_data": Base64Text.encode64(data),
        "screenshot_width": size[0],
        "screenshot_height": size[1],
    }
    if fmt != "png":
        body["screenshot_format"] = fmt
    return body


@action("screenshot", fields=("format", "quality"))
def screenshot(req: ActionRequest, space: Space) -> Step:
    fmt, quality = imageFormat(req)
    return ImageStep(None, space.declared, fmt, quality, "screenshot")


@action("zoom", fields=("region", "format", "quality"))
def zoom(req: ActionRequest, space: Space) -> Step:
    x0, y0, x1, y1 = need(req.region, 'Missing "region" for zoom action.')
    if x1 <= x0 or y1 <= y0:
        raise badRequest(
            'Invalid "region" for zoom action.',
            "region is [x0, y0, x1, y1] with x1 > x0 and y1 > y0.",
        )
    nx0, ny0 = space.point((x0, y0))
    nx1, ny1 = space.point((x1 - 1, y1 - 1))
    box = (nx0, ny0, nx1 + 1, ny1 + 1)
    size = geometry.fitInside((box[2] - box[0], box[3] - box[1]), space.declared)
    fmt, quality = imageFormat(req)
    return ImageStep(box, size, fmt, quality, "zoom")


class CursorPosition(Step):
    input = False
    failMessage = "Cursor position failed."

    def __init__(self, space: Space) -> None:
        self.space = space

    async def run(self, ctx: Context) -> dict[str, Any]:
        x, y = self.space.toDeclared(await ctx.desktop.pointer())
        return {"output": f"x={x},y={y}"}


@action("cursor_position")
def cursorPosition(req: ActionRequest, space: Space) -> Step:
    return CursorPosition(space)


class Settle(Step):
    """
    Wait until the screen has not changed for SETTLEMS milliseconds (but no
    longer than TIMEOUTMS): put before a look that follows input in the
    same turn, so that the image shows the input's effect.
    """

    input = False
    failMessage = "Screenshot failed."

    def __init__(self, settleMs: int, timeoutMs: int) -> None:
        self.settleMs = settleMs
        self.timeoutMs = timeoutMs

    async def run(self, ctx: Context) -> dict[str, Any]:
        settled = await ctx.desktop.settle(self.settleMs, self.timeoutMs)
        return {"output": "settled" if settled.settled else "still changing"}


class Wait(Step):
    input = False
    failMessage = "Wait failed."

    def __init__(self, ms: int) -> None:
        self.ms = ms

    async def run(self, ctx: Context) -> dict[str, Any]:
        await ctx.sleep(self.ms)
        return self.performed()


@action("wait", fields=("duration",))
def wait(req: ActionRequest, space: Space) -> Step:
    return Wait(duration(req))
