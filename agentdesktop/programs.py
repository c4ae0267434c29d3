"""
Programs on the desktop, the parts that need no reactor: finding a
program before anything starts (L{resolveProgram}), checking what
C{/open} is given (L{checkOpenTarget}), and the process tree that tells
which new window belongs to a launched program (L{descendants}).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

#: A URL scheme, as RFC 3986 spells it (two letters at least, so that
#: nothing that looks like a path qualifies).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def resolveProgram(program: str, env: Mapping[str, str]) -> str:
    """
    The executable file PROGRAM names: a path (with a C{/}) must be an
    executable file; a bare name is looked up on ENV's C{PATH}.

    @raise ValueError: naming PROGRAM when there is no such program.
    """
    if not program:
        raise ValueError("the command is empty")
    if "/" in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return program
        if not os.path.exists(program):
            raise ValueError(f"{program}: no such file")
        raise ValueError(f"{program}: not an executable file")
    path = env.get("PATH", os.defpath)
    found = shutil.which(program, path=path)
    if found is None:
        raise ValueError(f"{program}: not found on the desktop's PATH ({path})")
    return found


def isURL(target: str) -> bool:
    """Whether TARGET starts with a URL scheme (C{https:}, C{file:}, C{mailto:})."""
    return _SCHEME.match(target) is not None


def checkOpenTarget(target: str, env: Mapping[str, str]) -> str:
    """
    What C{xdg-open} is given for TARGET: a URL as it is, an absolute path
    that exists (C{~} is the desktop's home), or a C{file:} URL whose path
    exists.  The result never starts with C{-}, so C{xdg-open} (which takes
    no C{--}) cannot read it as an option.

    @raise ValueError: saying what is wrong with TARGET.
    """
    if not target or not target.strip():
        raise ValueError("the target is empty")
    if "\0" in target:
        raise ValueError("the target holds a NUL character")
    if isURL(target):
        if target.lower().startswith("file:"):
            _mustExist(_fileURLPath(target))
        return target
    if target.startswith("~"):
        home = env.get("HOME") or os.path.expanduser("~")
        target = home + target[1:] if target == "~" or target.startswith("~/") else target
    if not target.startswith("/"):
        raise ValueError(f"{target}: give an absolute path or a URL")
    _mustExist(target)
    return target


def _fileURLPath(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{url}: a file URL must name a local file")
    return unquote(parts.path)


def _mustExist(path: str) -> None:
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such file or directory")


# -- the process tree


def parentsFromProc(proc: str = "/proc") -> dict[int, int]:
    """Every process's parent, from C{/proc/<pid>/stat}."""
    parents: dict[int, int] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return parents
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 2:
            parents[int(name)] = int(fields[1])
    return parents


def descendants(roots: Iterable[int], parents: Mapping[int, int]) -> set[int]:
    """ROOTS and every process below them in the tree PARENTS (pid → parent)."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found
