"""
Request parsers of the app's API: JSON with a bound on its nesting, so a hostile body is a
400, never a RecursionError (a 500).
"""

from __future__ import annotations

import io
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from django_bob_payments.bounds import depth_within

# Far deeper than any request of the app's API (which nests two levels at most).
MAX_DEPTH = 32


# Far larger than any request of the app's API (a billing form is under 2 KB).
MAX_BYTES = 64 * 1024


class BodyTooLarge(ParseError):
    default_detail = f"The request body is larger than {MAX_BYTES} bytes."
    default_code = "body_too_large"


class BoundedJSONParser(JSONParser):
    """
    DRF's JSON parser, refusing with a 400 bodies larger than ``MAX_BYTES`` (read no
    further) or nested deeper than ``MAX_DEPTH``.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        body = stream.read(MAX_BYTES + 1) if stream is not None else b""
        if len(body) > MAX_BYTES:
            raise BodyTooLarge()
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        if not depth_within(data, MAX_DEPTH, body):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        return data
