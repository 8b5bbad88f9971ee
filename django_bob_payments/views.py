"""HTTP views of django-bob-payments."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import WebhookVerificationError
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.providers import get_provider

logger = logging.getLogger("django_bob_payments.webhooks")


def _refuse(message: str, code: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookView(View):
    """
    ``POST /api/payment/stripe/webhook/``: verify, store and apply one Stripe event.

    Answers 200 once the event is stored (applied, a duplicate, ignored or rejected), 400
    with a short reason when the request is not a verified Stripe event (nothing is stored,
    and the body is never echoed), and 500 when applying it failed: the event is stored as
    failed and Stripe delivers it again.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> JsonResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse("The Content-Length header is not a number.", "invalid_length")
        limit = bob_settings.WEBHOOK_MAX_BODY_SIZE
        if length > limit:
            return _refuse(f"The body is larger than {limit} bytes.", "body_too_large")
        body = request.body
        if len(body) > limit:
            return _refuse(f"The body is larger than {limit} bytes.", "body_too_large")
        if not bob_settings.webhook_secrets:
            # Our configuration, not the caller's fault: 500, so Stripe retries once it is fixed.
            logger.error('A Stripe webhook arrived but BOB_PAYMENTS["STRIPE_WEBHOOK_SECRET"] is not set.')
            return _refuse("Webhooks are not configured on this site.", "not_configured", status=500)
        try:
            payload = get_provider("stripe").verify_webhook(body, request.headers)
            result = get_payment_interactor().handle_webhook_from_stripe(payload)
        except WebhookVerificationError as err:
            return _refuse(err.args[0], err.code)
        event = result.event
        if result.failed:
            return JsonResponse(
                {"error": "The event could not be applied; it is stored and will be retried.", "code": "event_failed"},
                status=500,
            )
        return JsonResponse({"id": event.event_id, "status": event.status, "duplicate": result.duplicate})


# Not wrapped in ATOMIC_REQUESTS: the inbox manages its transactions, and a failure record
# must survive the failed handler's rollback.
stripe_webhook = transaction.non_atomic_requests(StripeWebhookView.as_view())
