"""
The core routes: C{/action} and C{/info}.
"""

from __future__ import annotations

from typing import Any

from agentdesktop import __version__, geometry
from agentdesktop.actions import Space, names, prepare
from agentdesktop.actions.batch import MAX_ITEMS, MAX_SETTLE_MS, MAX_TIMEOUT_MS, observe, prepareBatch
from agentdesktop.actions.table import fieldsOf, ignoredFields
from agentdesktop.request import MAX_PATH_POINTS, decodeAction, decodeObject
from agentdesktop.web.apischema import (
    CONTROLLED,
    IGNORED,
    IMAGE_FIELDS,
    START_FAILED,
    Operation,
    Response,
    Schema,
    boolean,
    component,
    integer,
    nullable,
    obj,
    pair,
    string,
)
from agentdesktop.web.resource import Call, Endpoint, ensureDesktop

FORMAT = string("Image format, in any case (jpg means jpeg).", enum=["png", "jpeg", "jpg", "webp"])
QUALITY = integer("JPEG and WebP quality (default 80).", minimum=1, maximum=100)
DECLARED = integer("The declared (model) space on this axis; 0 or less: the native size.",
                   maximum=65535)

#: Each request field's schema (an action reads the ones the action table
#: lists for it).
FIELDS: dict[str, Schema] = {
    "coordinate": pair("[x, y] in declared space."),
    "start_coordinate": pair("Where the drag starts."),
    "text": string("Modifier keys held during the action, e.g. shift or ctrl+alt.",
                   examples=["shift"]),
    "key": string("Modifier keys held during the action when text is empty."),
    "repeat": integer("Press the whole sequence this many times.", minimum=1, maximum=100),
    "path": {"type": "array", "items": pair("[x, y]"), "minItems": 2, "maxItems": MAX_PATH_POINTS,
             "description": "The points to drag through."},
    "duration": integer("Milliseconds.", minimum=0, maximum=60000),
    "scroll_direction": string("Default down.", enum=["up", "down", "left", "right"]),
    "scroll_amount": integer("Wheel clicks (default 3).", minimum=0, maximum=1000),
    "scaled_width": DECLARED,
    "scaled_height": DECLARED,
    "region": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4,
               "description": "[x0, y0, x1, y1] in declared space, right and bottom exclusive."},
    "format": FORMAT,
    "quality": QUALITY,
}

KEYS = string("Key combinations: X keysyms or common names joined with +, several separated "
              "by spaces.", examples=["ctrl+shift+t", "Return", "alt+F4"])

#: What some actions read differently from L{FIELDS}.
OWN_FIELDS: dict[str, dict[str, Schema]] = {
    **{name: {"text": KEYS} for name in ("key", "key_down", "key_up", "hold_key")},
    "type": {"text": string("The text, exactly (Unicode included); newline and tab press "
                            "Return and Tab, other control characters are refused.",
                            pattern="^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$",
                            examples=["héllo wörld 🙂"])},
}

#: The fields each action needs (several lists: either set); a unit test
#: checks every other action runs without any.
NEEDS: dict[str, list[list[str]]] = {
    **{name: [["text"]] for name in ("key", "key_down", "key_up", "hold_key", "type")},
    **{name: [["coordinate"]] for name in (
        "mouse_move", "left_click", "right_click", "middle_click", "double_click",
        "triple_click", "back_click", "forward_click", "scroll")},
    "left_click_drag": [["start_coordinate", "coordinate"], ["path"]],
    "zoom": [["region"]],
}


def actionSchemas() -> list[Schema]:
    """One schema per action (and way of giving it), from the action table."""
    out = []
    for name in names():
        properties = {"action": {"const": name}}
        for field in sorted(fieldsOf(name) - {"action"}):
            properties[field] = OWN_FIELDS.get(name, {}).get(field, FIELDS[field])
        for needed in NEEDS.get(name, [[]]):
            out.append(obj(properties, ["action", *needed]))
    return out


ACTION = component("ActionRequest", {
    "oneOf": actionSchemas(),
    "description": "One action (docs/api.md says what each does). Fields an action does not "
                   "read are ignored and named in the X-Agentdesktop-Ignored-Fields header.",
})

ACTION_RESULT = component("ActionResult", obj(
    {"output": string("e.g. left_click action performed, or x=640,y=360."), **IMAGE_FIELDS},
    ["output"], closed=True,
))

BATCH_ENTRY = component("BatchResult", {"anyOf": [
    obj({"status": {"const": 200}, "output": string(), **IMAGE_FIELDS}, ["status", "output"],
        closed=True),
    obj({"status": integer(enum=[409, 500]), "message": string(), "detail": string()},
        ["status", "message"], closed=True),
]})

