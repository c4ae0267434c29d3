"""
The service that owns the desktop and everything it started.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from agentdesktop.process import closeGroupSentinel
from agentdesktop.actions import ActionRunner
from agentdesktop.control import ControlLease
from agentdesktop.endpoints import ListenFailed
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import IDesktop, IRecorder
from agentdesktop.metrics import Metrics
from agentdesktop.state import WITH_CONTROL, ServiceState
from agentdesktop.tickets import Sessions, TicketBook

log = Logger()


class DesktopService(service.MultiService):
    """
    Starts the desktop when the service starts (so the first request is
    fast), and on stop refuses new requests, stops the listeners, cuts
    holds short, closes recordings, and terminates every child process.
    """

    def __init__(self, state: ServiceState) -> None:
        super().__init__()
        self.state = state

    @property
    def desktop(self) -> IDesktop:
        return self.state.desktop

    def privilegedStartService(self) -> None:
        with _listening():
            super().privilegedStartService()

    def startService(self) -> None:
        with _listening():
            super().startService()

        def failed(f: Any) -> None:
            f.trap(DesktopError)
            log.error(
                "The desktop did not start ({error}); requests will try again",
                error=f.getErrorMessage(),
            )

        self.desktop.start().addErrback(failed)

    def stopService(self) -> defer.Deferred[None]:
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.state.shuttingDown = True
        self.state.control.close()
        await defer.maybeDeferred(super().stopService)
        self.state.runner.close()
        if self.state.recorder is not None:
            try:
                await self.state.recorder.close()
            except Exception:
                log.failure("Closing the recorder failed")
        await self.desktop.stop()
        # Every child has exited: the sentinel that would have killed their
        # groups had we died goes too.
        closeGroupSentinel()
        log.info("Desktop stopped; every child process has exited")


@contextmanager
def _listening() -> Iterator[None]:
    """
    A listener that cannot bind ends start-up with one log line and exit
    status 1: twistd would print the exception's traceback.  (The service
    has not started the desktop yet: the listeners start first.)
    """
    try:
        yield
    except ListenFailed as e:
        log.critical("Cannot listen: {error}", error=str(e))
        raise SystemExit(1) from None


def makeState(
    desktop: IDesktop,
    clock: Any,
    token: str | None = None,
    recorder: IRecorder | None = None,
    *,
    controlIdleTimeout: float = 60.0,
    viewerInput: str = WITH_CONTROL,
    allowTokenInURL: bool = False,
    metricsWithoutAuth: bool = False,
) -> ServiceState:
    """
    The state of a service driving DESKTOP, timing holds, waits, the
    control lease and tickets on CLOCK, with its own metrics.
    """
    metrics = Metrics()
    control = ControlLease(clock, controlIdleTimeout)
    runner = ActionRunner(desktop, clock, control, metrics)

    def releaseAll() -> defer.Deferred[None]:
        # Whoever gets control starts with no key or button held.
        return defer.Deferred.fromCoroutine(runner.releaseAll())

    control.changed.append(releaseAll)
    state = ServiceState(
        desktop, runner, control, TicketBook(clock), Sessions(clock), token, recorder,
        viewerInput=viewerInput, allowTokenInURL=allowTokenInURL, metrics=metrics,
        metricsWithoutAuth=metricsWithoutAuth,
    )
    instrument(state)
    return state


def instrument(state: ServiceState) -> None:
    """
    Connect the state's metrics to what reports through hooks (the
    desktop's restarts, the lease's hand-overs) or is read when scraped
    (the lease's state, the recorder's active recordings).
    """
    metrics, control = state.metrics, state.control
    state.desktop.restarted.append(metrics.desktopRestarted)
    control.changed.append(lambda: metrics.controlChanged(control.held))
    metrics.controlHeld.set_function(lambda: 1.0 if control.held else 0.0)
    metrics.recordingsActive.set_function(
        lambda: float(state.recorder.activeCount()) if state.recorder is not None else 0.0
    )
