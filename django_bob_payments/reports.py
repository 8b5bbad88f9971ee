"""
Keeping personal data and secrets out of Django's error reports.

An error report (``AdminEmailHandler``, Sentry's Django integration) lists the local
variables of every frame of the traceback. The frames that hold a provider payload, a
customer's billing data or a signature are marked with Django's own
``sensitive_variables``, so that ``SafeExceptionReporterFilter`` shows none of their values.
"""

from __future__ import annotations

import inspect
import traceback
from typing import TypeVar

from django.views.decorators.debug import sensitive_variables

from django_bob_payments.exceptions import BobPaymentsError, ProviderError

T = TypeVar("T", bound=type)


def hide_locals(cls: T) -> T:
    """Mark every method defined on ``cls`` (not inherited ones) so that none of its locals is reported."""
    for name, value in list(vars(cls).items()):
        if inspect.isfunction(value) and not (name.startswith("__") and name.endswith("__")):
            setattr(cls, name, sensitive_variables()(value))
    return cls


def loggable(err: BaseException) -> str:
    """
    An error as a log line may show it: its type and where it was raised, with the app's
    own message (written by the app, naming IDs and fields, never values), or, for a
    provider's error, its code, status and request ID. Other messages may quote data (a
    database constraint names the value, Stripe's messages may quote a parameter, an SMTP
    error the address), so they are left out of logs; the stored record keeps them.
    """
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    name = type(err).__name__
    if isinstance(err, ProviderError):
        details = ", ".join(
            f"{key} {value}"
            for key, value in (("code", err.code), ("status", err.http_status), ("request", err.request_id))
            if value
        )
        return f"{name} ({details}){where}"
    if isinstance(err, BobPaymentsError):
        return f"{name}: {err.args[0] if err.args else ''}{where}"
    return f"{name}{where}"
