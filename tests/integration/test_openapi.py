"""
The live service against its own OpenAPI document, with schemathesis
(its Python API: each operation's hypothesis strategy, each case sent with
C{call_and_validate}): no 5xx, every status and body as documented.  The
service runs on the test's reactor, so schemathesis (which blocks, on
C{requests}) runs in a thread.

What is limited, and why:

  - C{GET /vnc} is sent as plain HTTP (the document's 426 is checked);
    the WebSocket upgrade itself (101) cannot be made by an HTTP client
    and is tested in test_vnc.py.
  - C{POST /launch} runs C{true} whatever command is generated: generated
    argv would run arbitrary programs with arbitrary arguments on the
    machine.  Its other fields stay generated (the wait for a window is
    capped, below).
  - C{POST /open} gets a target that does not exist: a URL or an existing
    path would start the desktop's default application (Chromium) for
    every example.  test_beyond.py opens real targets.
  - C{POST /recording/start|stop} use one recording id: each start runs
    an encoder, and more than --max-recordings active is a documented 500.
  - Durations are capped at 100 ms (C{duration}, C{timeout_ms},
    C{settle_ms}) to keep the run near a minute; their ranges are tested
    in the unit tests.
  - The lease is handed back after a second without input
    (C{controlIdleTimeout}), so that a generated C{{"take": true}} does not
    turn every later action into a 409 for the rest of the run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twisted.internet import reactor, threads

from agentdesktop.recording import Recorder, RecorderConfig
from tests.integration.harness import DesktopTestCase

TOKEN = "s3cret-token"

#: Examples per operation and mode; deterministic (derandomize).
EXAMPLES = 20

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, ignored_auth]

#: Negative examples (data the document forbids) must not crash the service
#: or answer undocumented statuses; whether each is refused is not checked
#: (negative_data_rejection): the service accepts more than the document
#: promises where the spec says so (unknown fields, any case for formats,
#: 0 or negative declared sizes meaning native).
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance]

RECORDING = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
CAPPED = {"duration": 100, "timeout_ms": 100, "settle_ms": 100}


#: The vendors' durations are seconds (Anthropic's duration, Gemini's seconds):
#: on their routes, and MCP's, every duration is 0.
CAPPED_IN_SECONDS = {"duration": 0, "seconds": 0, "timeout_ms": 100, "settle_ms": 100}


def cap(value: Any, limits: dict[str, int] = CAPPED) -> Any:
    """VALUE with every duration in it (nested, e.g. batch items) at most LIMITS."""
    if isinstance(value, dict):
        return {k: (min(v, limits[k]) if k in limits and isinstance(v, int | float)
                    and not isinstance(v, bool) else cap(v, limits)) for k, v in value.items()}
    if isinstance(value, list):
        return [cap(v, limits) for v in value]
    return value


def limit(case: Any) -> Any:
    """The limits in the module docstring, applied to a generated case."""
    body = case.body
    if not isinstance(body, dict | list):
        return case
    path = case.operation.path
    body = cap(body, CAPPED_IN_SECONDS if "/dialects/" in path or path.endswith("/mcp") else CAPPED)
    if not isinstance(body, dict):
        pass
    elif path.endswith("/launch") and case.method.upper() == "POST":
        body["command"] = ["true"]
    elif path.endswith("/open"):
        body["target"] = "/nonexistent/agentdesktop-schemathesis-target"
    elif "/recording/" in path:
        body["recording_id"] = RECORDING
    case.body = body
    return case


def runOperation(
    operation: Any, mode: GenerationMode, origin: str, session: Any, statuses: dict[str, list[int]]
) -> str | None:
    """
    EXAMPLES cases of OPERATION in MODE (the statuses answered go to
    STATUSES); the failure report, or C{None}.
    """
    checks = CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
    try:
        strategy = operation.as_strategy(generation_mode=mode).map(limit)
    except Exception as e:  # no data to negate, e.g. an operation without parameters
        return None if mode == GenerationMode.NEGATIVE else f"{operation.label}: {e}"

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def send(case: Any) -> None:
        response = case.call_and_validate(
            base_url=origin, session=session, headers={"Authorization": f"Bearer {TOKEN}"},
            checks=checks, allow_redirects=False, timeout=60,
        )
        statuses.setdefault(f"{mode.name[:3]} {operation.label}", []).append(response.status_code)

    try:
        send()
    except Unsatisfiable:
        # Nothing to make invalid: no parameters, no body, or strings of any form.
        if mode == GenerationMode.POSITIVE:
            return f"{mode.name} {operation.label}: no example could be made"
    except (Exception, BaseExceptionGroup) as e:  # schemathesis reports in a group
        return f"{mode.name} {operation.label}:\n{e}"
    return None


def runSchemathesis(
    document: dict[str, Any], origin: str
) -> tuple[list[str], dict[str, list[int]], list[str]]:
    """
    Every operation of DOCUMENT against ORIGIN: the failures, the statuses
    answered by mode and operation, and the operations run.
    """
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    statuses: dict[str, list[int]] = {}
    ran = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            ran.append(operation.label)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = runOperation(operation, mode, origin, session, statuses)
                if failure is not None:
                    failures.append(failure)
    return failures, statuses, ran


class Conformance(DesktopTestCase):
    geometry = (640, 480)
    timeout = 600

    async def test_schemathesis(self) -> None:
        await self.startDesktop(token=TOKEN, sharing={"controlIdleTimeout": 1.0})
        runtime = os.path.abspath(self.mktemp())
        os.makedirs(runtime)
        self.state.recorder = Recorder(reactor, reactor, self.desktop, RecorderConfig(
            runtimeDir=runtime, fps=2, stopGrace=5))
        self.addCleanup(self.state.recorder.close)
        code, _, body = await self.fetch("GET", self.base + "openapi.json")
        self.assertEqual(code, 200)
        document = json.loads(body)
        started = time.monotonic()
        failures, statuses, ran = await threads.deferToThread(
            runSchemathesis, document, self.origin)
        took = time.monotonic() - started
        self.assertEqual(len(ran), sum(len([m for m in item if m != "parameters"])
                                       for item in document["paths"].values()))
        self.assertEqual(failures, [], "\n\n".join(failures))
        # The service still works, and lets go of what generated actions pressed.
        await self.ok(action="reset_input")
        self.assertNothingPressed()
        self.assertEqual((await self.fetch("GET", self.origin + "/healthz"))[0], 200)
        print(f"schemathesis: {len(ran)} operations, {EXAMPLES} examples each way, {took:.1f} s")
        for label, codes in sorted(statuses.items()):
            print(f"  {label}: {' '.join(map(str, sorted(codes)))}")
