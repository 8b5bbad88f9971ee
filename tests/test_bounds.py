"""How deep a parsed JSON document may nest (bounds.depth_within), with and without its text."""

import json

import pytest

from django_bob_payments.bounds import depth_within


def nested(depth: int) -> object:
    value: object = {}
    for level in range(depth - 1):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize(("depth", "within"), [(1, True), (8, True), (9, False), (40, False)])
def test_the_depth_is_judged_the_same_with_the_text_or_without(depth, within, as_bytes):
    value = nested(depth)
    text = json.dumps(value)
    assert depth_within(value, 8) is within
    assert depth_within(value, 8, text.encode() if as_bytes else text) is within


def test_brackets_in_strings_and_many_shallow_objects_do_not_make_a_document_deep():
    # More than 8 brackets in all, none deeper than 2: the walk decides.
    value = {"note": "[[[[[[[[[[{{{{{{{{{{", "lines": [{} for _ in range(20)]}
    assert depth_within(value, 8, json.dumps(value))
    assert not depth_within(value, 1, json.dumps(value))
