"""
People and agents sharing the desktop (SPEC section 16): C{/control}, the
control lease, and C{/tickets}, one-time tickets for viewers.
"""

from __future__ import annotations

from typing import Any

from agentdesktop.control import rfc3339
from agentdesktop.errors import APIError, badRequest
from agentdesktop.request import decodeObject
from agentdesktop.tickets import DEFAULT_TTL, MAX_TTL, MIN_TTL, SCOPES
from agentdesktop.web.apischema import Operation, Response, boolean, component, nullable, obj, string
from agentdesktop.web.resource import Call, Endpoint, Grant

#: The longest holder name accepted.
MAX_HOLDER = 64

CONTROL_STATUS = component("ControlStatus", obj({
    "held": boolean("Whether a person holds control (agent input then gets 409)."),
    "holder": nullable(string("Who holds it.")),
    "since": nullable(string("When they took it (RFC 3339).", format="date-time")),
    "can_control": boolean("Whether the caller may take control."),
    "may_input": boolean("Whether the caller's viewers may send input now."),
    "yours": boolean("Whether the caller holds control."),
}, ["held", "holder", "since", "can_control", "may_input", "yours"], closed=True))


def _fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name in body:
        if name not in allowed:
            raise badRequest(
                f'Unknown field "{name}".', "Allowed: " + ", ".join(allowed) + "."
            )


def decodeControl(raw: bytes) -> tuple[bool, str | None]:
    """
    C{{"take": bool, "holder": str (optional)}}.

    @raise APIError: 400 saying what to fix.
    """
    body = decodeObject(raw)
    _fields(body, ("take", "holder"))
    take = body.get("take")
    if not isinstance(take, bool):
        raise badRequest('Missing or invalid "take".', 'Send {"take": true} or {"take": false}.')
    holder = body.get("holder")
    if holder is not None:
        if (
            not isinstance(holder, str)
            or not 1 <= len(holder) <= MAX_HOLDER
            or not holder.isprintable()
        ):
            raise badRequest(
                'Invalid "holder".', f"A printable name of 1 to {MAX_HOLDER} characters."
            )
    return take, holder


def decodeTicket(raw: bytes) -> tuple[str, float]:
    """
    C{{"scope": "view" | "control", "ttl_s": 1-300}}.

    @raise APIError: 400 saying what to fix.
    """
    body = decodeObject(raw)
    _fields(body, ("scope", "ttl_s"))
    scope = body.get("scope")
    if scope not in SCOPES:
        raise badRequest('Missing or invalid "scope".', 'Use "view" or "control".')
    ttl = body.get("ttl_s", DEFAULT_TTL)
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not MIN_TTL <= ttl <= MAX_TTL
    ):
        raise badRequest(
            'Invalid "ttl_s".', f"Seconds from {MIN_TTL} to {MAX_TTL} (default {DEFAULT_TTL})."
        )
    return str(scope), float(ttl)


class ControlEndpoint(Endpoint):
    """
    C{GET /control}: who controls the desktop; C{POST /control}
    C{{"take": true}} takes control for a person, C{{"take": false}} hands
    it back.  A viewer page's session may use it; a view scope only reads.
    """

    viewer = True
    api = {
        "GET": Operation(
            "getControl", "Who controls the desktop", tags=["sharing"],
            responses={200: Response("The control lease.", CONTROL_STATUS)},
        ),
        "POST": Operation(
            "setControl", "Take control for a person, or hand it back", tags=["sharing"],
            body=obj({
                "take": boolean("true takes control, false hands it back."),
                "holder": string("A printable name shown to others.", minLength=1,
                                 maxLength=MAX_HOLDER),
            }, ["take"], closed=True),
            responses={
                200: Response("The lease afterwards (every key and button released).",
                              CONTROL_STATUS),
                403: "`Not allowed to control the desktop.`: a view ticket's viewer.",
            },
        ),
    }

    def status(self, grant: Grant) -> dict[str, Any]:
        """The lease, and what it means for the caller's viewers."""
        control = self.state.control
        return dict(
            control.status(),
            can_control=grant.mayControl,
            may_input=self.state.viewerMayInput(grant.mayControl),
            yours=control.held and control.owner is grant.owner,
        )

    async def handle_GET(self, call: Call) -> Any:
        call.action = "control"
        assert call.grant is not None
        return self.status(call.grant)

    async def handle_POST(self, call: Call) -> Any:
        take, holder = decodeControl(call.body())
        grant = call.grant
        assert grant is not None
        call.action = "take_control" if take else "release_control"
        if not grant.mayControl:
            raise APIError(
                403, "Not allowed to control the desktop.",
                "This viewer was opened with a view ticket; ask for a control ticket.",
            )
        control = self.state.control
        if take:
            if holder is None:
                holder = grant.session.label if grant.session is not None else "token holder"
            control.take(holder, grant.owner)
        else:
            control.release()
        # Answer once every key and button is released.
        await control.settled()
        return self.status(grant)


class TicketsEndpoint(Endpoint):
    """
    C{POST /tickets}: a one-time ticket for the viewer page or C{/vnc}.
    Only the bearer token may ask (never a ticket or a viewer's session).
    """

    api = {"POST": Operation(
        "ticket", "A one-time ticket for the viewer page and its /vnc connection",
        tags=["sharing"],
        body=obj({
            "scope": string("What the viewer may do.", enum=list(SCOPES)),
            "ttl_s": {"type": "number", "minimum": MIN_TTL, "maximum": MAX_TTL,
                      "description": f"Seconds it stays valid (default {DEFAULT_TTL})."},
        }, ["scope"], closed=True),
        responses={200: Response("The ticket: open the viewer with ?ticket=<ticket>, once.", obj({
            "ticket": string(),
            "expires_at": string(format="date-time"),
            "scope": string(enum=list(SCOPES)),
        }, ["ticket", "expires_at", "scope"], closed=True))},
    )}

    async def handle_POST(self, call: Call) -> Any:
        call.action = "ticket"
        scope, ttl = decodeTicket(call.body())
        ticket = self.state.tickets.issue(scope, ttl)
        return {"ticket": ticket.secret, "expires_at": rfc3339(ticket.expires), "scope": scope}
