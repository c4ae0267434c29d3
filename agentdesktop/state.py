"""
L{ServiceState}: what the service wiring and the web layer share.  It
imports neither: the service does not depend on HTTP, and the web layer
does not depend on how the service starts and stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentdesktop.actions import ActionRunner
from agentdesktop.control import ControlLease
from agentdesktop.interfaces import IDesktop, IRecorder
from agentdesktop.metrics import Metrics
from agentdesktop.tickets import Sessions, TicketBook

#: C{--viewer-input}: viewers may send input only while a person holds
#: control (and only those allowed to take it), or always.
WITH_CONTROL = "with-control"
ALWAYS = "always"


@dataclass
class ServiceState:
    """
    @ivar desktop: the desktop every route drives.
    @ivar runner: runs actions on it (and owns the input lock).
    @ivar control: the control lease between people and the agent.
    @ivar tickets: one-time tickets for viewers.
    @ivar sessions: the sessions of viewer pages opened with a ticket (or
        a token in the URL).
    @ivar token: the bearer token every non-public route requires, or
        C{None} for no authentication.
    @ivar recorder: the recorder, or C{None} when recording is off.
    @ivar shuttingDown: set once the service began stopping; every route
        then answers 503.
    @ivar viewerInput: L{WITH_CONTROL} or L{ALWAYS} (C{--viewer-input}).
    @ivar allowTokenInURL: whether C{?token=} is accepted
        (C{--allow-token-in-url}).
    @ivar metrics: the service's Prometheus metrics.
    @ivar metricsWithoutAuth: whether C{/metrics} is open without the token
        (C{--metrics-without-auth}).
    """

    desktop: IDesktop
    runner: ActionRunner
    control: ControlLease
    tickets: TicketBook
    sessions: Sessions
    token: str | None = None
    recorder: IRecorder | None = None
    shuttingDown: bool = False
    viewerInput: str = WITH_CONTROL
    allowTokenInURL: bool = False
    metrics: Metrics = field(default_factory=Metrics)
    metricsWithoutAuth: bool = False

    def viewerMayInput(self, mayControl: bool) -> bool:
        """
        Whether a viewer may send input now: one allowed to take control
        (MAYCONTROL) while a person holds it, or any with
        C{--viewer-input always}.
        """
        return self.viewerInput == ALWAYS or (mayControl and self.control.held)
