"""HTTP views of django-bob-payments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import include, path, reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from django_bob_payments import __version__
from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import (
    ActionNotAllowed,
    BillingPermissionDenied,
    BobPaymentsImproperlyConfigured,
    NotAtProvider,
    ProviderError,
    ProviderTimeout,
    PurchaseNotAllowed,
    WebhookVerificationError,
)
from django_bob_payments.interactors import PaymentInteractor, get_payment_interactor
from django_bob_payments.models import BillingInformation, Customer, Invoice, Order, Subscription
from django_bob_payments.parsers import MAX_BYTES, BodyTooLarge, BoundedJSONParser
from django_bob_payments.providers import get_provider
from django_bob_payments.providers.base import time_budget
from django_bob_payments.reports import hide_locals, loggable
from django_bob_payments.serializers import (
    BillingInformationResponseSerializer,
    BillingInformationSerializer,
    CancelSerializer,
    ChangePlanSerializer,
    CheckoutSerializer,
    CheckoutStateSerializer,
    InvoiceSerializer,
    OrderSerializer,
    ProductSerializer,
    ResumeSerializer,
    ReturnUrlSerializer,
    SubscriptionSerializer,
    VatValidationSerializer,
    VatVerdictSerializer,
)
from django_bob_payments.services.webhooks import ReceiveResult

logger = logging.getLogger("django_bob_payments.webhooks")


# JSON with bounded nesting, and the forms of the browsable API.
API_PARSERS = [BoundedJSONParser, FormParser, MultiPartParser]


def api_schema(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    drf-spectacular's `extend_schema` for a view method, built on drf-spectacular's
    `AutoSchema` whatever the host's `DEFAULT_SCHEMA_CLASS` (which `extend_schema`
    would read when this module is imported), so the host's other APIs are untouched.
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        method.schema = AutoSchema  # type: ignore[attr-defined]
        return extend_schema(**kwargs)(method)

    return decorator


def _refuse(message: str, code: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


def _refused(err: WebhookVerificationError) -> JsonResponse:
    """A 400 for the caller's mistake; a 500 for our missing configuration, so Stripe retries."""
    return _refuse(err.args[0], err.code, status=500 if err.code == "not_configured" else 400)


def _misconfigured(err: BobPaymentsImproperlyConfigured) -> JsonResponse:
    """Our configuration (a queued mode without its engine): a JSON 500, so Stripe retries once it is fixed."""
    logger.error("A Stripe webhook could not be handled: %s", err)
    return _refuse("Webhooks are not configured correctly on this site.", "not_configured", status=500)


