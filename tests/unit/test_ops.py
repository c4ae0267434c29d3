"""
Operations (SPEC section 17): the metrics each component reports, GET
/metrics and GET /healthz, 405 on every route for a method it does not
serve, and the redirects to the viewer.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from agentdesktop.errors import APIError
from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop, FakeRecorder, sample
from agentdesktop.web import ops
from agentdesktop.web.openapi import walk
from agentdesktop.web.resource import Endpoint
from agentdesktop.web.root import makeRoot
from agentdesktop.web.windows import WindowsEndpoint

SITE = "http://localhost"
API = SITE + "/api/v0/desktop/"
RID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


class OpsCase(SynchronousTestCase):
    token: str | None = None
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.desktop = FakeDesktop()
        self.recorder = FakeRecorder()
        self.clock = task.Clock()
        self.state = makeState(self.desktop, self.clock, self.token, self.recorder, **self.options)
        self.metrics = self.state.metrics
        self.root = makeRoot(self.state, self.clock)
        self.treq = StubTreq(self.root)

    def request(self, method: str, url: str, body: Any = None,
                headers: dict[str, list[str]] | None = None) -> tuple[int, Any, Any]:
        data = json.dumps(body).encode() if body is not None else None
        d = self.treq.request(method, url, data=data, headers=headers, allow_redirects=False)
        self.treq.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        if response.headers.getRawHeaders("content-type") == ["application/json"] and content:
            content = json.loads(content)
        return response.code, response.headers, content

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        code, _, content = self.request("POST", API + path, body)
        return code, content

    def value(self, name: str, **labels: str) -> float | None:
        return sample(self.metrics, name, **labels)

    def scrape(self, headers: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """GET /metrics, parsed by prometheus_client's own parser: name → family."""
        code, responseHeaders, body = self.request("GET", SITE + "/metrics", headers=headers)
        self.assertEqual(code, 200, body)
        self.assertTrue(responseHeaders.getRawHeaders("content-type")[0].startswith("text/plain"))
        return {f.name: f for f in text_string_to_metric_families(body.decode())}


