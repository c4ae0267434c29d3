"""
L{ServiceState}: what the service wiring and the web layer share.  It
imports neither: the service does not depend on HTTP, and the web layer
does not depend on how the service starts and stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentdesktop.actions import ActionRunner
from agentdesktop.interfaces import IDesktop, IRecorder


@dataclass
class ServiceState:
    """
    @ivar desktop: the desktop every route drives.
    @ivar runner: runs actions on it (and owns the input lock).
    @ivar token: the bearer token every non-public route requires, or
        C{None} for no authentication.
    @ivar recorder: the recorder, or C{None} when recording is off.
    @ivar shuttingDown: set once the service began stopping; every route
        then answers 503.
    """

    desktop: IDesktop
    runner: ActionRunner
    token: str | None = None
    recorder: IRecorder | None = None
    shuttingDown: bool = False
