"""The app's URLs, and the baseline webhook view the benchmark compares with."""

import gc
import json

import stripe
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from django_bob_payments.conf import bob_settings
from django_bob_payments.models import WebhookEvent


@csrf_exempt
@transaction.non_atomic_requests
def baseline_webhook(request):
    """The ceiling: verify the signature, parse the body, insert one row. Nothing is applied."""
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode(), request.headers.get("Stripe-Signature"), bob_settings.webhook_secrets[0], 300
        )
    except stripe.SignatureVerificationError:
        return HttpResponse(status=400)
    payload = json.loads(request.body)
    WebhookEvent.objects.create(
        provider="fake",
        event_id=payload["id"],
        type=payload["type"],
        created=payload["created"],
        body=request.body,
        status=WebhookEvent.Status.PENDING,
    )
    return JsonResponse({"id": payload["id"]})


@csrf_exempt
def flush_publisher(request):
    """Wait until this process's background publisher has sent what it holds (WEBHOOK_ENQUEUE "background")."""
    from django_bob_payments import tasks

    tasks.publisher.flush(timeout=60)
    return HttpResponse(status=204)


@csrf_exempt
def freeze_startup(request):
    """
    After the warm-up: collect, then move every object this process holds to the garbage
    collector's permanent generation (the modules, the compiled statements, the caches), so
    that the measured requests pay for their own garbage only.
    """
    gc.collect()
    gc.freeze()
    return HttpResponse(status=204)


urlpatterns = [
    path("api/payment/", include("django_bob_payments.urls")),
    path("baseline/webhook/", baseline_webhook),
    path("bench/flush/", flush_publisher),
    path("bench/freeze/", freeze_startup),
]
