"""Bounds on what the app accepts from outside: how deep a parsed JSON document may nest."""

from __future__ import annotations

from typing import Any


def depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` objects and lists (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True
