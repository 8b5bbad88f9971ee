"""
Keeping personal data and secrets out of Django's error reports.

An error report (``AdminEmailHandler``, Sentry's Django integration) lists the local
variables of every frame of the traceback. The frames that hold a provider payload, a
customer's billing data or a signature are marked with Django's own
``sensitive_variables``, so that ``SafeExceptionReporterFilter`` shows none of their values.
"""

from __future__ import annotations

import inspect
from typing import TypeVar

from django.views.decorators.debug import sensitive_variables

T = TypeVar("T", bound=type)


def hide_locals(cls: T) -> T:
    """Mark every method defined on ``cls`` (not inherited ones) so that none of its locals is reported."""
    for name, value in list(vars(cls).items()):
        if inspect.isfunction(value) and not (name.startswith("__") and name.endswith("__")):
            setattr(cls, name, sensitive_variables()(value))
    return cls
