"""
JSON response bodies without a second pass over their images.  A screenshot
travels as a megabyte of base64, which needs no escaping; C{json.dumps}
would still scan it, copy it into a new string and encode that again.
L{Base64Text} marks such a string, and L{dumps} splices its bytes into the
encoded skeleton of the body as they are.  Pure: no reactor.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pybase64


class Base64Text(str):
    """
    Standard base64 text (only C{A-Z a-z 0-9 + / =}): a C{str} everywhere,
    written into JSON without escaping.

    @ivar raw: the same text as ASCII bytes.
    """

    raw: bytes

    @classmethod
    def encode64(cls, data: bytes) -> Base64Text:
        """
        DATA in standard base64 (with padding), encoded with SIMD
        (C{pybase64}: 0.1 ms for a megabyte where C{base64} takes 1.5 to 3).
        """
        raw = pybase64.b64encode(data)
        text = cls(raw.decode("ascii"))
        text.raw = raw
        return text


def dumps(body: Any) -> bytes:
    """
    BODY as compact UTF-8 JSON, exactly what
    C{json.dumps(body, separators=(",", ":")).encode()} gives, with every
    L{Base64Text} in it copied in without a scan.
    """
    return b"".join(parts(body))


def parts(body: Any) -> list[bytes]:
    """
    L{dumps}'s bytes in pieces (each L{Base64Text}'s own bytes one of
    them), to be written one after the other without joining them first.
    """
    found: list[bytes] = []
    # A marker no client string can forge: NUL (escaped by json) and a
    # random token.
    marker = "\x00" + secrets.token_hex(8)

    def swap(value: Any) -> Any:
        if isinstance(value, Base64Text):
            found.append(value.raw)
            return f"{marker}{len(found) - 1}"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [swap(v) for v in value]
        return value

    skeleton = json.dumps(swap(body), separators=(",", ":")).encode("utf-8")
    if not found:
        return [skeleton]
    escaped = json.dumps(marker)[1:-1].encode("ascii")
    out: list[bytes] = []
    rest = skeleton
    for i, raw in enumerate(found):
        before, _, rest = rest.partition(b'"' + escaped + str(i).encode() + b'"')
        out += [before + b'"', raw, b'"']
    out.append(rest)
    return out
