"""
Log observers for ``twistd --logger``: ``--logger=agentdesktop.logs.json``
writes one JSON object per line on standard output (what log collectors in
containers read), every event's fields as keys.
"""

from __future__ import annotations

import sys

from twisted.logger import ILogObserver, jsonFileLogObserver


def json() -> ILogObserver:
    """An observer writing newline-delimited JSON events to standard output."""
    return jsonFileLogObserver(sys.stdout, recordSeparator="")
