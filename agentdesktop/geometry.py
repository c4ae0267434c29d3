"""
Mapping between the model's declared ("scaled") coordinate space and native
screen pixels (SPEC section 6).  Pure functions: no reactor, no X.
"""

from __future__ import annotations

import math

#: Anthropic's guidance for screenshots a model sees well.
MAX_LONG_EDGE = 1568
MAX_AREA = 1_150_000


def _roundHalfAway(v: float) -> int:
    """Round half away from zero (Python's round() is half-to-even)."""
    if v >= 0:
        return int(math.floor(v + 0.5))
    return -int(math.floor(-v + 0.5))


#: Rounding half away from zero, for the dialects' unit conversions.
roundHalfAway = _roundHalfAway


def scale(c: int, src: int, dst: int) -> int:
    """
    Map coordinate C on an axis of SRC pixels to an axis of DST pixels.

    Pixel centres map onto pixel centres; the result is clamped to
    ``[0, dst - 1]``.
    """
    if dst <= 0:
        return 0
    if src <= 0 or src == dst:
        return min(max(c, 0), dst - 1)
    # Outside [0, src) the result is clamped anyway; clamping first keeps
    # arbitrarily large JSON integers out of float arithmetic.
    c = min(max(c, -1), src)
    v = ((c + 0.5) * dst) / src - 0.5
    v = min(max(v, 0.0), float(dst - 1))
    return _roundHalfAway(v)


def declaredSize(
    native: tuple[int, int], scaledWidth: int | None, scaledHeight: int | None
) -> tuple[int, int]:
    """
    The declared size: each axis is the scaled size when it is positive,
    else the native size.
    """
    w = scaledWidth if scaledWidth is not None and scaledWidth > 0 else native[0]
    h = scaledHeight if scaledHeight is not None and scaledHeight > 0 else native[1]
    return w, h


def toNative(
    point: tuple[int, int], declared: tuple[int, int], native: tuple[int, int]
) -> tuple[int, int]:
    """Map a declared-space point to the native pixel it names."""
    return (
        scale(point[0], declared[0], native[0]),
        scale(point[1], declared[1], native[1]),
    )


def toDeclared(
    point: tuple[int, int], native: tuple[int, int], declared: tuple[int, int]
) -> tuple[int, int]:
    """Map a native pixel to the declared-space point that names it."""
    return (
        scale(point[0], native[0], declared[0]),
        scale(point[1], native[1], declared[1]),
    )


def _fits(w: int, h: int) -> bool:
    return max(w, h) <= MAX_LONG_EDGE and w * h <= MAX_AREA


def recommendedSize(nw: int, nh: int) -> tuple[int, int]:
    """
    The declared size to recommend to a model for a native screen of
    NW x NH pixels (SPEC section 6).
    """
    if nw <= 0 or nh <= 0:
        return max(nw, 0), max(nh, 0)
    if _fits(nw, nh):
        return nw, nh
    if nw >= nh:
        for w in (1280, 1024):
            if w <= nw:
                h = (w * nh) // nw
                if _fits(w, h):
                    return w, h
    factor = min(
        1.0, MAX_LONG_EDGE / max(nw, nh), math.sqrt(MAX_AREA / (nw * nh))
    )
    return int(nw * factor), int(nh * factor)


def fitInside(
    size: tuple[int, int], box: tuple[int, int]
) -> tuple[int, int]:
    """
    The largest size with the aspect ratio of SIZE that fits inside BOX
    (each axis at least one pixel).
    """
    w, h = size
    bw, bh = box
    if w <= 0 or h <= 0:
        return max(bw, 1), max(bh, 1)
    factor = min(bw / w, bh / h)
    return max(1, _roundHalfAway(w * factor)), max(1, _roundHalfAway(h * factor))
