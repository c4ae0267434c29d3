"""
L{ActionRunner} runs validated steps on an L{IDesktop}: input steps one at
a time under one lock, waits that the client going away cuts short, and the
mapping of desktop failures to the spec's 500 messages.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from agentdesktop.actions.table import ActionFailed, Context, Step
from agentdesktop.control import CONTROLLED, ControlLease
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop

log = Logger()


class ActionRunner:
    """
    Runs steps against DESKTOP.  Input steps hold L{lock}, so that two
    requests never interleave their input.
    """

    def __init__(
        self, desktop: IDesktop, clock: IReactorTime, control: ControlLease | None = None
    ) -> None:
        self.desktop = desktop
        self.clock = clock
        self.control = control
        self.lock = defer.DeferredLock()
        self._sleeps: set[defer.Deferred[None]] = set()

    def close(self) -> None:
        """Cut every hold and wait short (their keys are then released)."""
        for d in list(self._sleeps):
            d.cancel()

    def sleep(self, ms: int, cancelled: defer.Deferred[Any] | None = None) -> defer.Deferred[None]:
        """
        Sleep MS milliseconds; L{close} or CANCELLED failing (the client
        went away) cuts it short with C{CancelledError}.
        """
        d: defer.Deferred[None] = defer.Deferred()
        call = self.clock.callLater(ms / 1000.0, d.callback, None)

        def finished(result: Any) -> Any:
            if call.active():
                call.cancel()
            self._sleeps.discard(d)
            return result

        d.addBoth(finished)
        self._sleeps.add(d)
        if cancelled is not None:
            cancelled.addErrback(lambda _: None if d.called else d.cancel())
        return d

    def context(self, disconnected: defer.Deferred[Any] | None = None) -> Context:
        """The context steps of one request run with."""
        return Context(self.desktop, lambda ms: self.sleep(ms, disconnected))

    async def run(
        self, step: Step, disconnected: defer.Deferred[Any] | None = None
    ) -> dict[str, Any]:
        """
        Run STEP, under the input lock if it is an input step.

        @param disconnected: errbacks if the client goes away; cuts holds
            and waits short.
        @return: the response body.
        @raise APIError: 409 (L{checkInput}) for an input step while a
            person holds control; 500 with the step's message when the
            desktop fails.
        """
        ctx = self.context(disconnected)
        if not step.input:
            return await self.perform(step, ctx)
        self.checkInput()
        async with self.lock:
            self.checkInput()
            return await self.perform(step, ctx)

    def checkInput(self) -> None:
        """
        Refuse agent input while a person holds control.

        @raise APIError: 409 C{A person is controlling the desktop.}
        """
        if self.control is not None and self.control.held:
            raise APIError(409, CONTROLLED)

    async def perform(self, step: Step, ctx: Context) -> dict[str, Any]:
        """
        Run STEP (the caller holds the lock if it needs it); after a
        failed input step every key and button is released.
        """
        try:
            return await step.run(ctx)
        except DesktopError as e:
            failure = APIError(500, step.failMessage, str(e))
        except ActionFailed as e:
            failure = APIError(500, e.message, e.detail)
        except defer.CancelledError:
            failure = APIError(500, "Action interrupted.",
                               "the client went away or the service is stopping")
        if step.input:
            await self.releaseAll()
        raise failure

    async def releaseAll(self) -> None:
        """Release every key and button; a failure to is logged, not raised."""
        try:
            await self.desktop.releaseAll()
        except Exception:
            log.failure("Releasing keys and buttons after a failure failed")
