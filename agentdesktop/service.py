"""
The service that owns the desktop and everything it started.
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from agentdesktop.actions import ActionRunner
from agentdesktop.errors import DesktopError
from agentdesktop.interfaces import IDesktop, IRecorder
from agentdesktop.state import ServiceState

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

    def startService(self) -> None:
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
        await defer.maybeDeferred(super().stopService)
        self.state.runner.close()
        if self.state.recorder is not None:
            try:
                await self.state.recorder.close()
            except Exception:
                log.failure("Closing the recorder failed")
        await self.desktop.stop()
        log.info("Desktop stopped; every child process has exited")


def makeState(
    desktop: IDesktop,
    clock: Any,
    token: str | None = None,
    recorder: IRecorder | None = None,
) -> ServiceState:
    """The state of a service driving DESKTOP, timing holds and waits on CLOCK."""
    return ServiceState(desktop, ActionRunner(desktop, clock), token, recorder)
