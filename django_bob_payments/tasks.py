"""
The background tasks of the queued webhook modes (``WEBHOOK_PROCESSING``).

- Celery: ``apply_webhook_event`` and ``sweep_webhook_events``, found by the usual
  ``app.autodiscover_tasks()``. Late acknowledgement, and a task that a dying worker held
  is given back to the broker; the inbox stays the truth, so the sweeper also hands out
  again what a lost message or a broker without redelivery left pending.
- Django's Tasks framework (``django.tasks`` on Django 6, the ``django-tasks`` backport
  before): ``apply_webhook_event_task`` and ``sweep_webhook_events_task``, run by whatever
  backend the project's ``TASKS`` setting names.

Each task only names a stored event (its primary key); the worker reads the event from the
inbox, so no payload travels through the broker. This module imports neither engine unless
it is installed: a project with one of them pays nothing for the other.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django_bob_payments.interactors import get_payment_interactor

# Seconds between the tries of an event that failed for a reason that may pass; then the sweeper.
RETRY_DELAYS = (5, 30, 120, 600, 1800)


def _apply(pk: int) -> str:
    event = get_payment_interactor().apply_queued_webhook_event(pk)
    return event.status if event is not None else "missing"


def _sweep() -> int:
    return get_payment_interactor().sweep_webhook_events()


if importlib.util.find_spec("celery") is not None:
    from celery import shared_task

    @shared_task(
        bind=True,
        name="django_bob_payments.apply_webhook_event",
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        max_retries=len(RETRY_DELAYS),
    )
    def apply_webhook_event(self: Any, pk: int) -> str:
        """Apply the stored webhook event ``pk``; a transient failure is tried again later."""
        status = _apply(pk)
        if status == "failed" and self.request.retries < len(RETRY_DELAYS):
            raise self.retry(countdown=RETRY_DELAYS[self.request.retries])
        return status

    @shared_task(name="django_bob_payments.sweep_webhook_events", ignore_result=True)
    def sweep_webhook_events() -> int:
        """Hand the events still pending or failed after WEBHOOK_SWEEP_AFTER minutes to workers again."""
        return _sweep()


def _tasks_decorator() -> Any:
    if importlib.util.find_spec("django.tasks") is not None:
        from django.tasks import task

        return task
    if importlib.util.find_spec("django_tasks") is not None:
        from django_tasks import task

        return task
    return None


_task = _tasks_decorator()

if _task is not None:

    @_task()
    def apply_webhook_event_task(pk: int) -> str:
        """Apply the stored webhook event ``pk`` (a failure stays in the inbox for the sweeper)."""
        return _apply(pk)

    @_task()
    def sweep_webhook_events_task() -> int:
        """Hand the events still pending or failed after WEBHOOK_SWEEP_AFTER minutes to workers again."""
        return _sweep()
