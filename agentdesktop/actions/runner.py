"""
L{ActionRunner} runs validated steps on an L{IDesktop}: input steps one at
a time under one lock, waits that the client going away cuts short, and the
mapping of desktop failures to the spec's 500 messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from agentdesktop.actions.table import ActionFailed, Context, Step
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop

log = Logger()


class ActionRunner:
    """
    Runs steps against DESKTOP.  Input steps hold L{lock}, so that two
    requests never interleave their input.
    """

    def __init__(self, desktop: IDesktop, clock: IReactorTime) -> None:
        self.desktop = desktop
        self.clock = clock
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
        @raise APIError: 500 with the step's message when the desktop fails.
        """
        ctx = self.context(disconnected)
        if not step.input:
            return await self.perform(step, ctx)
        async with self.lock:
            return await self.perform(step, ctx)

    async def runBatch(
        self,
        steps: Sequence[Step],
        disconnected: defer.Deferred[Any] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """
        Run STEPS in order under the input lock, held for all of them, so
        that no other client's input lands between two of them.  Stop at
        the first failure, or when GONE() says the client went away.

        @return: one entry per step that ran (C{{"status": 200, ...body}}
            or C{{"status": 500, "message", "detail"}}), and the index of
            the step that failed or C{None}.
        """
        ctx = self.context(disconnected)
        results: list[dict[str, Any]] = []
        async with self.lock:
            for index, step in enumerate(steps):
                if gone():
                    # Whatever the batch pressed so far is let go.
                    await self.releaseAll()
                    break
                try:
                    body = await self.perform(step, ctx)
                except APIError as e:
                    results.append({"status": e.status, **e.body()})
                    if not step.input:
                        await self.releaseAll()
                    return results, index
                results.append({"status": 200, **body})
        return results, None

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