OBSERVE = component("Observe", obj({
    "screenshot": boolean("Take a screenshot once settled (default true)."),
    "format": FORMAT,
    "quality": QUALITY,
    "settle_ms": integer("The screen must not change for this long (default 150).",
                         minimum=0, maximum=MAX_SETTLE_MS),
    "timeout_ms": integer("But wait no longer than this (default 2000).",
                          minimum=0, maximum=MAX_TIMEOUT_MS),
}))

OBSERVATION = component("Observation", obj({
    "settled": boolean("Whether the screen stopped changing before timeout_ms."),
    "waited_ms": integer("From the end of the last item."),
    **IMAGE_FIELDS,
    "status": integer("Present (500) when the screenshot failed.", enum=[500]),
    "message": string(),
    "detail": string(),
}, ["settled", "waited_ms"], closed=True))


class ActionEndpoint(Endpoint):
    """C{POST /action}: one action, in the order SPEC section 5 gives."""

    api = {"POST": Operation(
        "action", "Perform one input, screenshot or zoom action", tags=["actions"],
        body=ACTION,
        example={"action": "left_click", "coordinate": [640, 360], "scaled_width": 1280,
                 "scaled_height": 720},
        responses={
            200: Response("Done.", ACTION_RESULT, headers=IGNORED),
            409: CONTROLLED,
            500: "The action failed (message names it, detail has the tool's error), or "
                 + START_FAILED,
        },
    )}

    async def handle_POST(self, call: Call) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = call.body()
        info = await ensureDesktop(self.state)
        req = decodeAction(body)
        call.action = req.action
        step = prepare(req, Space.of(info.size, req))
        call.ignore(ignoredFields(req))
        return await self.state.runner.run(step, call.disconnected())


class BatchEndpoint(Endpoint):
    """
    C{POST /batch}: validate every item, run them under one input lock,
    stop at the first failure, then observe the settled screen.
    """

    api = {"POST": Operation(
        "batch", "Several actions in one request, then one observation", tags=["actions"],
        body=obj({
            "actions": {"type": "array", "items": ACTION, "minItems": 1, "maxItems": MAX_ITEMS},
            "scaled_width": DECLARED,
            "scaled_height": DECLARED,
            "observe": OBSERVE,
        }, ["actions"]),
        example={"actions": [{"action": "left_click", "coordinate": [640, 360]},
                             {"action": "type", "text": "hello\n"},
                             {"action": "key", "text": "ctrl+s"}],
                 "scaled_width": 1280, "scaled_height": 720, "observe": {"settle_ms": 150}},
        responses={
            200: Response("The items that ran (the batch stops at the first failure).", obj({
                "results": {"type": "array", "items": BATCH_ENTRY},
                "failed_index": nullable(integer(minimum=0)),
                "observation": OBSERVATION,
            }, ["results", "failed_index"], closed=True), headers=IGNORED),
            409: CONTROLLED + " Nothing ran.",
            500: START_FAILED,
        },
    )}

    async def handle_POST(self, call: Call) -> Any:
        if self.state.recorder is not None:
            self.state.recorder.activity()
        body = call.body()
        info = await ensureDesktop(self.state)
        call.action = "batch"
        batch = prepareBatch(decodeObject(body), info.size)
        call.ignore(batch.ignored)
        runner = self.state.runner
        if any(step.input for step in batch.steps):
            # Refused as a whole, before anything runs, while a person
            # holds control.
            runner.checkInput()
        results, failed = await runner.runBatch(
            batch.steps, call.disconnected(), lambda: call.gone
        )
        out: dict[str, Any] = {"results": results, "failed_index": failed}
        if batch.observe is not None and not call.gone:
            out["observation"] = await observe(runner, batch.observe, batch.picture)
        return out


class InfoEndpoint(Endpoint):
    """C{GET /info}: sizes, display and version."""

    api = {"GET": Operation(
        "info", "Screen size, recommended model size, X display", tags=["desktop"],
        responses={
            200: Response("The desktop.", obj({
                "width": integer("Native width."),
                "height": integer(),
                "recommended_width": integer("The declared size to give a model."),
                "recommended_height": integer(),
                "display": string("The X display, e.g. :1."),
                "xauthority": string("The path of its X authority file."),
                "version": string(),
            }, ["width", "height", "recommended_width", "recommended_height", "display",
                "xauthority", "version"], closed=True)),
            500: START_FAILED,
        },
    )}

    async def handle_GET(self, call: Call) -> Any:
        info = await ensureDesktop(self.state)
        rw, rh = geometry.recommendedSize(info.width, info.height)
        return {
            "width": info.width,
            "height": info.height,
            "recommended_width": rw,
            "recommended_height": rh,
            "display": info.display,
            "xauthority": info.xauthority,
            "version": __version__,
        }
