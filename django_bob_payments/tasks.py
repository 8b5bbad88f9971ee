"""
The background tasks of the queued webhook modes (``WEBHOOK_PROCESSING``).

- Celery: ``apply_webhook_event`` and ``sweep_webhook_events``, found by the usual
  ``app.autodiscover_tasks()``. Late acknowledgement, and a task that a dying worker held
  is given back to the broker; the inbox stays the truth, so the sweeper also hands out
  again what a lost message or a broker without redelivery left pending.
- Django's Tasks framework (``django.tasks`` on Django 6, the ``django-tasks`` backport
  before): ``apply_webhook_event_task`` and ``sweep_webhook_events_task``, run by whatever
  backend the project's ``TASKS`` setting names.

Each task only names stored events (their primary keys); the worker reads the events from
the inbox, so no payload travels through the broker. This module imports neither engine
unless it is installed: a project with one of them pays nothing for the other.

With ``WEBHOOK_ENQUEUE = "background"`` the request does not wait for the broker: the keys
of the events it stored go to a thread of the web process (``BackgroundPublisher``), which
sends them in batches, one task per batch. A process killed before its thread sent them
leaves them pending in the inbox, where the sweeper finds them.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from django_bob_payments.conf import bob_settings
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.reports import loggable

logger = logging.getLogger("django_bob_payments.webhooks")

# Seconds between the tries of an event that failed for a reason that may pass; then the sweeper.
RETRY_DELAYS = (5, 30, 120, 600, 1800)


def _apply(pk: int) -> str:
    event = get_payment_interactor().apply_queued_webhook_event(pk)
    return event.status if event is not None else "missing"


def _apply_batch(pks: list[int]) -> list[int]:
    """Apply the stored events ``pks`` in order; the keys of those that failed and may pass."""
    rows = get_payment_interactor().apply_queued_webhook_events(pks)
    return [row.pk for row in rows if row.status == "failed"]


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

    @shared_task(
        name="django_bob_payments.apply_webhook_events",
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )
    def apply_webhook_events(pks: list[int]) -> int:
        """
        Apply the stored webhook events ``pks`` in order (a batch of the background publisher);
        each that failed for a reason that may pass is tried again later on its own.
        """
        failed = _apply_batch(pks)
        queue = bob_settings.WEBHOOK_QUEUE
        for pk in failed:
            apply_webhook_event.apply_async(args=[pk], countdown=RETRY_DELAYS[0], **({"queue": queue} if queue else {}))
        return len(pks) - len(failed)

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
    def apply_webhook_events_task(pks: list[int]) -> int:
        """Apply the stored webhook events ``pks`` in order (a batch of the background publisher)."""
        return len(pks) - len(_apply_batch(pks))

    @_task()
    def sweep_webhook_events_task() -> int:
        """Hand the events still pending or failed after WEBHOOK_SWEEP_AFTER minutes to workers again."""
        return _sweep()


class BackgroundPublisher:
    """
    Sends the tasks of stored events from a thread of this process, in batches of up to
    ``batch_size`` keys gathered for at most ``linger`` seconds (a task costs the sender about
    a millisecond, however many keys it carries), so that a webhook is answered without
    waiting for the broker. The thread starts with the first event (again in a forked
    child, which inherits no thread), and what is left is sent when the process exits
    normally. A failure to send is logged; the events stay pending in the inbox for the
    sweeper.
    """

    def __init__(self, send: Callable[[list[int]], None], batch_size: int = 50, linger: float = 0.02) -> None:
        self.send = send
        self.batch_size = batch_size
        self.linger = linger
        self._keys: collections.deque[int] = collections.deque()
        self._wake = threading.Condition()
        self._busy = False
        self._hurry = False
        self._pid: int | None = None
        self._thread: threading.Thread | None = None

    def submit(self, pk: int) -> None:
        """Hand the stored event ``pk`` to the thread."""
        with self._wake:
            if self._pid != os.getpid():
                self._start()
            self._keys.append(pk)
            # The thread is woken by the first key (it lingers for more) and by a full batch,
            # not by every key: each wake-up takes the interpreter from the request.
            if len(self._keys) in (1, self.batch_size):
                self._wake.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is held now, without lingering; False when ``timeout`` passed first."""
        with self._wake:
            self._hurry = True
            self._wake.notify_all()
            try:
                return self._wake.wait_for(lambda: not self._keys and not self._busy, timeout)
            finally:
                self._hurry = False

    def _start(self) -> None:
        self._keys.clear()
        self._busy = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="bob-payments-publisher", daemon=True)
        self._thread.start()
        self._wake.notify_all()  # a thread this one replaces sees it and stops

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._wake:
                self._wake.wait_for(lambda: bool(self._keys) or self._thread is not me)
                self._wake.wait_for(lambda: len(self._keys) >= self.batch_size or self._hurry, self.linger)
                if self._thread is not me:
                    # Superseded by _start: one thread takes the keys, or two would split a
                    # batch between them and one would send an empty one.
                    return
                batch = [self._keys.popleft() for _ in range(min(self.batch_size, len(self._keys)))]
                self._busy = True
            try:
                self.send(batch)
            except Exception as err:
                logger.warning(
                    "%d stored webhook events could not be queued (%s); the sweeper will hand them out.",
                    len(batch),
                    loggable(err),
                )
            finally:
                # A database backend of the Tasks framework opened this thread's connection.
                connections.close_all()
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()


def _send_batch(pks: list[int]) -> None:
    """One task for the batch, on the engine and queue of WEBHOOK_PROCESSING and WEBHOOK_QUEUE."""
    queue = bob_settings.WEBHOOK_QUEUE
    if bob_settings.WEBHOOK_PROCESSING == "celery":
        apply_webhook_events.apply_async(args=[pks], **({"queue": queue} if queue else {}))
    else:
        task = apply_webhook_events_task
        (task.using(queue_name=queue) if queue else task).enqueue(pks)


publisher = BackgroundPublisher(_send_batch)


@atexit.register
def _send_what_is_left() -> None:
    if publisher._pid == os.getpid():
        publisher.flush()