class ActionMetrics(OpsCase):
    def test_actionsByNameAndStatus(self) -> None:
        self.assertEqual(self.post("action", {"action": "left_click", "coordinate": [1, 2]})[0], 200)
        self.desktop.failing.add("click")
        self.assertEqual(self.post("action", {"action": "left_click", "coordinate": [1, 2]})[0], 500)
        self.assertEqual(self.post("action", {"action": "cursor_position"})[0], 200)
        # Refused before it is an action: not counted.
        self.assertEqual(self.post("action", {"action": "left_click"})[0], 400)
        self.assertEqual(self.value("agentdesktop_actions_total", action="left_click", status="200"), 1)
        self.assertEqual(self.value("agentdesktop_actions_total", action="left_click", status="500"), 1)
        self.assertEqual(self.value("agentdesktop_actions_total", action="cursor_position",
                                    status="200"), 1)
        self.assertEqual(self.value("agentdesktop_action_duration_seconds_count",
                                    action="left_click"), 2)

    def test_latencyOnTheClock(self) -> None:
        d = self.treq.post(API + "action", data=json.dumps({"action": "wait", "duration": 250}))
        self.treq.flush()
        self.clock.advance(0.25)
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(self.value("agentdesktop_action_duration_seconds_sum", action="wait"), 0.25)
        self.assertEqual(self.value("agentdesktop_action_duration_seconds_bucket", action="wait",
                                    le="0.1"), 0)
        self.assertEqual(self.value("agentdesktop_action_duration_seconds_bucket", action="wait",
                                    le="0.25"), 1)

    def test_refusedWhileControlled(self) -> None:
        self.state.control.take("alice")
        self.assertEqual(self.post("action", {"action": "key", "text": "a"})[0], 409)
        # Screenshots still work while a person holds control.
        self.assertEqual(self.post("action", {"action": "screenshot"})[0], 200)
        self.assertEqual(self.value("agentdesktop_actions_total", action="key", status="409"), 1)
        self.assertIsNone(self.value("agentdesktop_action_duration_seconds_count", action="key"))
        self.assertEqual(self.value("agentdesktop_actions_total", action="screenshot",
                                    status="200"), 1)

    def test_batchAndObservation(self) -> None:
        """
        A batch counts its size and each item; its observation counts as a
        settle wait and a screenshot, not as an action.
        """
        code, out = self.post("batch", {
            "actions": [{"action": "left_click", "coordinate": [5, 5]},
                        {"action": "type", "text": "hi"},
                        {"action": "screenshot", "format": "jpeg"}],
            "observe": {"settle_ms": 150}})
        self.assertEqual(code, 200, out)
        self.assertEqual(self.value("agentdesktop_batch_actions_count"), 1)
        self.assertEqual(self.value("agentdesktop_batch_actions_sum"), 3)
        for action in ("left_click", "type", "screenshot"):
            self.assertEqual(self.value("agentdesktop_actions_total", action=action, status="200"), 1)
        self.assertEqual(self.value("agentdesktop_settle_wait_seconds_count", outcome="settled"), 1)
        self.assertEqual(self.value("agentdesktop_settle_wait_seconds_sum", outcome="settled"), 0.15)
        self.assertEqual(self.value("agentdesktop_screenshot_bytes_count", format="png"), 1)
        self.assertEqual(self.value("agentdesktop_screenshot_bytes_count", format="jpeg"), 1)
        picture = len(b"png:1920x1080:None")
        self.assertEqual(self.value("agentdesktop_screenshot_bytes_sum", format="png"), picture)
        self.assertEqual(self.value("agentdesktop_screenshot_duration_seconds_count",
                                    format="png"), 1)

    def test_settleTimedOut(self) -> None:
        self.desktop.busy = True
        self.post("batch", {"actions": [{"action": "cursor_position"}],
                            "observe": {"screenshot": False, "timeout_ms": 300}})
        self.assertEqual(self.value("agentdesktop_settle_wait_seconds_count", outcome="timed_out"), 1)
        self.assertEqual(self.value("agentdesktop_settle_wait_seconds_sum", outcome="timed_out"), 0.3)
        self.assertIsNone(self.value("agentdesktop_screenshot_bytes_count", format="png"))

    def test_batchStopsAtFailure(self) -> None:
        self.desktop.failing.add("keys")
        self.post("batch", {"actions": [{"action": "key", "text": "a"},
                                        {"action": "key", "text": "b"}]})
        self.assertEqual(self.value("agentdesktop_batch_actions_sum"), 2)
        self.assertEqual(self.value("agentdesktop_actions_total", action="key", status="500"), 1)
        self.assertIsNone(self.value("agentdesktop_actions_total", action="key", status="200"))


class StateMetrics(OpsCase):
    def test_recordingsActive(self) -> None:
        self.assertEqual(self.value("agentdesktop_recordings_active"), 0)
        self.assertEqual(self.post("recording/start", {"recording_id": RID})[0], 200)
        self.assertEqual(self.value("agentdesktop_recordings_active"), 1)
        self.recorder.results[RID] = APIError(500, "Recording is corrupted.")
        self.post("recording/stop", {"recording_id": RID})
        self.assertEqual(self.value("agentdesktop_recordings_active"), 0)

    def test_controlLease(self) -> None:
        """The held gauge follows the lease; each change of hands is counted by who got it."""
        self.assertEqual(self.value("agentdesktop_control_held"), 0)
        self.assertEqual(self.post("control", {"take": True})[0], 200)
        self.assertEqual(self.value("agentdesktop_control_held"), 1)
        self.assertEqual(self.post("control", {"take": True})[0], 200)  # already theirs
        self.assertEqual(self.post("control", {"take": False})[0], 200)
        self.state.control.take("bob")
        self.clock.advance(self.state.control.idleTimeout)
        self.assertEqual(self.value("agentdesktop_control_held"), 0)
        self.assertEqual(self.value("agentdesktop_control_handovers_total", to="person"), 2)
        self.assertEqual(self.value("agentdesktop_control_handovers_total", to="agent"), 2)

    def test_desktopRestarts(self) -> None:
        self.assertEqual(self.value("agentdesktop_desktop_restarts_total", part="desktop"), 0)
        self.post("action", {"action": "cursor_position"})
        self.desktop.crash()
        self.post("action", {"action": "cursor_position"})
        self.assertEqual(self.value("agentdesktop_desktop_restarts_total", part="desktop"), 1)
        self.assertEqual(self.value("agentdesktop_desktop_restarts_total",
                                    part="window_manager"), 0)

    def test_registryPerService(self) -> None:
        """Two services in one process count apart (no global registry)."""
        other = makeState(FakeDesktop(), self.clock)
        self.post("action", {"action": "cursor_position"})
        self.assertEqual(self.value("agentdesktop_actions_total", action="cursor_position",
                                    status="200"), 1)
        self.assertIsNone(sample(other.metrics, "agentdesktop_actions_total",
                                 action="cursor_position", status="200"))


