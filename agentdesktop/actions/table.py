"""
The action table: each action is a small function, registered by name with
L{action}, that validates a request (raising 400s) and returns a L{Step}
ready to run.  Validation needs no desktop and no reactor, so a batch can
validate every item before anything runs.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from agentdesktop import geometry
from agentdesktop.errors import APIError, badRequest
from agentdesktop.interfaces import IDesktop
from agentdesktop.keys import UnknownKey, parseCombo, parseKeys
from agentdesktop.metrics import Metrics
from agentdesktop.request import ActionRequest

MAX_DURATION_MS = 60_000

#: The largest declared ("scaled") size on either axis.
MAX_DECLARED = 65535


@dataclass(frozen=True)
class Space:
    """The two coordinate spaces of one request: native pixels and declared."""

    native: tuple[int, int]
    declared: tuple[int, int]

    @classmethod
    def of(cls, native: tuple[int, int], req: ActionRequest) -> Space:
        """
        The spaces of REQ on a screen of NATIVE size.

        @raise APIError: 400 for a declared size past L{MAX_DECLARED}.
        """
        for name, value in (("scaled_width", req.scaled_width), ("scaled_height", req.scaled_height)):
            if value is not None and value > MAX_DECLARED:
                raise badRequest(
                    f"Invalid {name}: {value}",
                    f"scaled_width and scaled_height are at most {MAX_DECLARED}.",
                )
        return cls(native, geometry.declaredSize(native, req.scaled_width, req.scaled_height))

    def point(self, c: tuple[int, int]) -> tuple[int, int]:
        """The native pixel a declared-space point names."""
        return geometry.toNative(c, self.declared, self.native)

    def toDeclared(self, p: tuple[int, int]) -> tuple[int, int]:
        return geometry.toDeclared(p, self.native, self.declared)


class Context:
    """
    What a step runs with: the desktop, a sleep that the client going away
    or the service stopping cuts short (raising C{CancelledError}), the
    service's metrics (or C{None}) and its clock's C{seconds}.
    """

    def __init__(
        self,
        desktop: IDesktop,
        sleep: Callable[[int], Awaitable[None]],
        metrics: Metrics | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desktop = desktop
        self.sleep = sleep
        self.metrics = metrics
        self.now = now


class ActionFailed(Exception):
    """
    A step failed with a message of its own (rather than its
    L{Step.failMessage}), e.g. C{hold_key}'s key-up.
    """

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message, detail)
        self.message = message
        self.detail = detail


class Step(abc.ABC):
    """
    One validated action, ready to run.

    @ivar name: the action's name.
    @ivar input: whether it changes input state: it then runs under the
        input lock, and on failure every key and button is released.
    @ivar failMessage: the 500 message when the desktop fails.
    """

    name = ""
    input = True
    failMessage = ""

    @abc.abstractmethod
    async def run(self, ctx: Context) -> dict[str, Any]:
        """
        @return: the response body.
        @raise agentdesktop.errors.DesktopError: mapped to L{failMessage}.
        @raise ActionFailed: mapped to its own message.
        """

    def performed(self) -> dict[str, Any]:
        return {"output": f"{self.name} action performed"}


class Input(Step):
    """A step that is one call on the desktop's input methods."""

    def __init__(self, failMessage: str, perform: Callable[[IDesktop], Awaitable[Any]]) -> None:
        self.failMessage = failMessage
        self.perform = perform

    async def run(self, ctx: Context) -> dict[str, Any]:
        await self.perform(ctx.desktop)
        return self.performed()


Prepare = Callable[[ActionRequest, Space], Step]

#: Fields every action reads.
COMMON_FIELDS = frozenset({"action", "scaled_width", "scaled_height"})


@dataclass(frozen=True)
class Handler:
    """An action's handler and the request fields it reads."""

    prepare: Prepare
    fields: frozenset[str]


_TABLE: dict[str, Handler] = {}


def action(*names: str, fields: tuple[str, ...] = ()) -> Callable[[Prepare], Prepare]:
    """
    Register the decorated function as the handler of each of NAMES, which
    read FIELDS (besides L{COMMON_FIELDS}).
    """

    def register(prepare: Prepare) -> Prepare:
        for name in names:
            if name in _TABLE:
                raise ValueError(f"action {name} registered twice")
            _TABLE[name] = Handler(prepare, COMMON_FIELDS | frozenset(fields))
        return prepare

    return register


def names() -> list[str]:
    """Every registered action name."""
    return sorted(_TABLE)


def fieldsOf(name: str) -> frozenset[str]:
    """The request fields action NAME reads."""
    return _TABLE[name].fields


def prepare(req: ActionRequest, space: Space) -> Step:
    """
    Validate REQ and return its step.

    @raise APIError: 400 for a request to fix.
    """
    name = req.action or ""
    handler = _TABLE.get(name)
    if handler is None:
        raise badRequest(f"Unknown action: {name}")
    step = handler.prepare(req, space)
    step.name = name
    return step


def ignoredFields(req: ActionRequest) -> list[str]:
    """The fields REQ sent that its action does not read, sorted."""
    handler = _TABLE.get(req.action or "")
    if handler is None:
        return []
    return sorted(req.sent - handler.fields)


# -- validation helpers shared by the handlers


def need(value: Any, message: str) -> Any:
    """VALUE, or a 400 with MESSAGE when it is missing."""
    if value is None:
        raise badRequest(message)
    return value


def needText(req: ActionRequest) -> str:
    if not req.text:
        raise badRequest(f'Missing "text" for {req.action} action.')
    return req.text


def unknownKey(e: UnknownKey) -> APIError:
    return badRequest(
        f'Unknown key name: "{e.name}".',
        "Use an X keysym or a common name, e.g. Return, ctrl+shift+t, PageUp, F5.",
    )


def keys(text: str) -> list[list[str]]:
    """Key combinations separated by white space."""
    try:
        return parseKeys(text)
    except UnknownKey as e:
        raise unknownKey(e) from None


def combo(text: str) -> list[str]:
    """Every key of TEXT, flattened into one combination."""
    return [k for c in keys(text) for k in c]


def modifiers(req: ActionRequest) -> list[str]:
    """The keys held during a pointer action (C{text}, or C{key})."""
    text = req.text if req.text else req.key
    if not text:
        return []
    try:
        return parseCombo(text.strip())
    except UnknownKey as e:
        raise unknownKey(e) from None


def duration(req: ActionRequest, default: int = 1000) -> int:
    value = default if req.duration is None else req.duration
    if not 0 <= value <= MAX_DURATION_MS:
        raise badRequest(
            f"Invalid duration: {value}",
            f"duration is in milliseconds, between 0 and {MAX_DURATION_MS}.",
        )
    return value
