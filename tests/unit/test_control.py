"""
The control lease, tickets and viewer sessions, alone and through the
routes (StubTreq, a fake desktop, a clock).
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.control import CONTROLLED, ControlLease, rfc3339
from agentdesktop.service import makeState
from agentdesktop.state import ALWAYS
from agentdesktop.testing import FakeDesktop
from agentdesktop.tickets import MAX_LIVE, SESSION_IDLE, Sessions, TicketBook
from agentdesktop.web.resource import SESSION_COOKIE
from agentdesktop.web.root import makeRoot

URL = "http://localhost/api/v0/desktop/"
TOKEN = "s3cret-token"
BEARER = {"Authorization": [f"Bearer {TOKEN}"]}


class Lease(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        self.lease = ControlLease(self.clock, idleTimeout=60)
        self.changes = 0
        self.lease.changed.append(self.changed)

    def changed(self) -> None:
        self.changes += 1

    def test_takeAndRelease(self) -> None:
        self.assertEqual(self.lease.status(), {"held": False, "holder": None, "since": None})
        self.lease.take("alice")
        self.assertEqual(
            self.lease.status(),
            {"held": True, "holder": "alice", "since": "2023-11-14T22:13:20.000Z"},
        )
        self.assertEqual(self.changes, 1)
        self.lease.release()
        self.assertFalse(self.lease.held)
        self.assertEqual(self.changes, 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.lease.release()
        self.assertEqual(self.changes, 2)

    def test_idleTimeoutFromLastInput(self) -> None:
        self.lease.take("alice")
        self.clock.advance(50)
        self.lease.touch()
        self.clock.advance(59)
        self.assertTrue(self.lease.held)
        self.lease.touch()
        self.clock.advance(59.9)
        self.assertTrue(self.lease.held)
        self.clock.advance(0.2)
        self.assertFalse(self.lease.held)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.changes, 2)

    def test_oneTimerHowEverManyTouches(self) -> None:
        self.lease.take("alice")
        for _ in range(1000):
            self.lease.touch()
            self.clock.advance(0.01)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_takeAgainRestartsIdleTime(self) -> None:
        owner = object()
        self.lease.take("alice", owner)
        since = self.lease.since
        self.clock.advance(40)
        self.lease.take("alice", owner)
        self.assertEqual(self.lease.since, since)
        self.assertEqual(self.changes, 1)
        self.clock.advance(40)
        self.assertTrue(self.lease.held)
        self.lease.take("bob", object())
        self.assertEqual(self.lease.holder, "bob")
        self.assertEqual(self.lease.since, self.clock.seconds())
        self.assertEqual(self.changes, 2)
        self.clock.advance(60)
        self.assertFalse(self.lease.held)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_settledWaitsForWhatTheChangeStarted(self) -> None:
        from twisted.internet import defer

        started: defer.Deferred[None] = defer.Deferred()
        self.lease.changed.append(lambda: started)
        self.successResultOf(self.lease.settled())
        self.lease.take("alice")
        settled = self.lease.settled()
        self.assertNoResult(settled)
        started.callback(None)
        self.successResultOf(settled)

    def test_closeCancelsTheTimer(self) -> None:
        self.lease.take("alice")
        self.lease.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rfc3339(self) -> None:
        self.assertEqual(rfc3339(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(rfc3339(1.5), "1970-01-01T00:00:01.500Z")


class Tickets(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.book = TicketBook(self.clock)

    def test_onceOnly(self) -> None:
        ticket = self.book.issue("control", 30)
        self.assertEqual(self.book.redeem(ticket.secret), "control")
        self.assertIsNone(self.book.redeem(ticket.secret))

    def test_notAfterTTL(self) -> None:
        ticket = self.book.issue("view", 5)
        self.clock.advance(4.9)
        other = self.book.issue("view", 5)
        self.clock.advance(0.1)
        self.assertIsNone(self.book.redeem(ticket.secret))
        self.assertEqual(self.book.redeem(other.secret), "view")

    def test_unknown(self) -> None:
        ticket = self.book.issue("view")
        for guess in (None, "", ticket.secret[:-1], ticket.secret + "x", "é"):
            self.assertIsNone(self.book.redeem(guess))
        self.assertEqual(self.book.redeem(ticket.secret), "view")

    def test_secretsAreLongAndDistinct(self) -> None:
        secrets = {self.book.issue("view").secret for _ in range(100)}
        self.assertEqual(len(secrets), 100)
        self.assertTrue(all(len(s) >= 40 for s in secrets))

    def test_liveTicketsBounded(self) -> None:
        from agentdesktop.errors import APIError

        for _ in range(MAX_LIVE):
            self.book.issue("view", 1)
        with self.assertRaises(APIError) as e:
            self.book.issue("view", 1)
        self.assertEqual(e.exception.status, 503)
        self.clock.advance(1)
        self.book.issue("view", 1)
        self.assertEqual(len(self.book), 1)


class ViewerSessions(SynchronousTestCase):
    def test_idleExpiryButNotWhileConnected(self) -> None:
        clock = task.Clock()
        sessions = Sessions(clock)
        session = sessions.open("view")
        clock.advance(SESSION_IDLE - 1)
        self.assertIs(sessions.find(session.secret), session)
        sessions.connected(session)
        clock.advance(SESSION_IDLE * 10)
        self.assertIs(sessions.find(session.secret), session)
        sessions.disconnected(session)
        clock.advance(SESSION_IDLE - 1)
        self.assertIs(sessions.find(session.secret), session)
        clock.advance(SESSION_IDLE)
        self.assertIsNone(sessions.find(session.secret))
        self.assertNotEqual(sessions.open("view").label, session.label)


class RouteTestCase(SynchronousTestCase):
    token: str | None = TOKEN
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.desktop = FakeDesktop()
        self.clock = task.Clock()
        self.state = makeState(self.desktop, self.clock, self.token, **self.options)
        self.root = makeRoot(self.state, self.clock)
        self.treq = StubTreq(self.root)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, list[str]] | None = None
    ) -> tuple[int, Any, Any]:
        data = json.dumps(body).encode() if body is not None else None
        # A client of its own: no cookie but those in HEADERS.
        client = StubTreq(self.root)
        d = client.request(method, URL + path, data=data, headers=headers)
        client.flush()
        self.clock.advance(0)
        client.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        if response.headers.getRawHeaders("content-type") == ["application/json"]:
            content = json.loads(content)
        return response.code, content, response

    def ticket(self, scope: str, ttl: float = 30) -> str:
        code, out, _ = self.request("POST", "tickets", {"scope": scope, "ttl_s": ttl}, BEARER)
        self.assertEqual(code, 200, out)
        return str(out["ticket"])

    def openPage(self, query: str) -> dict[str, list[str]]:
        """Open the viewer page; the session cookie it sets, as a header."""
        code, body, response = self.request("GET", "?" + query)
        self.assertEqual(code, 200, body)
        (cookie,) = response.headers.getRawHeaders("set-cookie")
        return {"Cookie": [cookie.split(";", 1)[0]]}


class Control(RouteTestCase):
    def test_agentInputRefusedWhilePersonControls(self) -> None:
        code, out, _ = self.request("POST", "control", {"take": True, "holder": "alice"}, BEARER)
        self.assertEqual(code, 200, out)
        self.assertEqual((out["held"], out["holder"], out["yours"]), (True, "alice", True))
        for body in ({"action": "left_click", "coordinate": [10, 10]},
                     {"action": "type", "text": "x"}, {"action": "key", "text": "a"},
                     {"action": "mouse_move", "coordinate": [5, 5]},
                     {"action": "hold_key", "text": "a", "duration": 0}):
            code, out, _ = self.request("POST", "action", body, BEARER)
            self.assertEqual((code, out), (409, {"message": CONTROLLED}), body)
        self.assertEqual(self.desktop.pointerAt, (0, 0))
        self.assertEqual(self.desktop.typed, "")
        self.assertEqual(self.desktop.clicks, [])
        for body in ({"action": "screenshot"}, {"action": "cursor_position"},
                     {"action": "zoom", "region": [0, 0, 10, 10]},
                     {"action": "wait", "duration": 0}):
            code, out, _ = self.request("POST", "action", body, BEARER)
            self.assertEqual(code, 200, (body, out))
        code, out, _ = self.request("POST", "control", {"take": False}, BEARER)
        self.assertEqual((code, out["held"], out["holder"], out["since"]), (200, False, None, None))
        code, out, _ = self.request(
            "POST", "action", {"action": "left_click", "coordinate": [10, 10]}, BEARER
        )
        self.assertEqual(code, 200, out)
        self.assertEqual(self.desktop.pointerAt, (10, 10))

    def test_batchRefusedAsAWhole(self) -> None:
        """A batch with input is refused with 409 before any of it runs."""
        self.request("POST", "control", {"take": True}, BEARER)
        code, out, _ = self.request("POST", "batch", {"actions": [
            {"action": "screenshot"}, {"action": "left_click", "coordinate": [10, 10]}]}, BEARER)
        self.assertEqual((code, out), (409, {"message": CONTROLLED}))
        self.assertEqual([n for n, _ in self.desktop.log if n == "screenshot"], [])
        self.assertEqual(self.desktop.clicks, [])
        # A batch that only looks still runs.
        code, out, _ = self.request("POST", "batch", {"actions": [{"action": "cursor_position"}],
                                                      "observe": {}}, BEARER)
        self.assertEqual(code, 200, out)
        self.assertIn("screenshot_data", out["observation"])

    def test_accessibilityActionsAreAgentInput(self) -> None:
        """Pressing a button through the accessibility tree waits for control too."""
        self.request("POST", "control", {"take": True}, BEARER)
        code, out, _ = self.request("POST", "accessibility/1.7-3", {"action": "click"}, BEARER)
        self.assertEqual((code, out), (409, {"message": CONTROLLED}))
        self.assertEqual(self.desktop.nodeActions, [])
        # Reading the tree still works (here: nothing registered, 404).
        code, out, _ = self.request("GET", "accessibility?window=7", None, BEARER)
        self.assertEqual(code, 404, out)

    def test_actingRoutesAreAgentInput(self) -> None:
        """Clipboard writes, window verbs, launch and open wait for control too."""
        from agentdesktop.interfaces import WindowInfo

        self.desktop.windowList.append(WindowInfo(7, "t", "C", 1, 0, 0, 10, 10, False, False, False))
        self.request("POST", "control", {"take": True}, BEARER)
        for path, body in (("clipboard", {"text": "x"}), ("windows/7/close", None),
                           ("launch", {"command": ["xterm"]}), ("open", {"target": "https://x"})):
            code, out, _ = self.request("POST", path, body, BEARER)
            self.assertEqual((code, out), (409, {"message": CONTROLLED}), path)
        self.assertEqual(self.desktop.clipboard, {})
        self.assertEqual(len(self.desktop.windowList), 1)
        self.assertEqual(self.desktop.launched(), [])
        # Reads still work.
        for path in ("clipboard", "windows", "launch"):
            code, out, _ = self.request("GET", path, None, BEARER)
            self.assertEqual(code, 200, (path, out))

    def test_groupRefusedWhenControlTakenMeanwhile(self) -> None:
        """A dialect's call refused by the lease mid-turn is that call's error."""
        from agentdesktop.actions.table import Input

        runner = self.state.runner
        self.request("POST", "control", {"take": True}, BEARER)
        step = Input("Left click failed.", lambda d: d.click(1, 1, 1, 1, ()))
        outcomes = self.successResultOf(defer.Deferred.fromCoroutine(runner.runGroups([[step]])))
        self.assertEqual(outcomes[0].error.status, 409)
        self.assertEqual(outcomes[0].message(), CONTROLLED)
        self.assertEqual(self.desktop.clicks, [])

    def test_queuedInputRefusedOnceControlTaken(self) -> None:
        """Input waiting for the input lock is refused if control was taken meanwhile."""
        self.desktop.failing.clear()
        hold = self.treq.request(
            "POST", URL + "action", headers=BEARER,
            data=json.dumps({"action": "hold_key", "text": "a", "duration": 1000}).encode(),
        )
        self.treq.flush()
        queued = self.treq.request(
            "POST", URL + "action", headers=BEARER,
            data=json.dumps({"action": "left_click", "coordinate": [3, 3]}).encode(),
        )
        self.treq.flush()
        self.state.control.take("alice")
        self.clock.advance(1)
        self.treq.flush()
        self.assertEqual(self.successResultOf(hold).code, 200)
        self.assertEqual(self.successResultOf(queued).code, 409)
        self.assertEqual(self.desktop.clicks, [])

    def test_idleTimeoutHandsBack(self) -> None:
        self.request("POST", "control", {"take": True}, BEARER)
        self.clock.advance(59)
        self.assertTrue(self.state.control.held)
        self.clock.advance(1)
        code, out, _ = self.request("GET", "control", headers=BEARER)
        self.assertEqual((code, out["held"]), (200, False))

    def test_keysReleasedWhenControlChangesHands(self) -> None:
        self.request("POST", "action", {"action": "key_down", "text": "shift"}, BEARER)
        self.assertEqual(self.desktop.pressedKeys, ["Shift_L"])
        self.request("POST", "control", {"take": True}, BEARER)
        self.assertEqual(self.desktop.pressedKeys, [])

    def test_status(self) -> None:
        code, out, _ = self.request("GET", "control", headers=BEARER)
        self.assertEqual(code, 200)
        self.assertEqual(out, {"held": False, "holder": None, "since": None,
                               "can_control": True, "may_input": False, "yours": False})
        self.request("POST", "control", {"take": True}, BEARER)
        code, out, _ = self.request("GET", "control", headers=BEARER)
        self.assertEqual((out["holder"], out["may_input"], out["yours"]),
                         ("token holder", True, True))

    def test_badBodies(self) -> None:
        for body, message in (
            (None, "Failed to decode request body."),
            ({}, 'Missing or invalid "take".'),
            ({"take": "yes"}, 'Missing or invalid "take".'),
            ({"take": 1}, 'Missing or invalid "take".'),
            ({"take": True, "holder": ""}, 'Invalid "holder".'),
            ({"take": True, "holder": "a\nb"}, 'Invalid "holder".'),
            ({"take": True, "holder": "x" * 65}, 'Invalid "holder".'),
            ({"take": True, "who": "x"}, 'Unknown field "who".'),
        ):
            code, out, _ = self.request("POST", "control", body, BEARER)
            self.assertEqual((code, out["message"]), (400, message), body)
        self.assertFalse(self.state.control.held)

    def test_tokenRequired(self) -> None:
        for method in ("GET", "POST"):
            code, _, response = self.request(method, "control", {"take": True})
            self.assertEqual(code, 401)
        self.assertFalse(self.state.control.held)

    def test_wrongMethod(self) -> None:
        code, _, response = self.request("DELETE", "control", headers=BEARER)
        self.assertEqual(code, 405)
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD, POST"])


class TicketRoutes(RouteTestCase):
    def test_issue(self) -> None:
        self.clock.advance(100)
        code, out, _ = self.request("POST", "tickets", {"scope": "view"}, BEARER)
        self.assertEqual(code, 200, out)
        self.assertEqual(out["expires_at"], "1970-01-01T00:02:10.000Z")
        self.assertEqual(out["scope"], "view")
        code, out, _ = self.request("POST", "tickets", {"scope": "control", "ttl_s": 300}, BEARER)
        self.assertEqual(out["expires_at"], "1970-01-01T00:06:40.000Z")

    def test_badRequests(self) -> None:
        for body, message in (
            ({}, 'Missing or invalid "scope".'),
            ({"scope": "admin"}, 'Missing or invalid "scope".'),
            ({"scope": "view", "ttl_s": 0}, 'Invalid "ttl_s".'),
            ({"scope": "view", "ttl_s": 301}, 'Invalid "ttl_s".'),
            ({"scope": "view", "ttl_s": "30"}, 'Invalid "ttl_s".'),
            ({"scope": "view", "ttl_s": True}, 'Invalid "ttl_s".'),
            ({"scope": "view", "extra": 1}, 'Unknown field "extra".'),
        ):
            code, out, _ = self.request("POST", "tickets", body, BEARER)
            self.assertEqual((code, out["message"]), (400, message), body)

    def test_onlyTheToken(self) -> None:
        """Neither no credentials, a ticket nor a viewer's session may issue tickets."""
        self.assertEqual(self.request("POST", "tickets", {"scope": "view"})[0], 401)
        ticket = self.ticket("control")
        code, _, _ = self.request("POST", "tickets?ticket=" + ticket, {"scope": "view"})
        self.assertEqual(code, 401)
        cookie = self.openPage("ticket=" + self.ticket("control"))
        self.assertEqual(self.request("POST", "tickets", {"scope": "view"}, cookie)[0], 401)

    def test_pageOnceWithItsScope(self) -> None:
        ticket = self.ticket("view")
        code, body, response = self.request("GET", "?ticket=" + ticket)
        self.assertEqual(code, 200)
        self.assertIn(b"Take control", body)
        (cookie,) = response.headers.getRawHeaders("set-cookie")
        name, _, attributes = cookie.partition(";")
        self.assertTrue(name.startswith(SESSION_COOKIE + "="))
        self.assertNotIn(ticket, cookie)
        for attribute in ("Path=/api/v0/desktop/", "HttpOnly", "SameSite=strict"):
            self.assertIn(attribute, attributes)
        code, out, _ = self.request("GET", "?ticket=" + ticket)
        self.assertEqual(code, 401)
        self.assertEqual(out["detail"], "The ticket is unknown, expired or already used.")

    def test_notAfterTTL(self) -> None:
        ticket = self.ticket("control", 1)
        self.clock.advance(1)
        self.assertEqual(self.request("GET", "?ticket=" + ticket)[0], 401)

    def test_viewSessionCannotControl(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("view"))
        code, out, _ = self.request("GET", "control", headers=cookie)
        self.assertEqual((code, out["can_control"], out["may_input"]), (200, False, False))
        code, out, _ = self.request("POST", "control", {"take": True}, cookie)
        self.assertEqual(code, 403)
        self.assertFalse(self.state.control.held)
        self.request("POST", "control", {"take": True}, BEARER)
        code, out, _ = self.request("GET", "control", headers=cookie)
        self.assertEqual((out["held"], out["may_input"], out["yours"]), (True, False, False))

    def test_controlSessionControls(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("control"))
        code, out, _ = self.request("POST", "control", {"take": True}, cookie)
        self.assertEqual((code, out["held"], out["may_input"], out["yours"]), (200, True, True, True))
        self.assertTrue(out["holder"].startswith("viewer "))
        other = self.openPage("ticket=" + self.ticket("control"))
        code, out, _ = self.request("GET", "control", headers=other)
        self.assertEqual((out["may_input"], out["yours"]), (True, False))
        code, out, _ = self.request("POST", "control", {"take": False}, other)
        self.assertEqual((code, out["held"]), (200, False))

    def test_sessionOnlyForViewerRoutes(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("control"))
        self.assertEqual(self.request("GET", "", headers=cookie)[0], 200)
        for method, path, body in (("GET", "info", None), ("POST", "action", {"action": "wait"})):
            self.assertEqual(self.request(method, path, body, cookie)[0], 401, path)

    def test_sessionExpires(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("control"))
        self.clock.advance(SESSION_IDLE)
        self.assertEqual(self.request("GET", "control", headers=cookie)[0], 401)

    def test_secretsNeverLogged(self) -> None:
        """Neither tickets, session cookies nor the token appear in any log event."""
        from twisted.logger import formatEvent, globalLogPublisher

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        ticket = self.ticket("control")
        cookie = self.openPage("ticket=" + ticket)
        self.request("POST", "control", {"take": True}, cookie)
        self.request("GET", "?ticket=" + ticket)
        self.request("GET", "info?token=" + TOKEN)
        self.request("GET", "?ticket=" + ticket + "x")
        self.assertGreater(len(events), 5)
        session = cookie["Cookie"][0].split("=", 1)[1]
        for event in events:
            text = formatEvent(event) + repr(event)
            for secret in (ticket, session, TOKEN):
                self.assertNotIn(secret, text)

    def test_ticketOnlyWhereItOpensAViewer(self) -> None:
        ticket = self.ticket("control")
        self.assertEqual(self.request("GET", "info?ticket=" + ticket)[0], 401)
        self.assertEqual(self.request("GET", "control?ticket=" + ticket)[0], 401)
        self.assertEqual(self.request("GET", "?ticket=" + ticket)[0], 200)


