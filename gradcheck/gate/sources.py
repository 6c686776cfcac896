"""The user's source files read as text: their `# gradcheck: ignore[...]` comments and the function a
line is in.

A file is only read, never imported or run: comments are found with `tokenize`, so a `#` inside a
string is not a comment, and the enclosing function or class comes from `ast.parse`. A file that
cannot be read, is not a regular file (a FIFO would block the read), is too large to be source, or
does not parse gives what could be read of it, never an error: the gate then has fewer comments or
no scope, and says nothing false.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import os
import re
import sys
import tokenize
from dataclasses import dataclass
from typing import Optional

MAX_SOURCE_BYTES = 10_000_000  # beyond any hand-written module; a generated blob is not scanned

# `# gradcheck: ignore` followed by `[codes]`, a space or the end of the comment (not `ignored`).
_DIRECTIVE = re.compile(r"#\s*gradcheck\s*:\s*ignore(?=\[|\s|$)(?P<rest>.*)$", re.S)
_REASON_LEAD = " \t:-—–"


@dataclass(frozen=True)
class Comment:
    """One `# gradcheck: ignore...` comment: where it is, the codes it names and the reason after them."""

    path: str  # as shown in reports: relative to the working folder when inside it
    line: int
    codes: tuple[str, ...]  # empty: a bare `# gradcheck: ignore` (or one whose `[` is never closed)
    reason: Optional[str]
    closed: bool = True  # False: `[` without `]`
    # The lines it covers: every line of the statement it ends. A formatter that wraps a long
    # statement moves its trailing comment to the last line, away from the op a finding names.
    covers: tuple[int, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


def file_key(path: str) -> str:
    """The same file however it is named (relative, absolute, through a symlink)."""
    return os.path.normcase(os.path.realpath(path))


def shown_path(path: str) -> str:
    """`path` as reports print it: relative to the working folder when inside it, else absolute."""
    real = os.path.realpath(path)
    cwd = os.path.realpath(os.getcwd()) + os.sep
    return real[len(cwd) :] if real.startswith(cwd) else real


def split_location(location: Optional[str]) -> Optional[tuple[str, int]]:
    """'path/to/file.py:12' -> (its file key, 12); None for no location or one without a line."""
    if not location:
        return None
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit():
        return None
    return file_key(path), int(line)


def _text(path: str) -> Optional[str]:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SOURCE_BYTES:
            return None
        with open(path, "rb") as stream:
            raw = stream.read(MAX_SOURCE_BYTES + 1)
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        return raw.decode(encoding, errors="replace")
    except (OSError, SyntaxError, LookupError):  # unreadable, or a coding cookie naming no codec
        return None


@functools.lru_cache(maxsize=256)
def _source(key: str) -> Optional[str]:
    return _text(key)


def forget_sources() -> None:
    """Read files again on the next call: a run in the same process (a test, a notebook) sees edits."""
    _source.cache_clear()
    _tree.cache_clear()


def comments_in(path: str) -> list[Comment]:
    """Every `# gradcheck: ignore` comment of the file at `path`, in order, each covering the lines
    of the statement it is on (its own line alone when it stands on a line of its own)."""
    text = _source(file_key(path))
    if text is None:
        return []
    shown = shown_path(path)
    found: list[Comment] = []
    pending: list[Comment] = []  # comments of the statement being read
    first: Optional[int] = None  # the statement's first line
    quiet = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                comment = _parse(token.string, shown, token.start[0])
                if comment is not None:
                    pending.append(comment)
            if token.type == tokenize.NEWLINE or (token.type == tokenize.NL and first is None):
                lines = tuple(range(first, token.start[0] + 1)) if first is not None else ()
                found += [dataclasses.replace(c, covers=lines or (c.line,)) for c in pending]
                pending, first = [], None
            elif token.type not in quiet and first is None:
                first = token.start[0]
    except (tokenize.TokenError, SyntaxError):  # an unterminated string: keep the comments before it
        pass
    return found + [dataclasses.replace(c, covers=(c.line,)) for c in pending]


def _parse(text: str, path: str, line: int) -> Optional[Comment]:
    match = _DIRECTIVE.search(text)
    if match is None:
        return None
    rest = match.group("rest")
    if not rest.startswith("["):
        return Comment(path, line, (), _reason(rest))
    end = rest.find("]")
    if end < 0:
        return Comment(path, line, (), None, closed=False)
    codes = tuple(code.strip() for code in rest[1:end].split(",") if code.strip())
    return Comment(path, line, codes, _reason(rest[end + 1 :]))


def _reason(text: str) -> Optional[str]:
    reason = " ".join(text.strip(_REASON_LEAD).split())
    return reason or None


@functools.lru_cache(maxsize=256)
def _tree(key: str) -> Optional[ast.Module]:
    text = _source(key)
    if text is None:
        return None
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte in the source
        return None


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def scope_of(location: Optional[str]) -> Optional[str]:
    """The qualified name of the function or class holding the line of `location` ("Net.call"),
    "<module>" for a line outside any, None when the file cannot be read or parsed."""
    place = split_location(location)
    if place is None:
        return None
    key, line = place
    tree = _tree(key)
    if tree is None:
        return None
    innermost: list[str] = []

    def visit(node, names: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _DEFINITIONS):
                visit(child, names)
                continue
            first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
            if first <= line <= (child.end_lineno or child.lineno):
                innermost[:] = [*names, child.name]
                visit(child, innermost[:])

    try:
        visit(tree, [])
    except RecursionError:  # a pathologically nested file: no scope rather than a crash
        return None
    return ".".join(innermost) or "<module>"


def target_file(target) -> Optional[str]:
    """The file a TARGET names (path/to/file.py:NAME), or where module:NAME would be found, without
    importing it; None for a layer object (check()) or a module that is not a file here."""
    if not isinstance(target, str):
        return None
    module_ref, sep, _ = target.rpartition(":")
    if not sep or not module_ref:
        return None
    if module_ref.endswith(".py") or "/" in module_ref or os.sep in module_ref:
        return module_ref
    relative = module_ref.replace(".", os.sep)
    for base in [os.getcwd(), *sys.path]:
        for candidate in (
            os.path.join(base or ".", relative + ".py"),
            os.path.join(base or ".", relative, "__init__.py"),
        ):
            if os.path.isfile(candidate):
                return candidate
    return None


def files_named(result, target=None) -> list[str]:
    """The files whose comments apply to a result: its target's own file, and every file a finding's
    location or a tensor's creation line names (in that order, each once)."""
    places = [target_file(target if target is not None else result.target)]
    for item in getattr(result, "findings", ()):
        places.append(_path_of(item.location))
    for tensor in getattr(result, "variables", ()):
        places.append(_path_of(tensor.created_at))
    return list(dict.fromkeys(p for p in places if p))


def _path_of(location: Optional[str]) -> Optional[str]:
    if not location:
        return None
    path, _, line = location.rpartition(":")
    return path if path and line.isdigit() else None
