"""
The dialect and MCP routes as the OpenAPI document shows them.  The bodies
are the vendors' own shapes (their SDKs are the authority; extra fields are
allowed), with the fields the service reads spelled out.
"""

from __future__ import annotations

from agentdesktop.web.apischema import (
    START_FAILED,
    Operation,
    Param,
    Response,
    Schema,
    boolean,
    component,
    integer,
    nullable,
    obj,
    string,
)

DISPLAY = component("Display", obj(
    {"width": integer(minimum=1, maximum=8192), "height": integer(minimum=1, maximum=8192)},
    ["width", "height"], closed=True,
    description="The model's screenshot size, when not the default (see docs/dialects.md).",
))

ANY_OBJECT: Schema = {"type": "object"}


def array(items: Schema, **more: object) -> Schema:
    return {"type": "array", "items": items, **more}


ANTHROPIC = {"POST": Operation(
    "anthropicTurn", "Run a turn's Anthropic computer tool_use blocks", tags=["dialects"],
    description="Legacy computer_20250124/computer_20251124 blocks and computer_toolset_20260801 "
                "member blocks, run as one batch; a failing block stops the rest (their results "
                "say 'Not executed: ...'). Errors the model made are tool_result blocks with "
                "is_error, not HTTP errors.",
    body=obj({
        "tool_uses": array(obj({
            "type": string(enum=["tool_use"]), "id": string(), "name": string(),
            "input": ANY_OBJECT, "toolset_name": string(),
        }, ["type", "id", "name", "input"]), minItems=1),
        "display": DISPLAY,
    }, ["tool_uses"]),
    example={"tool_uses": [{"type": "tool_use", "id": "toolu_1", "name": "computer",
                            "input": {"action": "left_click", "coordinate": [640, 360]}}]},
    responses={
        200: Response("One tool_result block per tool_use, in order.", obj({
            "content": array(obj({
                "type": string(enum=["tool_result"]), "tool_use_id": string(),
                "content": {"anyOf": [string(), array(ANY_OBJECT)]},
                "is_error": boolean(), "toolset_name": string(),
            }, ["type", "tool_use_id", "content"])),
        }, ["content"], closed=True)),
        500: START_FAILED,
    },
)}

ANTHROPIC_TOOL = {"GET": Operation(
    "anthropicTool", "The Anthropic computer tool definition for this desktop", tags=["dialects"],
    query=(Param("version", string("The tool type.", enum=[
        "computer_20250124", "computer_20251124", "computer_toolset_20260801"]), required=True),),
    responses={
        200: Response("The tool to put in the Messages request's tools.", obj({
            "type": string(), "name": string(), "display_width_px": integer(),
            "display_height_px": integer(), "enable_zoom": boolean(),
        }, ["type"], closed=True)),
        400: "`Missing \"version\".` or `Unknown tool version: <v>` (detail: the known ones).",
        500: START_FAILED,
    },
)}

OPENAI = {"POST": Operation(
    "openaiCall", "Run an OpenAI computer_call", tags=["dialects"],
    description="One computer_call output item of the Responses API (single action, batched "
                "actions[], or the legacy computer_use_preview call); answers the "
                "computer_call_output item to send back, with the screenshot taken once the screen "
                "settled.",
    body=obj({
        "call": obj({
            "type": string(enum=["computer_call"]), "call_id": string(minLength=1),
            "id": string(), "action": ANY_OBJECT, "actions": array(ANY_OBJECT),
            "pending_safety_checks": array(obj({"id": string()}, ["id"])),
        }, ["type", "call_id"]),
        "display": DISPLAY,
        "acknowledged_safety_checks": array({"anyOf": [string(), obj({"id": string()}, ["id"])]}),
    }, ["call"]),
    example={"call": {"type": "computer_call", "call_id": "call_1",
                      "actions": [{"type": "click", "button": "left", "x": 405, "y": 157}]}},
    responses={
        200: Response("The output item, and the error to tell the model (or null).", obj({
            "output": obj({
                "type": string(enum=["computer_call_output"]), "call_id": string(),
                "output": obj({"type": string(enum=["computer_screenshot"]),
                               "image_url": string(), "detail": string()},
                              ["type", "image_url"]),
                "acknowledged_safety_checks": array(ANY_OBJECT),
            }, ["type", "call_id", "output"]),
            "error": nullable(string()),
        }, ["output", "error"], closed=True)),
        409: Response("`Safety checks need acknowledgement.`: nothing ran; ask the user, then "
                      "send the call again acknowledging them.", obj({
                          "message": string(), "detail": string(),
                          "pending_safety_checks": array(ANY_OBJECT)},
                          ["message", "pending_safety_checks"])),
        500: "`Screenshot failed.`, or " + START_FAILED,
    },
)}

GEMINI = {"POST": Operation(
    "geminiTurn", "Run a Gemini computer-use turn's function calls", tags=["dialects"],
    description="The function_call parts of one model turn (the desktop action set and the "
                "legacy *_at functions), run as one batch; the 0-999 grid maps to the screen. "
                "One function_response part per call, each with the screenshot after the turn.",
    body=obj({
        "function_calls": array(ANY_OBJECT, minItems=1),
        "confirmed": array(string()),
    }, ["function_calls"]),
    example={"function_calls": [{"function_call": {"id": "c1", "name": "click",
                                                   "args": {"x": 500, "y": 500}}}]},
    responses={
        200: Response("One function_response part per call.", obj({
            "function_responses": array(ANY_OBJECT),
        }, ["function_responses"], closed=True)),
        409: Response("`Safety confirmation needed.`: nothing ran; ask the user, then send the "
                      "turn again with the calls in confirmed.", ANY_OBJECT),
        500: START_FAILED,
    },
)}

MCP = {"POST": Operation(
    "mcp", "Model Context Protocol (Streamable HTTP, JSON responses)", tags=["mcp"],
    description="JSON-RPC 2.0 messages: initialize, notifications/initialized, ping, tools/list, "
                "tools/call (see docs/mcp.md). A request whose Origin is not this server gets 403.",
    body={"anyOf": [ANY_OBJECT, array(ANY_OBJECT)]},
    example={"jsonrpc": "2.0", "id": 1, "method": "ping"},
    responses={
        200: Response("The JSON-RPC response(s).", {"anyOf": [ANY_OBJECT, array(ANY_OBJECT)]}),
        202: Response("A notification or a response was accepted.", None, contentType=None),
        400: Response("A JSON-RPC parse error, or an unsupported MCP-Protocol-Version.", ANY_OBJECT),
        403: Response("The Origin is another site's.", ANY_OBJECT),
    },
)}
