"""
The OpenAPI document (GET /api/v0/desktop/openapi.json): generated from
the real resource tree, valid OpenAPI 3.1 (openapi-spec-validator), every
route declared, and the service's answers (with the fakes) valid against
the schemas it declares.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from treq.testing import StubTreq
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import resource, static

from agentdesktop.actions import names
from agentdesktop.interfaces import AccessibleNode, WindowInfo
from agentdesktop.service import makeState
from agentdesktop.testing import FakeDesktop, FakeRecorder
from agentdesktop.web.api import NEEDS
from agentdesktop.web.apischema import Operation, Response
from agentdesktop.web.openapi import UndocumentedRoute, document, walk
from agentdesktop.web.resource import Call, Endpoint
from agentdesktop.web.root import makeRoot

SITE = "http://localhost"
API = "/api/v0/desktop/"

#: Every route this branch serves: a route added to the tree shows up here
#: only with its declaration (the document refuses undeclared ones).
ROUTES = {
    "/": ["get"],
    "/metrics": ["get"],
    "/healthz": ["get"],
    "/api/v0/desktop": ["get"],
    "/api/v0/desktop/": ["get"],
    "/api/v0/desktop/action": ["post"],
    "/api/v0/desktop/batch": ["post"],
    "/api/v0/desktop/info": ["get"],
    "/api/v0/desktop/control": ["get", "post"],
    "/api/v0/desktop/tickets": ["post"],
    "/api/v0/desktop/recording/start": ["post"],
    "/api/v0/desktop/recording/stop": ["post"],
    "/api/v0/desktop/clipboard": ["get", "post"],
    "/api/v0/desktop/windows": ["get"],
    "/api/v0/desktop/windows/{window_id}": ["get"],
    **{f"/api/v0/desktop/windows/{{window_id}}/{verb}": ["post"]
       for verb in ("focus", "close", "minimize", "maximize", "restore")},
    "/api/v0/desktop/launch": ["get", "post"],
    "/api/v0/desktop/open": ["post"],
    "/api/v0/desktop/accessibility": ["get"],
    "/api/v0/desktop/accessibility/{node_id}": ["get", "post"],
    "/api/v0/desktop/vnc": ["get"],
    "/api/v0/desktop/novnc/{file}": ["get"],
    "/api/v0/desktop/openapi.json": ["get"],
    "/api/v0/desktop/dialects/anthropic": ["post"],
    "/api/v0/desktop/dialects/anthropic/tool": ["get"],
    "/api/v0/desktop/dialects/openai": ["post"],
    "/api/v0/desktop/dialects/gemini": ["post"],
    "/api/v0/desktop/mcp": ["post"],
}

WINDOW = WindowInfo(0x400007, "Terminal", "XTerm", 4242, 10, 20, 640, 480, True, False, False)
BUTTON = AccessibleNode("1.7-3", "push button", "Save", ("focusable",), (20, 30, 80, 24), ("click",))
FRAME = AccessibleNode("1.7-1", "frame", "Editor", (), (0, 0, 640, 480), (), (BUTTON,))


class Undeclared(Endpoint):
    async def handle_GET(self, call: Call) -> Any:
        return {}


class Declared(Endpoint):
    api = {"GET": Operation("declared", "Declared", responses={200: Response("ok")})}

    async def handle_GET(self, call: Call) -> Any:
        return {}


class HalfDeclared(Endpoint):
    api = {"GET": Operation("half", "Half", responses={200: Response("ok")})}

    async def handle_GET(self, call: Call) -> Any:
        return {}

    async def handle_DELETE(self, call: Call) -> Any:
        return {}


class DocumentCase(SynchronousTestCase):
    token: str | None = "s3cret"
    options: dict[str, Any] = {}

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.desktop = FakeDesktop()
        self.state = makeState(self.desktop, self.clock, self.token, FakeRecorder(), **self.options)
        self.root = makeRoot(self.state, self.clock)
        self.treq = StubTreq(self.root)
        self.doc = document(self.root, self.state)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        headers = {"Authorization": [f"Bearer {self.token}"]} if self.token else {}
        data = json.dumps(body).encode() if body is not None else None
        d = self.treq.request(method, SITE + path, data=data, headers=headers,
                              allow_redirects=False)
        self.treq.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        return response.code, response.headers, content


class Document(DocumentCase):
    def test_valid(self) -> None:
        validate(self.doc)
        self.assertEqual(self.doc["openapi"], "3.1.0")

    def test_everyRoute(self) -> None:
        paths = {path: sorted(k for k in item if k != "parameters")
                 for path, item in self.doc["paths"].items()}
        self.assertEqual(paths, {path: sorted(methods) for path, methods in ROUTES.items()})

    def test_served(self) -> None:
        """The route serves it, public, JSON, the same document."""
        code, headers, body = self.request("GET", API + "openapi.json")
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body), json.loads(json.dumps(self.doc)))
        self.token = None
        self.assertEqual(self.request("GET", API + "openapi.json")[0], 200)

    def test_security(self) -> None:
        ops = self.doc["paths"]
        self.assertEqual(ops["/api/v0/desktop/action"]["post"]["security"], [{"bearer": []}])
        self.assertIn("401", ops["/api/v0/desktop/action"]["post"]["responses"])
        self.assertEqual(ops["/healthz"]["get"]["security"], [])
        self.assertNotIn("401", ops["/healthz"]["get"]["responses"])
        self.assertEqual(ops["/metrics"]["get"]["security"], [{"bearer": []}])
        self.assertEqual(ops["/api/v0/desktop/vnc"]["get"]["security"],
                         [{"bearer": []}, {"session": []}, {"ticket": []}])

    def test_sharedAnswers(self) -> None:
        """Bodies may be wrong (400) or too large (413); everything may answer 503."""
        action = self.doc["paths"]["/api/v0/desktop/action"]["post"]
        self.assertLessEqual({"200", "400", "401", "409", "413", "500", "503"},
                             set(action["responses"]))
        error = action["responses"]["400"]["content"]["application/json"]["schema"]
        self.assertEqual(error, {"$ref": "#/components/schemas/Error"})
        self.assertIn("101", self.doc["paths"]["/api/v0/desktop/vnc"]["get"]["responses"])

    def test_uniqueOperationIds(self) -> None:
        ids = [op["operationId"] for item in self.doc["paths"].values()
               for key, op in item.items() if key != "parameters"]
        self.assertEqual(len(ids), len(set(ids)))


class DocumentWithoutToken(DocumentCase):
    token = None

    def test_valid(self) -> None:
        validate(self.doc)
        action = self.doc["paths"]["/api/v0/desktop/action"]["post"]
        self.assertNotIn("security", action)
        self.assertNotIn("401", action["responses"])
        # A bad ticket is refused whether or not a token is set.
        self.assertIn("401", self.doc["paths"]["/api/v0/desktop/"]["get"]["responses"])


class DocumentMetricsWithoutAuth(DocumentCase):
    options = {"metricsWithoutAuth": True}

    def test_metricsOpen(self) -> None:
        validate(self.doc)
        self.assertEqual(self.doc["paths"]["/metrics"]["get"]["security"], [])


class ForgottenDeclarations(DocumentCase):
    def tree(self) -> resource.Resource:
        return self.root.children[b"api"].children[b"v0"].children[b"desktop"]

    def test_undeclaredRoute(self) -> None:
        self.tree().putChild(b"forgotten", Undeclared(self.state))
        e = self.assertRaises(UndocumentedRoute, document, self.root, self.state)
        self.assertIn("/api/v0/desktop/forgotten", str(e))

    def test_undeclaredMethod(self) -> None:
        self.tree().putChild(b"half", HalfDeclared(self.state))
        e = self.assertRaises(UndocumentedRoute, document, self.root, self.state)
        self.assertIn("DELETE", str(e))

    def test_notAnEndpoint(self) -> None:
        self.tree().putChild(b"files", static.Data(b"x", "text/plain"))
        e = self.assertRaises(UndocumentedRoute, list, walk(self.root))
        self.assertIn("/api/v0/desktop/files", str(e))

    def test_routeBelowAnEndpoint(self) -> None:
        """A vendor route with a child route (like /dialects/anthropic/tool)."""
        parent = Declared(self.state)
        parent.isLeaf = False
        self.tree().children[b"dialects"].putChild(b"vendor", parent)
        self.assertIn("/api/v0/desktop/dialects/vendor", document(self.root, self.state)["paths"])
        parent.putChild(b"tool", Undeclared(self.state))
        e = self.assertRaises(UndocumentedRoute, document, self.root, self.state)
        self.assertIn("/api/v0/desktop/dialects/vendor/tool", str(e))

    def test_routeInANewTree(self) -> None:
        dialects = self.tree().children[b"dialects"]
        dialects.putChild(b"newvendor", Undeclared(self.state))
        e = self.assertRaises(UndocumentedRoute, document, self.root, self.state)
        self.assertIn("/api/v0/desktop/dialects/newvendor", str(e))


class AnswersMatchTheDocument(DocumentCase):
    """What the service answers (with the fakes) is what the document says."""

    def check(self, method: str, path: str, route: str, body: Any = None,
              status: int = 200) -> Any:
        code, headers, content = self.request(method, path, body)
        self.assertEqual(code, status, content)
        op = self.doc["paths"][route][method.lower()]
        self.assertIn(str(code), op["responses"], (method, route))
        media = op["responses"][str(code)].get("content", {})
        if "application/json" not in media:
            return content
        self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"])
        schema = dict(media["application/json"]["schema"], components=self.doc["components"])
        value = json.loads(content)
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        self.assertEqual(errors, [], (method, path, value))
        return value

    def test_actionsAndBatches(self) -> None:
        a = API + "action"
        for body in [{"action": "left_click", "coordinate": [1, 2]},
                     {"action": "screenshot", "format": "jpeg", "scaled_width": 640},
                     {"action": "cursor_position"}]:
            self.check("POST", a, a, body)
        self.check("POST", a, a, {"action": "bogus"}, 400)
        self.desktop.failing.add("click")
        self.check("POST", a, a, {"action": "left_click", "coordinate": [1, 2]}, 500)
        b = API + "batch"
        out = self.check("POST", b, b, {"actions": [{"action": "cursor_position"},
                                                    {"action": "left_click", "coordinate": [1, 1]}],
                                        "observe": {"format": "webp"}})
        self.assertEqual(out["failed_index"], 1)
        self.desktop.failing.add("screenshot")
        self.check("POST", b, b, {"actions": [{"action": "cursor_position"}], "observe": {}})
        self.state.control.take("alice")
        self.check("POST", a, a, {"action": "key", "text": "a"}, 409)
        self.check("POST", b, b, {"actions": [{"action": "key", "text": "a"}]}, 409)

    def test_desktopRoutes(self) -> None:
        self.desktop.windowList = [WINDOW]
        self.desktop.accessibleWindows = {WINDOW.id: FRAME}
        self.desktop.clipboard["clipboard"] = "héllo"
        w = API + "windows"
        for method, path, route, body in [
            ("GET", API + "info", API + "info", None),
            ("GET", API + "control", API + "control", None),
            ("POST", API + "control", API + "control", {"take": True, "holder": "alice"}),
            ("POST", API + "control", API + "control", {"take": False}),
            ("POST", API + "tickets", API + "tickets", {"scope": "view", "ttl_s": 2.5}),
            ("GET", API + "clipboard?selection=PRIMARY", API + "clipboard", None),
            ("GET", API + "clipboard", API + "clipboard", None),
            ("POST", API + "clipboard", API + "clipboard", {"text": "x", "selection": "primary"}),
            ("GET", w + "?scaled_width=1280", w, None),
            ("GET", w + f"/{WINDOW.id}", w + "/{window_id}", None),
            ("POST", w + f"/{hex(WINDOW.id)}/maximize", w + "/{window_id}/maximize", None),
            ("POST", w + f"/{WINDOW.id}/close", w + "/{window_id}/close", None),
            ("POST", API + "launch", API + "launch", {"command": ["xterm"], "wait_for_window": True}),
            ("GET", API + "launch", API + "launch", None),
            ("POST", API + "open", API + "open", {"target": "https://example.org/"}),
            ("GET", API + f"accessibility?window={WINDOW.id}", API + "accessibility", None),
            ("GET", API + "accessibility", API + "accessibility", None),
            ("GET", API + "accessibility/1.7-1?max_depth=0", API + "accessibility/{node_id}", None),
            ("POST", API + "accessibility/1.7-3", API + "accessibility/{node_id}", {"action": "click"}),
            ("POST", API + "recording/start", API + "recording/start",
             {"recording_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
            ("GET", "/healthz", "/healthz", None),
            ("GET", "/metrics", "/metrics", None),
        ]:
            self.check(method, path, route, body)

    def test_errors(self) -> None:
        w = API + "windows"
        for method, path, route, body, status in [
            ("GET", w + "/123", w + "/{window_id}", None, 404),
            ("POST", w + "/123/focus", w + "/{window_id}/focus", None, 404),
            ("GET", API + "accessibility/nope", API + "accessibility/{node_id}", None, 404),
            ("POST", API + "recording/stop", API + "recording/stop",
             {"recording_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}, 404),
            ("GET", API + "vnc", API + "vnc", None, 500),
            ("GET", API + "?ticket=spent", API, None, 401),
            ("GET", API + "novnc/nothing.js", API + "novnc/{file}", None, 404),
            ("POST", API + "tickets", API + "tickets", {"scope": "admin"}, 400),
            ("POST", API + "launch", API + "launch", {"command": "xterm"}, 400),
        ]:
            self.check(method, path, route, body, status)
        self.desktop.failing.add("start")
        self.check("GET", "/healthz", "/healthz", None, 503)
        self.check("GET", API + "info", API + "info", None, 500)

    def test_redirects(self) -> None:
        self.check("GET", "/", "/", None, 302)
        self.check("GET", "/api/v0/desktop", "/api/v0/desktop", None, 302)


SAMPLES = {"text": "a", "coordinate": [1, 1], "start_coordinate": [0, 0], "path": [[0, 0], [2, 2]],
           "region": [0, 0, 10, 10]}


class ActionSchemas(DocumentCase):
    """ActionRequest's per-action schemas say what each action of the table needs."""

    token = None

    def validator(self) -> Draft202012Validator:
        schema = {"$ref": "#/components/schemas/ActionRequest", "components": self.doc["components"]}
        return Draft202012Validator(schema)

    def test_needsAreRight(self) -> None:
        validator = self.validator()
        for name in names():
            needs = NEEDS.get(name, [[]])
            for needed in needs:
                body = {"action": name, **{f: SAMPLES[f] for f in needed}}
                self.assertEqual([e.message for e in validator.iter_errors(body)], [], body)
                d = self.treq.post(SITE + API + "action", data=json.dumps(body).encode())
                self.treq.flush()
                self.clock.advance(1)
                self.treq.flush()
                self.assertEqual(self.successResultOf(d).code, 200, body)
                if needed:
                    bare = {"action": name}
                    self.assertFalse(validator.is_valid(bare), bare)
                    self.assertEqual(self.request("POST", API + "action", bare)[0], 400, bare)

    def test_dragOneWayOrTheOther(self) -> None:
        both = {"action": "left_click_drag", **SAMPLES}
        self.assertFalse(self.validator().is_valid(both))
        self.assertEqual(self.request("POST", API + "action", both)[0], 400)
