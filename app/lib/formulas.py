"""A method's formula (``MethodInfo.formula``, TeX) as markdown that wraps inside a narrow card.

KaTeX's display mode never breaks a line, so a long formula in a 300-pixel card was cut off behind a sideways
scroll. Split at its top-level clause separators (``,\\ ``, ``,\\quad``) into inline formulas, each can go on
its own line, and inline KaTeX breaks a clause itself after a top-level relation or binary operator.
"""

from __future__ import annotations

import re

_SEPARATOR = re.compile(r",\s*\\(?:quad|qquad|;|:| )\s*")
_OPEN = re.compile(r"\\left\b|\\[bB]igg?l?[(\[]|\\[bB]igg?l?\\\{")
_CLOSE = re.compile(r"\\right\b|\\[bB]igg?r?[)\]]|\\[bB]igg?r?\\\}")


def _depth_changes(tex: str) -> list[int]:
    """Nesting depth of braces and sized delimiters before each character of ``tex``."""
    depth, out, index = 0, [], 0
    while index < len(tex):
        out.append(depth)
        opened, closed = _OPEN.match(tex, index), _CLOSE.match(tex, index)
        if opened or closed:
            match = opened or closed
            depth += 1 if opened else -1
            out.extend([depth] * (match.end() - index - 1))
            index = match.end()
            continue
        if tex[index] == "\\" and index + 1 < len(tex):  # an escaped character (\{, \,) is not a group
            out.append(depth)
            index += 2
            continue
        if tex[index] == "{":
            depth += 1
        elif tex[index] == "}":
            depth -= 1
        index += 1
    return out


def clauses(tex: str) -> list[str]:
    """The top-level clauses of a formula, in order (the formula itself when it has one)."""
    depth = _depth_changes(tex)
    parts, start = [], 0
    for match in _SEPARATOR.finditer(tex):
        if depth[match.start()] == 0:
            parts.append(tex[start:match.start()].strip())
            start = match.end()
    parts.append(tex[start:].strip())
    return [part for part in parts if part]


def formula_markdown(tex: str) -> str:
    """Markdown of the formula: its clauses as inline math joined by commas, free to wrap between them."""
    return ", &ensp;".join(f"${clause}$" for clause in clauses(tex))