class MetricsRoute(OpsCase):
    def test_scrape(self) -> None:
        self.post("action", {"action": "left_click", "coordinate": [1, 2]})
        families = self.scrape()
        [click] = [s for s in families["agentdesktop_actions"].samples
                   if s.name == "agentdesktop_actions_total" and s.labels["action"] == "left_click"]
        self.assertEqual((click.labels["status"], click.value), ("200", 1))
        for name in ("agentdesktop_action_duration_seconds", "agentdesktop_batch_actions",
                     "agentdesktop_screenshot_bytes", "agentdesktop_screenshot_duration_seconds",
                     "agentdesktop_settle_wait_seconds", "agentdesktop_recordings_active",
                     "agentdesktop_vnc_connections", "agentdesktop_vnc_relayed_bytes",
                     "agentdesktop_desktop_restarts", "agentdesktop_control_held",
                     "agentdesktop_control_handovers", "agentdesktop_process_cpu_seconds"):
            self.assertIn(name, families)

    def test_openMetricsWhenAsked(self) -> None:
        code, headers, body = self.request(
            "GET", SITE + "/metrics", headers={"Accept": ["application/openmetrics-text"]})
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders("content-type")[0].startswith(
            "application/openmetrics-text"))
        self.assertTrue(body.endswith(b"# EOF\n"))


class MetricsNeedTheToken(OpsCase):
    token = "s3cret"

    def test_tokenNeeded(self) -> None:
        code, headers, _ = self.request("GET", SITE + "/metrics")
        self.assertEqual(code, 401)
        self.assertEqual(headers.getRawHeaders("www-authenticate"), ['Bearer realm="agentdesktop"'])
        self.scrape({"Authorization": ["Bearer s3cret"]})

    def test_healthzIsPublic(self) -> None:
        self.assertEqual(self.request("GET", SITE + "/healthz")[0], 200)


class MetricsWithoutAuth(OpsCase):
    token = "s3cret"
    options = {"metricsWithoutAuth": True}

    def test_open(self) -> None:
        self.scrape()
        # Only /metrics: the API still wants the token.
        self.assertEqual(self.request("GET", API + "info")[0], 401)


class Health(OpsCase):
    def test_startsTheDesktop(self) -> None:
        self.assertFalse(self.desktop.running)
        code, _, body = self.request("GET", SITE + "/healthz")
        self.assertEqual(code, 200)
        self.assertTrue(self.desktop.running)
        self.assertEqual(body["status"], "ok")
        self.assertEqual((body["display"], body["width"], body["height"]), (":99", 1920, 1080))

    def test_cannotStart(self) -> None:
        self.desktop.failing.add("start")
        code, headers, body = self.request("GET", SITE + "/healthz")
        self.assertEqual(code, 503)
        self.assertEqual(body, {"status": "unavailable", "message": ops.UNAVAILABLE,
                                "detail": "Xvnc exited before its display was ready"})

    def test_startTakesTooLong(self) -> None:
        starting: defer.Deferred[Any] = defer.Deferred()
        self.desktop.start = lambda: starting  # type: ignore[method-assign]
        d = self.treq.get(SITE + "/healthz")
        self.treq.flush()
        self.assertNoResult(d)
        self.clock.advance(ops.HEALTH_TIMEOUT)
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 503)
        body = json.loads(self.successResultOf(response.content()))
        self.assertIn("did not finish starting", body["detail"])

    def test_shuttingDown(self) -> None:
        self.state.shuttingDown = True
        code, _, body = self.request("GET", SITE + "/healthz")
        self.assertEqual(code, 503)
        self.assertEqual(body["message"], "Desktop API is shutting down.")


ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
               "PROPFIND", "BREW")