def _method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = JsonResponse(
        {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"}, status=405
    )
    response["Allow"] = ", ".join(allowed)
    return response


class StripeWebhookView(View):
    """
    `POST /api/payment/stripe/webhook/`: verify, store and apply one Stripe event.

    Answers 200 once the event is stored (applied, a duplicate, ignored or rejected), 400
    with a short reason when the request is not a verified Stripe event (nothing is stored,
    and the body is never echoed), and 500 when applying it failed: the event is stored as
    failed and Stripe delivers it again.
    """

    http_method_names = ["post"]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Stripe's requests carry no CSRF token. The view function is marked exempt once,
        # where csrf_exempt on dispatch (method_decorator) would wrap it again on every request.
        return csrf_exempt(super().as_view(**initkwargs))

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        return _method_not_allowed(request, self._allowed_methods())

    @sensitive_variables("payload", "body")
    def post(self, request: HttpRequest) -> JsonResponse:
        try:
            payload, body = verified_event(request)
            result = get_payment_interactor().handle_webhook_from_stripe(payload, body)
        except WebhookVerificationError as err:
            return _refused(err)
        except BobPaymentsImproperlyConfigured as err:
            return _misconfigured(err)
        return _answer(result)


class AsyncStripeWebhookView(View):
    """
    The same endpoint as `StripeWebhookView`, as an async view for ASGI deployments: the
    event is applied through `PaymentInteractor.ahandle_webhook_from_stripe`, off the event
    loop. Route `api/payment/stripe/webhook/` to `async_stripe_webhook` before including the
    app's URLs.
    """

    http_method_names = ["post"]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return csrf_exempt(super().as_view(**initkwargs))

    async def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        return _method_not_allowed(request, self._allowed_methods())

    @sensitive_variables("payload", "body")
    async def post(self, request: HttpRequest) -> JsonResponse:
        try:
            payload, body = verified_event(request)
            result = await get_payment_interactor().ahandle_webhook_from_stripe(payload, body)
        except WebhookVerificationError as err:
            return _refused(err)
        except BobPaymentsImproperlyConfigured as err:
            return _misconfigured(err)
        return _answer(result)


@sensitive_variables("body", "payload")
def verified_event(request: HttpRequest) -> tuple[dict, bytes]:
    """The request's verified payload and its body as received; WebhookVerificationError otherwise."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise WebhookVerificationError("The Content-Length header is not a number.", code="invalid_length") from None
    limit = bob_settings.WEBHOOK_MAX_BODY_SIZE
    if length > limit or len(request.body) > limit:
        raise WebhookVerificationError(f"The body is larger than {limit} bytes.", code="body_too_large")
    if not bob_settings.webhook_secrets:
        # Our configuration, not the caller's fault: 500, so Stripe retries once it is fixed.
        logger.error('A Stripe webhook arrived but BOB_PAYMENTS["STRIPE_WEBHOOK_SECRET"] is not set.')
        raise WebhookVerificationError("Webhooks are not configured on this site.", code="not_configured")
    return get_provider("stripe").verify_webhook(request.body, request.headers), request.body


def _answer(result: ReceiveResult) -> JsonResponse:
    if result.failed:
        return JsonResponse(
            {"error": "The event could not be applied; it is stored and will be retried.", "code": "event_failed"},
            status=500,
        )
    event = result.event
    return JsonResponse({"id": event.event_id, "status": event.status, "duplicate": result.duplicate})


# Not wrapped in ATOMIC_REQUESTS: the inbox manages its transactions, and a failure record
# must survive the failed handler's rollback.
stripe_webhook = transaction.non_atomic_requests(StripeWebhookView.as_view())
async_stripe_webhook = transaction.non_atomic_requests(AsyncStripeWebhookView.as_view())


# The REST API


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """A path under the app's prefix that names no endpoint (or an ID that is not a number)."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ProviderUnavailable(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The payment provider failed; try again."
    default_code = "provider_error"


class ProviderTimedOut(exceptions.APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "The payment provider did not answer in time; try again."
    default_code = "provider_timeout"


ORGANIZATION = OpenApiParameter(
    "organization",
    str,
    description="Act for this organization, whose billing the caller manages.",
    required=False,
)
ERROR = OpenApiResponse(description="An error: {detail} or field errors.")
URL_RESPONSE = inline_serializer("UrlResponse", {"url": serializers.URLField()})


class BoundedBodyMixin:
    """
    A body larger than ``parsers.MAX_BYTES`` is a JSON 400 (``body_too_large``) before it is
    read, and Django's own limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``) answers the same way
    instead of its HTML page.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BYTES:
            raise BodyTooLarge()
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestDataTooBig):
            exc = BodyTooLarge()
        return super().handle_exception(exc)


class CustomerAPIView(BoundedBodyMixin, GenericAPIView):
    """
    A view acting for the caller's customer: their own, or, with `?organization=<id>`,
    the organization's when they may manage its billing.
    """

    # The app's views carry drf-spectacular's schema, whatever the host's DEFAULT_SCHEMA_CLASS.
    schema = AutoSchema()
    parser_classes = API_PARSERS

    permission_classes = [permissions.IsAuthenticated]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # The provider calls of one request share STRIPE_REQUEST_BUDGET, so that a provider
        # that hangs gets the client a JSON 504 before the worker's own timeout kills it.
        with time_budget(bob_settings.STRIPE_REQUEST_BUDGET):
            return super().dispatch(request, *args, **kwargs)

    @cached_property
    def interactor(self) -> PaymentInteractor:
        return get_payment_interactor()

    def get_customer(self) -> Customer:
        try:
            return self.interactor.get_customer(self.request.user, self.request.query_params.get("organization"))
        except BillingPermissionDenied as err:
            raise exceptions.PermissionDenied(detail=err.args[0], code=err.code) from err

    def handle_exception(self, exc: Exception) -> Response:
        """The app's errors as API errors: limits and missing provider objects are 409s, a
        provider failure a 502 (with its code and request ID, never its raw answer)."""
        if isinstance(exc, (PurchaseNotAllowed, NotAtProvider, ActionNotAllowed)):
            exc = Conflict(detail=exc.args[0], code=exc.code)
        elif isinstance(exc, ProviderTimeout):
            logger.warning("Payment provider timeout: %s", loggable(exc))
            exc = ProviderTimedOut(detail="The payment provider did not answer in time; try again.")
        elif isinstance(exc, ProviderError):
            logger.warning("Payment provider error: %s", loggable(exc))
            exc = ProviderUnavailable(
                detail=f"The payment provider failed ({exc.code}); try again.", code="provider_error"
            )
        response = super().handle_exception(exc)
        # A machine-readable code beside the message, as the app's errors carry one.
        detail = getattr(exc, "detail", None)
        if isinstance(response.data, dict) and "detail" in response.data and hasattr(detail, "code"):
            response.data["code"] = detail.code
        return response


@hide_locals
class BillingInformationView(CustomerAPIView):
    """
    `/api/payment/billing/`: the caller's billing information. GET reads it, POST creates
    it, PUT replaces it, PATCH changes some fields. A VAT number is checked (format,
    checksum, then VIES) when it or the country changes; a wrong one is a 400 on
    `vat_number`, one VIES cannot check now is saved as `unverified`.
    """

    serializer_class = BillingInformationSerializer

    def get_billing(self, customer: Customer) -> BillingInformation:
        billing = BillingInformation.objects.filter(customer=customer).first()
        if billing is None:
            raise exceptions.NotFound("No billing information yet: POST it first.", code="no_billing_information")
        return billing

    def get_object(self) -> BillingInformation:
        """The caller's billing information (404 before it exists): prefills the browsable API's forms."""
        return self.get_billing(self.get_customer())

    @property
    def allowed_methods(self) -> list[str]:
        """
        For OPTIONS and the browsable API: POST until the billing information exists, then
        PUT and PATCH, so they offer what can succeed. Other requests skip the look-up.
        """
        methods = super().allowed_methods
        request = getattr(self, "request", None)
        renderer = getattr(request, "accepted_renderer", None)
        describing = request is not None and (request.method == "OPTIONS" or getattr(renderer, "format", "") == "api")
        if not describing or not request.user.is_authenticated:
            return methods
        try:
            exists = BillingInformation.objects.filter(customer=self.get_customer()).exists()
        except exceptions.APIException:
            return methods
        hidden = {"POST"} if exists else {"PUT", "PATCH"}
        return [method for method in methods if method not in hidden]

    @api_schema(
        parameters=[ORGANIZATION], responses={200: BillingInformationResponseSerializer, 403: ERROR, 404: ERROR}
    )
    def get(self, request: Request) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @api_schema(
        parameters=[ORGANIZATION],
        request=BillingInformationSerializer,
        responses={201: BillingInformationResponseSerializer, 400: ERROR, 403: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        customer = self.get_customer()
        if BillingInformation.objects.filter(customer=customer).exists():
            raise Conflict("Billing information exists already: use PUT or PATCH.", code="billing_information_exists")
        return self._save(customer, None, partial=False, created=True)

    @api_schema(
        parameters=[ORGANIZATION],
        request=BillingInformationSerializer,
        responses={200: BillingInformationResponseSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def put(self, request: Request) -> Response:
        customer = self.get_customer()
        return self._save(customer, self.get_billing(customer), partial=False)

    @api_schema(
        parameters=[ORGANIZATION],
        request=BillingInformationSerializer(partial=True),
        responses={200: BillingInformationResponseSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def patch(self, request: Request) -> Response:
        customer = self.get_customer()
        return self._save(customer, self.get_billing(customer), partial=True)

    def _save(self, customer: Customer, billing, *, partial: bool, created: bool = False) -> Response:
        context = {"interactor": self.interactor, "request": self.request}
        serializer = self.serializer_class(billing, data=self.request.data, partial=partial, context=context)
        serializer.is_valid(raise_exception=True)
        saved = self.interactor.create_user_billing_info(customer, serializer.validated_data, context.get("verdict"))
        return Response(
            self.serializer_class(saved).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class VatValidationThrottle(UserRateThrottle):
    """Limits VAT checks per user (VIES limits us), at `BOB_PAYMENTS["VAT_VALIDATION_RATE"]`."""

    scope = "bob_payments_vat_validation"

    def get_rate(self) -> str | None:
        return bob_settings.VAT_VALIDATION_RATE


@hide_locals
class VatValidationView(BoundedBodyMixin, GenericAPIView):
    """
    `POST /api/payment/vat/validate/` with `vat_number` and `country`: check a number
    without saving it (for forms). Answers 200 with the verdict: `valid`, `invalid`
    (with a `code` such as `invalid_checksum` or `country_mismatch`), `unverified`
    (VIES could not answer; `code` is its error) or `not_applicable`.
    """

    # The app's views carry drf-spectacular's schema, whatever the host's DEFAULT_SCHEMA_CLASS.
    schema = AutoSchema()
    parser_classes = API_PARSERS

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [VatValidationThrottle]
    serializer_class = VatValidationSerializer

    @api_schema(request=VatValidationSerializer, responses={200: VatVerdictSerializer, 400: ERROR, 429: ERROR})
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verdict = get_payment_interactor().validate_vies(
            serializer.validated_data["vat_number"], str(serializer.validated_data["country"])
        )
        return Response(VatVerdictSerializer(verdict).data)


class ProductListView(GenericAPIView):
    """`GET /api/payment/products/`: the public catalog, active products with active pricings."""

    serializer_class = ProductSerializer

    # The app's views carry drf-spectacular's schema, whatever the host's DEFAULT_SCHEMA_CLASS.
    schema = AutoSchema()

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @api_schema(responses={200: ProductSerializer(many=True)})
    def get(self, request: Request) -> Response:
        products = get_payment_interactor().products.catalog()
        response = Response(ProductSerializer(products, many=True).data)
        response["Cache-Control"] = "public, max-age=300"
        return response


# Where the provider sends the customer back when neither the caller nor the settings say:
# the requesting site's root, with a query naming the outcome. Stripe fills in
# {CHECKOUT_SESSION_ID}.
DEFAULT_RETURN_QUERIES = {
    "success_url": "checkout=success&session_id={CHECKOUT_SESSION_ID}",
    "cancel_url": "checkout=canceled",
    "return_url": "portal=returned",
}


def return_url_hosts() -> set[str]:
    """
    The hosts a return URL may point at: ``RETURN_URL_HOSTS``, else those of the URL
    settings and the exact host names of ``ALLOWED_HOSTS``. A wildcard ("*", ".example.com")
    allows nothing here: it would let any ``Host`` header choose where customers are sent.
    """
    configured = bob_settings.RETURN_URL_HOSTS
    if configured is not None:
        return {str(host).lower() for host in configured}
    urls = (bob_settings.CHECKOUT_SUCCESS_URL, bob_settings.CHECKOUT_CANCEL_URL, bob_settings.PORTAL_RETURN_URL)
    hosts = {urlsplit(url).hostname for url in urls if url} - {None}
    hosts |= {host.lower() for host in settings.ALLOWED_HOSTS if host and host != "*" and not host.startswith(".")}
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        # Django's own default when DEBUG is on and ALLOWED_HOSTS is empty.
        hosts |= {"localhost", "127.0.0.1", "[::1]"}
    return hosts


def _allowed_return_url(url: str, hosts: set[str]) -> bool:
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={urlsplit(url).netloc}, require_https=not settings.DEBUG):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and (parts.hostname or "").lower() in hosts


def _return_url(request: Request, given: str | None, default: str | None, name: str) -> str:
    """
    `given` when it points at one of the return URL hosts, else the setting, else the
    requesting site's root with a query naming the outcome (`DEFAULT_RETURN_QUERIES`), when
    the requesting host is one of them.
    """
    hosts = return_url_hosts()
    if given:
        if not _allowed_return_url(given, hosts):
            raise exceptions.ValidationError(
                {
                    name: [
                        exceptions.ErrorDetail("This URL is not on one of this site's hosts.", code="host_not_allowed")
                    ]
                }
            )
        return given
    if default:
        return default
    if (urlsplit(f"//{request.get_host()}").hostname or "") not in hosts:
        raise exceptions.ValidationError(
            {
                name: [
                    exceptions.ErrorDetail(
                        "No return URL is configured and this host is not one of RETURN_URL_HOSTS.",
                        code="host_not_allowed",
                    )
                ]
            }
        )
    return f"{request.build_absolute_uri('/')}?{DEFAULT_RETURN_QUERIES[name]}"


@hide_locals
class CheckoutView(CustomerAPIView):
    """
    `POST /api/payment/checkout/` with `pricing` and `quantity`: a pending order and
    the provider's checkout URL to send the customer to. 409 when the product's limits
    refuse the purchase or the pricing is not at the provider yet.
    """

    serializer_class = CheckoutSerializer

    @api_schema(
        parameters=[ORGANIZATION],
        request=CheckoutSerializer,
        responses={
            201: inline_serializer(
                "CheckoutResponse", {"order": serializers.IntegerField(), "url": serializers.URLField()}
            ),
            400: ERROR,
            403: ERROR,
            409: ERROR,
            502: ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = self.get_customer()
        pricing = self.interactor.products.get_active_pricing(data["pricing"])
        if pricing is None:
            raise exceptions.ValidationError({"pricing": ["No active pricing with this ID."]}, code="unknown_pricing")
        success_url = _return_url(request, data.get("success_url"), bob_settings.CHECKOUT_SUCCESS_URL, "success_url")
        cancel_url = _return_url(request, data.get("cancel_url"), bob_settings.CHECKOUT_CANCEL_URL, "cancel_url")
        attempt, url = self.interactor.start_checkout(customer, pricing, data["quantity"], success_url, cancel_url)
        # Every URL the API answers is absolute (the fake provider's page is on this site).
        return Response(
            {"order": attempt.order_id, "url": request.build_absolute_uri(url)}, status=status.HTTP_201_CREATED
        )


class CheckoutStateView(CustomerAPIView):
    """
    `GET /api/payment/checkout/<session_id>/`: the outcome of one of the caller's checkouts,
    for the success page: `state` (`processing`, `complete`, `expired`, `failed`,
    `canceled`), the order with its payment attempts, and the subscription when there is
    one. Before the provider's webhook arrives, the provider is asked once per session and
    its answer applied as the webhook would be, so the page turns active without waiting.
    404 for a session that is not the caller's.
    """

    serializer_class = CheckoutStateSerializer

    @api_schema(parameters=[ORGANIZATION], responses={200: CheckoutStateSerializer, 403: ERROR, 404: ERROR, 502: ERROR})
    def get(self, request: Request, session_id: str) -> Response:
        found = self.interactor.checkout_state(self.get_customer(), session_id)
        if found is None:
            raise exceptions.NotFound("No checkout of yours has this session ID.", code="unknown_checkout")
        return Response(CheckoutStateSerializer(found).data)


@hide_locals
class PortalView(CustomerAPIView):
    """`POST /api/payment/portal/`: the provider's customer-portal URL. 409 before any purchase."""

    serializer_class = ReturnUrlSerializer

    @api_schema(
        parameters=[ORGANIZATION],
        request=ReturnUrlSerializer,
        responses={200: URL_RESPONSE, 400: ERROR, 403: ERROR, 409: ERROR, 502: ERROR},
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return_url = _return_url(
            request, serializer.validated_data.get("return_url"), bob_settings.PORTAL_RETURN_URL, "return_url"
        )
        url = self.interactor.get_customer_management_portal_link(self.get_customer(), return_url)
        return Response({"url": request.build_absolute_uri(url)})


class SubscriptionListView(CustomerAPIView):
    """`GET /api/payment/subscriptions/`: the caller's subscriptions, newest first."""

    serializer_class = SubscriptionSerializer

    @api_schema(parameters=[ORGANIZATION], responses={200: SubscriptionSerializer(many=True), 403: ERROR})
    def get(self, request: Request) -> Response:
        subscriptions = (
            Subscription.objects.filter(customer=self.get_customer()).select_related("pricing__product").order_by("-pk")
        )
        return Response(SubscriptionSerializer(subscriptions, many=True).data)


class SubscriptionRefreshView(CustomerAPIView):
    """
    `POST /api/payment/subscriptions/refresh/`: bring the caller's subscriptions up to date
    with Stripe (after the customer portal), at most once a minute; answers whether Stripe
    was asked and the subscriptions, as `GET subscriptions/` lists them.
    """

    serializer_class = SubscriptionSerializer

    @api_schema(
        parameters=[ORGANIZATION],
        request=None,
        responses={
            200: inline_serializer(
                "SubscriptionRefresh",
                {"refreshed": serializers.BooleanField(), "subscriptions": SubscriptionSerializer(many=True)},
            ),
            403: ERROR,
            502: ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        customer = self.get_customer()
        refreshed = self.interactor.refresh_subscriptions(customer)
        subscriptions = (
            Subscription.objects.filter(customer=customer).select_related("pricing__product").order_by("-pk")
        )
        return Response(
            {"refreshed": refreshed, "subscriptions": SubscriptionSerializer(subscriptions, many=True).data}
        )


@hide_locals
class SubscriptionActionView(CustomerAPIView):
    """
    `POST /api/payment/subscriptions/<id>/cancel/` (`immediately`: false by default),
    `.../resume/` and `.../change-plan/` (`pricing` and/or `quantity`). Each checks the
    subscription's state (409 with a code when it does not allow the action), calls the
    provider, and answers the subscription as the provider confirmed it; the stored row
    follows the provider's webhook.
    """

    action = ""

    def get_serializer_class(self) -> type[serializers.Serializer]:
        """The request body of this action (resume takes none), for the schema."""
        return {"cancel": CancelSerializer, "change-plan": ChangePlanSerializer}.get(self.action, ResumeSerializer)

    @api_schema(
        parameters=[ORGANIZATION],
        responses={200: SubscriptionSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 502: ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        subscription = get_object_or_404(
            Subscription.objects.select_related("pricing__product"), pk=pk, customer=self.get_customer()
        )
        if self.action == "cancel":
            serializer = CancelSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            answered = self.interactor.cancel_subscription(
                subscription, immediately=serializer.validated_data["immediately"]
            )
        elif self.action == "resume":
            answered = self.interactor.resume_subscription(subscription)
        else:
            serializer = ChangePlanSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            pricing = subscription.pricing
            if "pricing" in data:
                pricing = self.interactor.products.get_active_pricing(data["pricing"])
                if pricing is None:
                    raise exceptions.ValidationError({"pricing": ["No active pricing with this ID."]})
            answered = self.interactor.change_plan(
                subscription, pricing, data.get("quantity", subscription.quantity), at_period_end=data["at_period_end"]
            )
        return Response(SubscriptionSerializer(answered).data)


class OrderListView(CustomerAPIView):
    """`GET /api/payment/orders/`: the caller's orders with their payment attempts, newest first."""

    serializer_class = OrderSerializer

    @api_schema(parameters=[ORGANIZATION], responses={200: OrderSerializer(many=True), 403: ERROR})
    def get(self, request: Request) -> Response:
        orders = Order.objects.filter(customer=self.get_customer()).prefetch_related("payment_attempts").order_by("-pk")
        return Response(OrderSerializer(orders, many=True).data)


class InvoiceListView(CustomerAPIView):
    """`GET /api/payment/invoices/`: the caller's invoices, newest first; drafts are not shown."""

    serializer_class = InvoiceSerializer

    @api_schema(parameters=[ORGANIZATION], responses={200: InvoiceSerializer(many=True), 403: ERROR})
    def get(self, request: Request) -> Response:
        invoices = (
            Invoice.objects.filter(customer=self.get_customer())
            .exclude(status=Invoice.Status.DRAFT)
            .order_by("-created_at", "-pk")
        )
        return Response(InvoiceSerializer(invoices, many=True).data)


class ApiRootView(GenericAPIView):
    """`GET /api/payment/`: the app's endpoints, each with its absolute URL."""

    # The app's views carry drf-spectacular's schema, whatever the host's DEFAULT_SCHEMA_CLASS.
    schema = AutoSchema()

    permission_classes = [permissions.AllowAny]
    # The names of the URLs listed, with no argument to fill in.
    endpoints = ("billing", "vat-validate", "products", "checkout", "portal", "subscriptions", "orders", "invoices")

    @api_schema(exclude=True)
    def get(self, request: Request) -> Response:
        listed = {name: request.build_absolute_uri(reverse(f"bob_payments:{name}")) for name in self.endpoints}
        listed["schema"] = request.build_absolute_uri(reverse("bob_payments:schema"))
        return Response(listed)


class OpenApiSchemaView(SpectacularAPIView):
    """`GET /api/payment/schema/`: the OpenAPI 3 schema of this app's API (JSON or YAML)."""

    schema = AutoSchema()

    permission_classes = [permissions.AllowAny]
    custom_settings = {
        "TITLE": "django-bob-payments",
        "DESCRIPTION": "Billing data, VAT checks, catalog, checkout, portal, subscriptions, orders and invoices.",
        "VERSION": __version__,
    }

    @api_schema(exclude=True)
    def get(self, request: Request, *args, **kwargs) -> Response:
        # Only this app's URLs, under the prefix the project mounted them at.
        prefix = reverse("bob_payments:products").removesuffix("products/").lstrip("/")
        self.urlconf = [path(prefix, include("django_bob_payments.urls"))]
        return super().get(request, *args, **kwargs)


class FakeCheckoutView(View):
    """
    `/api/payment/fake/checkout/<id>/`: the fake provider's hosted checkout page. GET
    shows what is bought; POST `action=pay` pays it (the subscription starts) and redirects
    to the success URL, `action=cancel` goes to the cancel URL. Only with the fake provider.
    """

    def dispatch(self, request: HttpRequest, *args, **kwargs):
        if bob_settings.PROVIDER != "fake":
            raise Http404("The fake provider is not enabled.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, session_id: str):
        provider = get_payment_interactor().get_provider("fake")
        try:
            session = provider.checkout_page(session_id)
        except ProviderError as err:
            raise Http404("No such checkout session.") from err
        return render(request, "django_bob_payments/fake/checkout.html", {"session": session})

    def post(self, request: HttpRequest, session_id: str):
        provider = get_payment_interactor().get_provider("fake")
        try:
            if request.POST.get("action") == "pay":
                target = provider.complete_checkout(session_id)
            else:
                target = provider.expire_checkout(session_id)
        except ProviderError as err:
            raise Http404("No such checkout session.") from err
        return redirect(target)
