"""
L{ServiceTestCase}: the whole HTTP API over an in-memory client (treq's
C{StubTreq}), on a L{FakeDesktop} and a L{task.Clock}, for unit tests of
what a route answers.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop
from agentdesktop.web.root import makeRoot

#: The API's prefix as the in-memory client addresses it.
API = "http://localhost/api/v0/desktop/"


class ServiceTestCase(SynchronousTestCase):
    #: The fake desktop's size (L{FakeDesktop}'s default when C{None}).
    size: tuple[int, int] | None = None
    #: The bearer token the service requires, if any.
    token: str | None = None

    def setUp(self) -> None:
        self.desktop = FakeDesktop(*self.size) if self.size else FakeDesktop()
        self.clock = task.Clock()
        self.state = makeState(self.desktop, self.clock, self.token)
        self.treq = StubTreq(makeRoot(self.state, self.clock))

    def exchange(self, method: str, url: str, body: Any = None, raw: bytes | None = None,
                 headers: dict[str, str] | None = None, advance: float = 0) -> tuple[int, bytes, Headers]:
        """
        Send BODY as JSON (or RAW as it is) and let the service work: what
        is due now runs first, then ADVANCE seconds pass.  The status, the
        body and the headers of the answer.
        """
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        d = self.treq.request(method, url, data=data, headers={k: [v] for k, v in (headers or {}).items()})
        self.treq.flush()
        self.clock.advance(0)
        if advance:
            self.clock.advance(advance)
        self.treq.flush()
        response = self.successResultOf(d)
        return response.code, self.successResultOf(response.content()), response.headers

    def postJSON(self, url: str, body: Any = None, raw: bytes | None = None,
                 advance: float = 0) -> tuple[int, Any]:
        """POST and decode the JSON answer."""
        code, content, _ = self.exchange("POST", url, body, raw, advance=advance)
        return code, json.loads(content)
