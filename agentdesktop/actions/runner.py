"""
L{ActionRunner} runs validated steps on an L{IDesktop}: input steps one at
a time under one lock, waits that the client going away cuts short, and the
mapping of desktop failures to the spec's 500 messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from agentdesktop.actions.table import ActionFailed, Context, Step
from agentdesktop.control import CONTROLLED, ControlLease
from agentdesktop.errors import APIError, DesktopError
from agentdesktop.interfaces import IDesktop
from agentdesktop.metrics import Metrics

log = Logger()


@dataclass
class GroupOutcome:
    """
    How one group of steps went: the bodies of the steps that succeeded,
    and the error that stopped it, if any.
    """

    bodies: list[dict[str, Any]] = field(default_factory=list)
    error: APIError | None = None

    def entry(self) -> dict[str, Any]:
        """A one-step group as a C{/batch} result entry."""
        if self.error is not None:
            return {"status": self.error.status, **self.error.body()}
        return {"status": 200, **self.bodies[-1]}

    def message(self) -> str:
        """The error as one line for a model: message, then detail."""
        assert self.error is not None
        return self.error.message + (f" {self.error.detail}" if self.error.detail else "")


class ActionRunner:
    """
    Runs steps against DESKTOP.  Input steps hold L{lock}, so that two
    requests never interleave their input.  Every action run (and refused)
    is counted in L{metrics}: this is the one place /action, batches, the
    dialects and MCP all pass through.
    """

    def __init__(
        self,
        desktop: IDesktop,
        clock: IReactorTime,
        control: ControlLease | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.desktop = desktop
        self.clock = clock
        self.control = control
        self.metrics = metrics if metrics is not None else Metrics()
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
        return Context(
            self.desktop, lambda ms: self.sleep(ms, disconnected), self.metrics, self.clock.seconds
        )

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
        async with self.exclusive(step):
            return await self.perform(step, ctx)

    @asynccontextmanager
    async def exclusive(self, step: Step | None = None) -> AsyncIterator[None]:
        """
        Hold the input lock for agent input (STEP, when it is an action):
        refused (409) while a person holds control, checked again once the
        lock is ours, since a person may have taken control while this waited.
        """
        self.checkInput(step)
        async with self.lock:
            self.checkInput(step)
            yield

    async def runGroups(
        self,
        groups: Sequence[Sequence[Step] | APIError],
        disconnected: defer.Deferred[Any] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> list[GroupOutcome]:
        """
        Run GROUPS of steps in order under the input lock, held for all of
        them, so that no other client's input lands in between.  A group
        given as an L{APIError} is one that could not be prepared: it fails
        when its turn comes.  The first failure (or GONE() saying the
        client went away) stops the run; then whatever was pressed is let go.

        @return: one L{GroupOutcome} per group that ran or failed, in order;
            groups after a failure have none.
        """
        ctx = self.context(disconnected)
        outcomes: list[GroupOutcome] = []
        self.metrics.batch(len(groups))
        async with self.lock:
            for group in groups:
                if gone():
                    await self.releaseAll()
                    break
                outcome = GroupOutcome()
                outcomes.append(outcome)
                released = False
                outcome.error = group if isinstance(group, APIError) else None
                for step in [] if outcome.error else group:  # type: ignore[union-attr]
                    try:
                        if step.input:
                            # A person may have taken control meanwhile.
                            self.checkInput(step)
                        outcome.bodies.append(await self.perform(step, ctx))
                    except APIError as e:
                        # A failed input step has released everything already;
                        # one refused by the lease must not release the person's.
                        outcome.error, released = e, step.input
                        break
                if outcome.error is not None:
                    if not released:
                        await self.releaseAll()
                    break
        return outcomes

    async def runBatch(
        self,
        steps: Sequence[Step],
        disconnected: defer.Deferred[Any] | None = None,
        gone: Callable[[], bool] = lambda: False,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """
        L{runGroups} with one step per group, in C{/batch}'s terms.

        @return: one entry per step that ran (C{{"status": 200, ...body}}
            or C{{"status": 500, "message", "detail"}}), and the index of
            the step that failed or C{None}.
        """
        outcomes = await self.runGroups([[s] for s in steps], disconnected, gone)
        results = [o.entry() for o in outcomes]
        failed = next((i for i, o in enumerate(outcomes) if o.error is not None), None)
        return results, failed

    def checkInput(self, step: Step | None = None) -> None:
        """
        Refuse agent input while a person holds control (counting STEP,
        when given, as refused).

        @raise APIError: 409 C{A person is controlling the desktop.}
        """
        if self.control is not None and self.control.held:
            if step is not None:
                self.refused(step)
            raise APIError(409, CONTROLLED)

    def refused(self, step: Step) -> None:
        """Count STEP as refused while a person holds control."""
        if step.name:
            self.metrics.action(step.name, 409)

    async def perform(self, step: Step, ctx: Context) -> dict[str, Any]:
        """
        Run STEP (the caller holds the lock if it needs it) and count it;
        steps without a name (an observation's screenshot) are the
        service's own, not actions.
        """
        started = self.clock.seconds()
        status = 500
        try:
            body = await self._perform(step, ctx)
            status = 200
            return body
        except APIError as e:
            status = e.status
            raise
        finally:
            if step.name:
                self.metrics.action(step.name, status, self.clock.seconds() - started)

    async def _perform(self, step: Step, ctx: Context) -> dict[str, Any]:
        """Run STEP; after a failed input step every key and button is released."""
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