def concrete(path: str) -> str:
    """PATH with a sample value for each path parameter."""
    return (path.replace("{window_id}", "4194316").replace("{node_id}", "1.7-3")
            .replace("{file}", "core/rfb.js"))


class EveryRouteAnswers405(OpsCase):
    token = "s3cret"

    def test_walk(self) -> None:
        """
        Every route in the real tree answers each method it does not serve
        with 405, an Allow header naming the ones it does, and the JSON
        envelope (without credentials: the method is checked first), and
        answers the ones it serves with something else.
        """
        self.state.shuttingDown = True  # nothing runs; every served method gets 503 or 401
        seen = 0
        for route in walk(self.root):
            served = set(route.endpoint.methods())
            url = SITE + concrete(route.path)
            for method in ALL_METHODS:
                code, headers, body = self.request(method, url)
                if method in served:
                    self.assertNotEqual(code, 405, (method, route.path))
                    continue
                self.assertEqual(code, 405, (method, route.path))
                self.assertEqual(headers.getRawHeaders("allow"), [", ".join(sorted(served))])
                if method != "HEAD":
                    self.assertEqual(body["message"], "Method not allowed.")
                seen += 1
        self.assertGreater(seen, 200)

    def test_unknownPaths(self) -> None:
        for path in ("/nothing", "/api", "/api/v0", "/api/v0/desktop/nothing", "/api/v0/desktop/dialects",
                     "/api/v0/desktop/recording", "/api/v0/desktop/windows/xyz/focus"):
            for method in ("GET", "TRACE", "DELETE"):
                code, _, body = self.request(method, SITE + path,
                                             headers={"Authorization": ["Bearer s3cret"]})
                self.assertEqual(code, 404, (method, path))
                self.assertEqual(body["message"], "Not found.")

    def test_everyRouteIsAnEndpoint(self) -> None:
        """Every route is an Endpoint, so the skeleton answers (and logs) every request."""
        routes = list(walk(self.root))
        self.assertTrue(all(isinstance(r.endpoint, Endpoint) for r in routes))
        self.assertIn("/api/v0/desktop/windows/{window_id}/close", [r.path for r in routes])
        self.assertIsInstance(self.root.children[b"api"].children[b"v0"].children[b"desktop"]
                              .children[b"windows"], WindowsEndpoint)


class Redirects(OpsCase):
    def test_siteRoot(self) -> None:
        for query in ("", "?ticket=abc&x=1"):
            code, headers, _ = self.request("GET", SITE + "/" + query)
            self.assertEqual(code, 302)
            self.assertEqual(headers.getRawHeaders("location"), ["/api/v0/desktop/" + query])

    def test_prefixWithoutSlash(self) -> None:
        code, headers, _ = self.request("GET", SITE + "/api/v0/desktop?ticket=t")
        self.assertEqual(code, 302)
        self.assertEqual(headers.getRawHeaders("location"), ["/api/v0/desktop/?ticket=t"])
        code, headers, _ = self.request("POST", SITE + "/api/v0/desktop")
        self.assertEqual(code, 405)
        self.assertEqual(headers.getRawHeaders("allow"), ["GET, HEAD"])

    def test_ticketNotSpentByTheRedirect(self) -> None:
        ticket = self.state.tickets.issue("control").secret
        self.request("GET", SITE + "/?ticket=" + ticket)
        self.assertEqual(self.request("GET", API + "?ticket=" + ticket)[0], 200)


class OneLogLinePerRequest(OpsCase):
    def test_everyKindOfRoute(self) -> None:
        from twisted.logger import globalLogPublisher

        lines: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(lines.append)
        self.addCleanup(globalLogPublisher.removeObserver, lines.append)
        for method, path in [("GET", "/"), ("GET", "/api/v0/desktop"), ("TRACE", "/metrics"),
                             ("GET", "/healthz"), ("GET", "/nothing"),
                             ("DELETE", "/api/v0/desktop/novnc/core/rfb.js"),
                             ("GET", "/api/v0/desktop/openapi.json")]:
            del lines[:]
            code = self.request(method, SITE + path)[0]
            requests = [e for e in lines if e.get("log_format", "").startswith("{method} {path}")]
            self.assertEqual(len(requests), 1, (method, path))
            self.assertEqual((requests[0]["method"], requests[0]["path"], requests[0]["status"]),
                             (method, path, code))

