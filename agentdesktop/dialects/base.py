"""
What every dialect shares.  A vendor's tool calls for one model turn become
a L{Turn}: one group of steps per call (or the error that call gets, when
it cannot be translated), run as one batch under the input lock by
L{ActionRunner.runGroups}: the first failing call stops the turn, and the
calls after it are "not executed".  Then, if the vendor wants one, a
screenshot once the screen has settled.  L{DialectEndpoint} is the route
skeleton; a vendor module writes only C{translate} and C{answer}.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentdesktop import geometry
from agentdesktop.actions import Space, Step, prepare
from agentdesktop.actions.batch import Observe, observe
from agentdesktop.actions.runner import GroupOutcome
from agentdesktop.actions.screen import ImageStep
from agentdesktop.errors import APIError, badRequest
from agentdesktop.interfaces import DesktopInfo
from agentdesktop.request import ActionRequest, typeName
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop

#: How long a dialect waits for the screen to settle before its screenshot.
AFTER_TURN = Observe(screenshot=True, format="png", settleMs=150, timeoutMs=2000)

Group = Sequence[Step] | APIError


@dataclass
class Turn:
    """
    One model turn, translated.

    @ivar groups: per vendor call, its steps or the error it gets.
    @ivar space: the coordinate space the model sees (= its screenshots' size).
    @ivar screenshotAfter: whether to observe the screen after the turn.
    @ivar calls: the vendor's calls as received, for L{DialectEndpoint.answer}.
    """

    groups: list[Group]
    space: Space
    screenshotAfter: bool = False
    calls: list[Any] = field(default_factory=list)


def callError(message: str) -> APIError:
    """The error a call gets when it cannot run as given (reported to the model)."""
    return APIError(400, message)


def step(space: Space, action: str, **fields: Any) -> Step:
    """
    A step of our own action table, validated as C{/action} validates.

    @raise APIError: 400 when the fields are wrong.
    """
    sent = frozenset(k for k, v in fields.items() if v is not None)
    return prepare(ActionRequest(action=action, sent=sent | {"action"}, **fields), space)


def inside(space: Space, x: Any, y: Any, what: str = "coordinate") -> tuple[int, int]:
    """
    (X, Y) checked to be integers inside the model's screenshot space; not
    clamped (the vendors' rule: a point outside is the model's mistake).

    @raise APIError: saying what is wrong.
    """
    for v in (x, y):
        if not isinstance(v, int) or isinstance(v, bool):
            raise callError(f"{what} must be two integers, got {typeName(v)}")
    w, h = space.declared
    if not (0 <= x < w and 0 <= y < h):
        raise callError(f"{what} ({x}, {y}) is outside the screen, which is {w}x{h}")
    return x, y


def spaceFor(info: DesktopInfo, declared: tuple[int, int]) -> Space:
    return Space(info.size, declared)


def displaySize(display: Any) -> tuple[int, int] | None:
    """
    The optional C{display} object (C{{"width": W, "height": H}}) of a
    dialect body.

    @raise APIError: 400 when it is malformed.
    """
    if display is None:
        return None
    if not isinstance(display, dict):
        raise badRequest('Invalid "display".', f"display must be an object, got {typeName(display)}")
    w, h = display.get("width"), display.get("height")
    for name, v in (("width", w), ("height", h)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 8192:
            raise badRequest('Invalid "display".', f"display.{name} must be an integer from 1 to 8192")
    return w, h  # type: ignore[return-value]


def recommended(info: DesktopInfo) -> tuple[int, int]:
    return geometry.recommendedSize(info.width, info.height)


class DialectEndpoint(Endpoint, abc.ABC):
    """
    C{POST /dialects/<vendor>}: translate the vendor's calls, run them as one
    turn, observe if the vendor wants a screenshot, answer in its format.
    """

    name = ""

    async def handle_POST(self, call: Call) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = call.json()
        info = await ensureDesktop(self.state)
        call.action = f"dialects/{self.name}"
        turn = self.translate(body, info)
        runner = self.state.runner
        outcomes = await runner.runGroups(turn.groups, call.disconnected(), lambda: call.gone)
        observation = None
        if turn.screenshotAfter and not call.gone:
            picture = ImageStep(None, turn.space.declared, "png", None, "screenshot")
            observation = await observe(runner, AFTER_TURN, picture)
        return self.answer(turn, outcomes, observation)

    @abc.abstractmethod
    def translate(self, body: dict[str, Any], info: DesktopInfo) -> Turn:
        """
        The vendor's body as a turn.

        @raise APIError: 400 for a body that is not the vendor's shape at all,
            409 for calls that need a person's confirmation first.
        """

    @abc.abstractmethod
    def answer(
        self, turn: Turn, outcomes: list[GroupOutcome], observation: dict[str, Any] | None
    ) -> dict[str, Any]:
        """
        The answer in the vendor's format.  OUTCOMES has one entry per
        group that ran or failed (groups after a failure have none);
        OBSERVATION is L{observe}'s dict when a screenshot was taken.
        """
