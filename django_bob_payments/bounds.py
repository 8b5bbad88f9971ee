"""Bounds on what the app accepts from outside: how deep a parsed JSON document may nest."""

from __future__ import annotations

from typing import Any


def depth_within(value: Any, limit: int, source: str | bytes | None = None) -> bool:
    """
    Whether ``value`` nests no deeper than ``limit`` objects and lists (walked without
    recursion). ``source``, the JSON text ``value`` was parsed from, spares the walk when it
    opens no more than ``limit`` of them in all: each level opens one.
    """
    if source is not None:
        opened = (
            source.count("{") + source.count("[")
            if isinstance(source, str)
            else source.count(b"{") + source.count(b"[")
        )
        if opened <= limit:
            return True
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True
