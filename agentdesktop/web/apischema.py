"""
What a route declares about itself for the OpenAPI document
(C{GET /api/v0/desktop/openapi.json}): an L{Operation} per method, kept
next to the route as its C{api} class attribute, and the schemas routes
share (L{COMPONENTS}, referred to with L{ref}).  Pure data: no reactor, no
HTTP.  L{agentdesktop.web.openapi} walks the resource tree and assembles
the document from these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

#: Every shared schema, by name (C{#/components/schemas/<name>}).
COMPONENTS: dict[str, Schema] = {}


def component(name: str, schema: Schema) -> Schema:
    """Register SCHEMA as the shared component NAME; return a reference to it."""
    if COMPONENTS.get(name, schema) != schema:
        raise ValueError(f"component {name} declared twice, differently")
    COMPONENTS[name] = schema
    return ref(name)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(
    properties: Mapping[str, Schema],
    required: Sequence[str] = (),
    *,
    closed: bool = False,
    description: str = "",
) -> Schema:
    """An object schema; CLOSED forbids properties not listed."""
    out: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def nullable(schema: Schema) -> Schema:
    """SCHEMA or C{null}."""
    return {"anyOf": [schema, {"type": "null"}]}


def string(description: str = "", **more: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **more}


def integer(description: str = "", **more: Any) -> Schema:
    return {"type": "integer", **({"description": description} if description else {}), **more}


def boolean(description: str = "") -> Schema:
    return {"type": "boolean", **({"description": description} if description else {})}


def pair(description: str) -> Schema:
    """An C{[x, y]} integer pair."""
    return {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
            "description": description}


@dataclass(frozen=True)
class Param:
    """A query or path parameter."""

    name: str
    schema: Schema
    description: str = ""
    required: bool = False
    where: str = "query"

    def json(self) -> Schema:
        out: Schema = {"name": self.name, "in": self.where, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        if self.required or self.where == "path":
            out["required"] = True
        return out


@dataclass(frozen=True)
class Segment:
    """
    A path segment below a route that its C{getChild} answers (or, below
    a leaf route, that the route reads itself): a sample to resolve it
    with, and the path parameter it is when it is a variable.
    """

    sample: bytes
    param: Param | None = None


@dataclass(frozen=True)
class Response:
    """
    A response: JSON with SCHEMA, or another CONTENTTYPE (C{schema} may
    then be C{None}); C{None} for no body.
    """

    description: str
    schema: Schema | None = None
    contentType: str | None = "application/json"
    headers: Mapping[str, Schema] = field(default_factory=dict)

    def json(self) -> Schema:
        out: Schema = {"description": self.description}
        if self.contentType is not None and (
            self.schema is not None or self.contentType != "application/json"
        ):
            media: Schema = {} if self.schema is None else {"schema": self.schema}
            out["content"] = {self.contentType: media}
        if self.headers:
            out["headers"] = {k: {"schema": v} for k, v in self.headers.items()}
        return out


@dataclass(frozen=True)
class Operation:
    """
    One method of one route, as the OpenAPI document shows it.

    @ivar responses: status → a L{Response}, or a string: the description
        of an error answered with the JSON error envelope.  The document
        adds the answers every route shares (401 where credentials are
        needed, 503 while shutting down, and for a JSON body 400 and 413).
    @ivar body: the JSON Schema of the JSON request body, or C{None}.
    @ivar example: an example body.
    @ivar tags: the group it is listed under.
    """

    operationId: str
    summary: str
    responses: Mapping[int, Response | str]
    description: str = ""
    body: Schema | None = None
    bodyRequired: bool = True
    example: Any = None
    query: Sequence[Param] = ()
    tags: Sequence[str] = ()


ERROR = component("Error", obj(
    {"message": string("Fixed for each kind of failure; clients may match on it."),
     "detail": string("What exactly went wrong; left out when there is nothing to add.")},
    ["message"], closed=True, description="The error envelope every error is answered with.",
))

SCALED = (
    Param("scaled_width", integer(minimum=0, maximum=65535),
          "Width of the declared (model) coordinate space; 0 or absent: the native width."),
    Param("scaled_height", integer(minimum=0, maximum=65535),
          "Height of the declared (model) coordinate space; 0 or absent: the native height."),
)

IGNORED = {"X-Agentdesktop-Ignored-Fields": string(
    "The request fields nothing read (e.g. a misspelt scaled_widht), comma-separated.")}

START_FAILED = "`Failed to start desktop session.`: the desktop could not start (detail: why)."

CONTROLLED = "`A person is controlling the desktop.`: agent input is refused while they hold control."

WINDOW = component("Window", obj({
    "id": integer("The X window id of the client window."),
    "title": string(),
    "class": string("The class part of WM_CLASS, e.g. XTerm."),
    "pid": nullable(integer()),
    "x": integer("Left edge of the client window, in declared space."),
    "y": integer(),
    "width": integer(),
    "height": integer(),
    "focused": boolean(),
    "minimized": boolean(),
    "maximized": boolean(),
}, ["id", "title", "class", "pid", "x", "y", "width", "height", "focused", "minimized",
    "maximized"], closed=True, description="A managed top-level window."))

NODE = component("AccessibleNode", obj({
    "id": string("Opaque, URL-safe; valid while its application runs."),
    "role": string("The AT-SPI role, e.g. push button."),
    "name": string(),
    "states": {"type": "array", "items": string()},
    "bounds": nullable({"type": "array", "items": {"type": "integer"}, "minItems": 4,
                        "maxItems": 4, "description": "[x, y, width, height] in declared space"}),
    "actions": {"type": "array", "items": string()},
    "children": {"type": "array", "items": ref("AccessibleNode")},
    "truncated": {"const": True, "description": "Present when children were left out."},
}, ["id", "role", "name", "states", "bounds", "actions", "children"], closed=True,
    description="A node of an accessibility (AT-SPI2) tree."))

IMAGE_FIELDS: dict[str, Schema] = {
    "screenshot_data": string("The image, standard base64 with padding.",
                              contentEncoding="base64"),
    "screenshot_width": integer("The image's width in pixels (the declared width)."),
    "screenshot_height": integer(),
    "screenshot_format": string("Present when the image is not PNG.", enum=["jpeg", "webp"]),
}

__all__ = [
    "COMPONENTS", "CONTROLLED", "ERROR", "IGNORED", "IMAGE_FIELDS", "NODE", "Operation", "Param",
    "Response", "SCALED", "START_FAILED", "Segment", "WINDOW", "boolean", "component", "integer",
    "nullable", "obj", "pair", "ref", "string",
]