class TokenInURL(RouteTestCase):
    def test_refusedByDefault(self) -> None:
        for path in ("info?token=" + TOKEN, "?token=" + TOKEN, "vnc?token=" + TOKEN):
            code, out, response = self.request("GET", path)
            self.assertEqual(code, 401, path)
            self.assertIn("--allow-token-in-url", out["detail"])
            self.assertEqual(response.headers.getRawHeaders("www-authenticate"),
                             ['Bearer realm="agentdesktop"'])

    def test_noTokenCookie(self) -> None:
        """The old token cookie no longer admits anyone."""
        code, _, _ = self.request("GET", "info", headers={"Cookie": [f"agentdesktop_token={TOKEN}"]})
        self.assertEqual(code, 401)


class TokenInURLAllowed(RouteTestCase):
    options = {"allowTokenInURL": True}

    def test_accepted(self) -> None:
        self.assertEqual(self.request("GET", "info?token=" + TOKEN)[0], 200)
        self.assertEqual(self.request("GET", "info?token=wrong")[0], 401)
        cookie = self.openPage("token=" + TOKEN)
        code, out, _ = self.request("POST", "control", {"take": True}, cookie)
        self.assertEqual((code, out["yours"]), (200, True))


class NoToken(RouteTestCase):
    token = None

    def test_pagesGetSessionsAndControl(self) -> None:
        first = self.openPage("")
        second = self.openPage("")
        code, out, _ = self.request("POST", "control", {"take": True}, first)
        self.assertEqual((code, out["yours"]), (200, True))
        code, out, _ = self.request("GET", "control", headers=second)
        self.assertEqual((out["yours"], out["may_input"]), (False, True))

    def test_ticketScopeStillHolds(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("view"))
        self.assertEqual(self.request("POST", "control", {"take": True}, cookie)[0], 403)


class ViewerInputAlways(RouteTestCase):
    options = {"viewerInput": ALWAYS}

    def test_everyViewerMayInput(self) -> None:
        cookie = self.openPage("ticket=" + self.ticket("view"))
        code, out, _ = self.request("GET", "control", headers=cookie)
        self.assertEqual((out["held"], out["may_input"]), (False, True))
