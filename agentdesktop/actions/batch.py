"""
Batches (SPEC section 11): a model's whole turn in one request.  Every item
is validated before anything runs; the items run in order under the input
lock; the batch stops at the first failure; then, if asked, the screen is
observed once it has settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentdesktop import geometry
from agentdesktop.actions.runner import ActionRunner
from agentdesktop.actions.screen import FORMATS, ImageStep
from agentdesktop.actions.table import Space, Step, ignoredFields, prepare
from agentdesktop.errors import APIError, badRequest, decodeError
from agentdesktop.request import typeName, decodeActionObject

MAX_ITEMS = 100
MAX_SETTLE_MS = 5000
MAX_TIMEOUT_MS = 10000

BATCH_FIELDS = frozenset({"actions", "scaled_width", "scaled_height", "observe"})
OBSERVE_FIELDS = frozenset({"screenshot", "format", "quality", "settle_ms", "timeout_ms"})


@dataclass(frozen=True)
class Observe:
    """What to observe after a batch, and how long to wait for the screen."""

    screenshot: bool = True
    format: str = "png"
    quality: int | None = None
    settleMs: int = 150
    timeoutMs: int = 2000


@dataclass
class Batch:
    """
    A validated batch.

    @ivar declared: the batch's declared size (for its observation).
    @ivar ignored: the fields sent that nothing reads, e.g.
        C{actions[2].scaled_widht}.
    """

    steps: list[Step]
    declared: tuple[int, int]
    observe: Observe | None = None
    picture: ImageStep | None = None
    ignored: list[str] = field(default_factory=list)


def _int(raw: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise badRequest('Invalid "observe" for batch.',
                         f'observe.{name} must be an integer, got {typeName(value)}')
    if not low <= value <= high:
        raise badRequest('Invalid "observe" for batch.',
                         f"observe.{name} must be between {low} and {high}, got {value}")
    return value


def decodeObserve(value: Any) -> Observe:
    """
    The C{observe} object of a batch.

    @raise APIError: 400 naming the field to fix.
    """
    if not isinstance(value, dict):
        raise badRequest('Invalid "observe" for batch.',
                         f"observe must be a JSON object, got {typeName(value)}")
    screenshot = value.get("screenshot", True)
    if not isinstance(screenshot, bool):
        raise badRequest('Invalid "observe" for batch.',
                         f"observe.screenshot must be true or false, got {typeName(screenshot)}")
    fmt = value.get("format") or "png"
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise badRequest('Invalid "observe" for batch.', "observe.format must be png, jpeg or webp")
    quality = value.get("quality")
    return Observe(
        screenshot=screenshot,
        format=FORMATS[fmt.lower()],
        quality=None if quality is None else _int(value, "quality", 80, 1, 100),
        settleMs=_int(value, "settle_ms", 150, 0, MAX_SETTLE_MS),
        timeoutMs=_int(value, "timeout_ms", 2000, 0, MAX_TIMEOUT_MS),
    )


def _items(raw: dict[str, Any]) -> list[Any]:
    items = raw.get("actions")
    if items is None:
        raise badRequest('Missing "actions" for batch.', "Send {\"actions\": [<action>, ...]}.")
    if not isinstance(items, list):
        raise decodeError(f'field "actions" must be an array of action objects, got {typeName(items)}')
    if not 1 <= len(items) <= MAX_ITEMS:
        raise badRequest('Invalid "actions" for batch.',
                         f"A batch holds 1 to {MAX_ITEMS} actions; got {len(items)}.")
    return items


def _itemDefaults(raw: dict[str, Any]) -> dict[str, Any]:
    defaults = {}
    for name in ("scaled_width", "scaled_height"):
        value = raw.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise decodeError(f'field "{name}" must be an integer, got {typeName(value)}')
            defaults[name] = value
    return defaults


def prepareItem(index: int, item: Any, defaults: dict[str, Any], native: tuple[int, int]) -> tuple[Step, list[str]]:
    """
    Validate item INDEX; return its step and the fields it ignores.

    @raise APIError: 400 C{Invalid action at index <i>.} with the item's
        own message and detail as the detail.
    """
    try:
        if not isinstance(item, dict):
            raise decodeError(f"each action must be a JSON object, got {typeName(item)}")
        merged = {**defaults, **{k: v for k, v in item.items() if v is not None}}
        req = decodeActionObject(merged)
        step = prepare(req, Space.of(native, req))
    except APIError as e:
        detail = e.message + (" " + e.detail if e.detail else "")
        raise badRequest(f"Invalid action at index {index}.", detail) from None
    return step, [f"actions[{index}].{name}" for name in ignoredFields(req)]


def prepareBatch(raw: dict[str, Any], native: tuple[int, int]) -> Batch:
    """
    Validate a whole batch body; nothing runs.

    @raise APIError: 400 for the first thing to fix.
    """
    items = _items(raw)
    defaults = _itemDefaults(raw)
    ignored = sorted(set(raw) - BATCH_FIELDS)
    steps = []
    for index, item in enumerate(items):
        step, itemIgnored = prepareItem(index, item, defaults, native)
        steps.append(step)
        ignored += itemIgnored
    batch = Batch(steps, geometry.declaredSize(
        native, defaults.get("scaled_width"), defaults.get("scaled_height")))
    if raw.get("observe") is not None:
        batch.observe = decodeObserve(raw["observe"])
        batch.ignored += [f"observe.{k}" for k in sorted(set(raw["observe"]) - OBSERVE_FIELDS)]
        if batch.observe.screenshot:
            batch.picture = ImageStep(None, batch.declared, batch.observe.format,
                                      batch.observe.quality, "screenshot")
    batch.ignored = ignored + batch.ignored
    return batch


async def observe(runner: ActionRunner, spec: Observe, picture: ImageStep | None) -> dict[str, Any]:
    """
    Wait for the screen to settle, then take the observation PICTURE.
    A failed screenshot is reported inside the observation.
    """
    settled = await runner.desktop.settle(spec.settleMs, spec.timeoutMs)
    runner.metrics.settled(settled.settled, settled.waitedMs)
    out: dict[str, Any] = {"settled": settled.settled, "waited_ms": settled.waitedMs}
    if picture is not None:
        try:
            image = await runner.run(picture)
        except APIError as e:
            out.update({"status": e.status, **e.body()})
        else:
            del image["output"]
            out.update(image)
    return out
