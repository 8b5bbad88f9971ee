"""
A local, stateful Stripe API for the tests: the real ``stripe`` SDK talks to it over HTTP.

It speaks the subset of the API the app uses, in the shapes of the API version the pinned
SDK speaks, and behaves like Stripe where the app's correctness depends on it:

- parameters are form-encoded like the SDK sends them, and unknown ones are refused with
  Stripe's 400 ``parameter_unknown``; the accepted names come from the SDK's own
  ``stripe.params`` type definitions, so they follow the pinned version;
- lists are newest first, paged with ``limit`` (1-100), ``starting_after`` and ``has_more``;
- an ``Idempotency-Key`` replays the first answer, and the same key with other parameters
  is a 400 ``idempotency_error``;
- errors use Stripe's JSON error format and HTTP statuses;
- ``fail()`` queues faults (any status, or a dropped connection before or after the write
  took effect) and ``calls`` counts requests per endpoint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
import stripe.params
import stripe.params.billing_portal
import stripe.params.checkout

from django_bob_payments.testing import stripe_objects
from tests import stripe_params

API_VERSION = stripe.api_version

# Request options the SDK's params types carry; they never travel as parameters.
_REQUEST_OPTIONS = {
    "api_key",
    "content_type",
    "headers",
    "idempotency_key",
    "max_network_retries",
    "stripe_account",
    "stripe_context",
    "stripe_version",
}


def _allowed(params_type_name: str) -> frozenset[str]:
    return _allowed_in(stripe.params, params_type_name)


class Allowed(frozenset):
    """The parameter names an endpoint accepts, and the SDK's params type they come from."""

    params_type: type | None = None


def _allowed_in(module: Any, params_type_name: str) -> frozenset[str]:
    """The parameter names an endpoint accepts, from the SDK's params type."""
    params_type = getattr(module, params_type_name)
    allowed = Allowed(set(params_type.__annotations__) - _REQUEST_OPTIONS)
    allowed.params_type = params_type
    return allowed


class EmulatedError(Exception):
    """An error answer in Stripe's format."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code=None, param=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


def decode_form(body: str) -> dict[str, Any]:
    """Turn ``a[b][0]=x`` form encoding back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "[]":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _listify(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value


def _bool(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise EmulatedError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise EmulatedError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None


@dataclass
class Fault:
    method: str
    route: str
    status: int | None
    drop: str | None
    remaining: int
    headers: dict[str, str]
    hang: float = 0.0


ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
EU_VAT_RE = re.compile(r"^(ATU\d{8}|[A-Z]{2}[0-9A-Z+*]{2,13})$")


class StripeEmulator:
    """The state and behaviour of the emulated account. ``start()`` serves it over HTTP."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.reset()

    # Control, from the tests

    def reset(self) -> None:
        """Forget every object, call count, idempotency key, fault and revoked key."""
        with self.lock:
            self.revoked_keys: set[str] = set()
            self.objects: dict[str, dict[str, dict[str, Any]]] = {
                "customer": {},
                "tax_id": {},
                "product": {},
                "price": {},
                "checkout.session": {},
                "billing_portal.session": {},
                "subscription": {},
                "subscription_schedule": {},
                "event": {},
                "invoice": {},
            }
            # Events whose delivery to every endpoint failed (Stripe's delivery_success=false).
            self.undelivered_events: set[str] = set()
            self.tax_ids_by_customer: dict[str, list[dict[str, Any]]] = {}
            self.session_requests: dict[str, dict[str, Any]] = {}
            self._position_cache: dict[str, dict[str, int]] = {}
            self.calls: Counter[str] = Counter()
            self.idempotency: dict[str, tuple[str, int, dict[str, Any]]] = {}
            self.faults: list[Fault] = []
            self._clock = itertools.count(int(time.time()))

    def fail(
        self,
        method: str,
        route: str,
        *,
        status: int | None = None,
        drop: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        hang: float = 0.0,
    ) -> None:
        """
        Answer the next ``times`` requests to ``route`` (e.g. ``/v1/customers/:id``) with
        ``status``, or drop the connection: ``drop="before"`` the request takes effect,
        ``drop="after"`` it took effect (the answer is lost, an idempotent retry replays it).
        With ``hang`` (seconds) and ``drop``, the connection stays silent that long first:
        a provider that hangs, before or after the write.
        """
        assert (status is None) != (drop is None), "give a status or a drop mode"
        with self.lock:
            self.faults.append(Fault(method.upper(), route, status, drop, times, headers or {}, hang))

    def count(self, method: str | None = None, route: str | None = None) -> int:
        """Requests received, optionally only those of one method and route."""
        with self.lock:
            return sum(
                number
                for key, number in self.calls.items()
                if (method is None or key.split(" ")[0] == method.upper())
                and (route is None or key.split(" ")[1] == route)
            )

    @property
    def write_calls(self) -> int:
        return self.count("POST") + self.count("DELETE")

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        """One object as the emulator holds it (changes to it are Stripe's state)."""
        with self.lock:
            return self.objects[kind][object_id]

    def record_event(self, event: dict[str, Any], *, delivered: bool = True) -> None:
        """Keep ``event`` for the Events API (Stripe keeps 30 days), as delivered or not."""
        with self.lock:
            self.objects["event"][event["id"]] = event
            if not delivered:
                self.undelivered_events.add(event["id"])

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Hold ``obj`` as Stripe's state (an invoice Stripe made, say); returns it."""
        with self.lock:
            self.objects[kind][obj["id"]] = obj
            return obj

    def all(self, kind: str) -> list[dict[str, Any]]:
        """The live objects of a kind, oldest first."""
        with self.lock:
            return [obj for obj in self.objects[kind].values() if not obj.get("deleted")]

    # HTTP serving

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (a free port by default) in a background thread; returns the base URL."""
        handler = type("Handler", (_Handler,), {"emulator": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, name="stripe-emulator", daemon=True)
        thread.start()
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def control(self, method: str, path: str) -> tuple[int, dict, dict]:
        """Control endpoints for a separate process (benchmarks): read or clear the call counts."""
        with self.lock:
            if method == "GET" and path == "/_emulator/calls":
                return 200, dict(self.calls), {}
            if method == "POST" and path == "/_emulator/calls/clear":
                self.calls.clear()
                return 200, {}, {}
        return 404, {"error": {"message": "Unknown control endpoint."}}, {}

    # Request handling

    def handle(self, method: str, path: str, query: str, body: str, headers: dict[str, str]) -> tuple[int, dict, dict]:
        """Answer one request: (status, JSON body, extra headers). Raises _Drop for a dropped connection."""
        route, handler, path_args = self._route(method, path)
        with self.lock:
            self.calls[f"{method} {route}"] += 1
            fault = self._take_fault(method, route)
        if fault is not None and fault.drop == "before":
            time.sleep(fault.hang)
            raise _Drop
        if fault is not None and fault.status is not None:
            kind = {429: "rate_limit_error", 401: "authentication_error"}.get(fault.status, "api_error")
            error = EmulatedError(fault.status, f"Emulated {fault.status}.", type=kind)
            return fault.status, error.body, fault.headers

        auth = headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        if not key.startswith(("sk_test_", "rk_test_")) or key in self.revoked_keys:
            error = EmulatedError(401, "Invalid API Key provided.", type="invalid_request_error")
            return 401, error.body, {}
        version = headers.get("stripe-version")
        if version and version != API_VERSION:
            error = EmulatedError(400, f"This emulator speaks API version {API_VERSION}, not {version}.")
            return 400, error.body, {}

        params = decode_form(query if method in ("GET", "DELETE") else body)
        idempotency_key = headers.get("idempotency-key") if method == "POST" else None
        fingerprint = hashlib.sha256(f"{method} {path} {json.dumps(params, sort_keys=True)}".encode()).hexdigest()
        with self.lock:
            if idempotency_key and idempotency_key in self.idempotency:
                first_fingerprint, status, answer = self.idempotency[idempotency_key]
                if first_fingerprint != fingerprint:
                    error = EmulatedError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        "first used with.",
                        type="idempotency_error",
                    )
                    return 400, error.body, {}
                return status, answer, {"Idempotent-Replayed": "true"}
            try:
                status, answer = 200, handler(params, **path_args)
            except EmulatedError as error:
                status, answer = error.status, error.body
            if idempotency_key and status < 500:
                self.idempotency[idempotency_key] = (fingerprint, status, answer)
        if fault is not None and fault.drop == "after":
            time.sleep(fault.hang)
            raise _Drop
        return status, answer, {}

    def _take_fault(self, method: str, route: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.route == route and fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., dict], dict[str, str]]:
        for route_method, pattern, route, handler_name in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                return route, getattr(self, handler_name), match.groupdict()
        for _, pattern, route, _ in _ROUTES:
            if pattern.match(path):
                return route, self._unsupported_method, {}
        return path, self._unknown_path, {}

    def _unknown_path(self, params: dict) -> dict:
        raise EmulatedError(404, "Unrecognized request URL.")

    def _unsupported_method(self, params: dict, **kwargs: str) -> dict:
        raise EmulatedError(400, "Unrecognized request URL (method not allowed).")

    # Helpers

    def _now(self) -> int:
        return next(self._clock)

    def _check_params(self, params: dict, allowed: frozenset[str], required: tuple[str, ...] = ()) -> None:
        for name in params:
            if name not in allowed:
                raise EmulatedError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
        params_type = getattr(allowed, "params_type", None)
        if params_type is not None:
            # Every value against the SDK's types: nested names, enums, numbers, empty strings.
            try:
                stripe_params.conform(params_type, params)
            except stripe_params.ParamError as err:
                raise EmulatedError(400, str(err), code=err.code, param=err.param) from None
        for name in required:
            if params.get(name) in (None, ""):
                raise EmulatedError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)

    def _get(self, kind: str, object_id: str) -> dict[str, Any]:
        obj = self.objects[kind].get(object_id)
        if obj is None or obj.get("deleted"):
            raise EmulatedError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
        return obj

    def _metadata(self, current: dict[str, str], update: Any) -> dict[str, str]:
        if update == "":
            return {}
        if not isinstance(update, dict):
            raise EmulatedError(400, "Invalid object", code="parameter_invalid_object", param="metadata")
        merged = dict(current)
        for key, value in update.items():
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def _list(self, kind: str, params: dict, matches: Callable[[dict], bool], url: str, render=None) -> dict:
        """A page of live, matching objects, newest first, after ``starting_after``."""
        limit = _int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise EmulatedError(400, "Invalid limit: must be between 1 and 100.", code="parameter_invalid_integer")
        objects = self.objects[kind]
        order = list(objects)  # insertion order, oldest first; dicts keep it
        position = len(order)
        starting_after = params.get("starting_after")
        if starting_after:
            if starting_after not in objects:
                raise EmulatedError(400, f"No such {kind}: '{starting_after}'", param="starting_after")
            position = self._positions(kind)[starting_after]
        page: list[dict] = []
        has_more = False
        for index in range(position - 1, -1, -1):
            obj = objects[order[index]]
            if obj.get("deleted") or not matches(obj):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(obj)
        render = render or (lambda obj: obj)
        return {"object": "list", "data": [render(obj) for obj in page], "has_more": has_more, "url": url}

    def _positions(self, kind: str) -> dict[str, int]:
        """Each object's index in creation order, cached until the kind grows."""
        cached = self._position_cache.get(kind)
        if cached is None or len(cached) != len(self.objects[kind]):
            cached = {object_id: index for index, object_id in enumerate(self.objects[kind])}
            self._position_cache[kind] = cached
        return cached

    # Events

    def list_events(self, params: dict) -> dict:
        self._check_params(params, _allowed("EventListParams"))
        created = params.get("created")
        bounds = created if isinstance(created, dict) else {} if created is None else {"eq": created}
        unknown = set(bounds) - {"gt", "gte", "lt", "lte", "eq"}
        if unknown:
            raise EmulatedError(400, f"Received unknown parameter: created[{sorted(unknown)[0]}]", param="created")
        limits = {name: _int(value, f"created[{name}]") for name, value in bounds.items()}
        delivered = params.get("delivery_success")
        delivered = None if delivered is None else _bool(delivered, "delivery_success")
        types = params.get("types") or ([params["type"]] if params.get("type") else None)

        def matches(event: dict) -> bool:
            at = event["created"]
            if any(
                (name == "gt" and not at > value)
                or (name == "gte" and not at >= value)
                or (name == "lt" and not at < value)
                or (name == "lte" and not at <= value)
                or (name == "eq" and at != value)
                for name, value in limits.items()
            ):
                return False
            if delivered is not None and (event["id"] not in self.undelivered_events) != delivered:
                return False
            return types is None or event["type"] in types

        return self._list("event", params, matches, "/v1/events")

    # Invoices (made by tests with put("invoice", ...): the emulator does not bill)

    def list_invoices(self, params: dict) -> dict:
        self._check_params(params, _allowed("InvoiceListParams"))
        customer, status, subscription = params.get("customer"), params.get("status"), params.get("subscription")

        def matches(invoice: dict) -> bool:
            details = (invoice.get("parent") or {}).get("subscription_details") or {}
            return (
                (customer is None or invoice["customer"] == customer)
                and (status is None or invoice["status"] == status)
                and (subscription is None or details.get("subscription") == subscription)
            )

        return self._list("invoice", params, matches, "/v1/invoices")

    # Customers

    def create_customer(self, params: dict) -> dict:
        self._check_params(params, _allowed("CustomerCreateParams"))
        customer = stripe_objects.customer(created=self._now())
        customer_id = customer["id"]
        tax_id_data = params.pop("tax_id_data", None) or []
        new_tax_ids = [self._build_tax_id(customer_id, item) for item in tax_id_data]
        self._apply_customer(customer, params)
        self.objects["customer"][customer_id] = customer
        for tax_id in new_tax_ids:
            self._store_tax_id(tax_id)
        return self._render_customer(customer, params.get("expand"))

    def update_customer(self, params: dict, id: str) -> dict:
        customer = self._get("customer", id)
        self._check_params(params, _allowed("CustomerUpdateParams"))
        self._apply_customer(customer, params)
        return self._render_customer(customer, params.get("expand"))

    def _apply_customer(self, customer: dict, params: dict) -> None:
        for field in ("name", "email", "description", "phone", "business_name", "individual_name"):
            if field in params:
                customer[field] = params[field] or None
        if "address" in params:
            address = params["address"]
            if address == "":
                customer["address"] = None
            else:
                # Names and empty values are checked against the SDK's types (_check_params).
                customer["address"] = {
                    key: address.get(key) or None
                    for key in ("city", "country", "line1", "line2", "postal_code", "state")
                }
        if "preferred_locales" in params:
            locales = params["preferred_locales"]
            customer["preferred_locales"] = list(locales)
        if "tax_exempt" in params:
            if params["tax_exempt"] not in ("none", "exempt", "reverse"):
                raise EmulatedError(400, "Invalid tax_exempt", code="parameter_invalid_string", param="tax_exempt")
            customer["tax_exempt"] = params["tax_exempt"]
        if "metadata" in params:
            customer["metadata"] = self._metadata(customer["metadata"], params["metadata"])

    def _render_customer(self, customer: dict, expand: Any, prefix: str = "") -> dict:
        rendered = dict(customer)
        if f"{prefix}tax_ids" in (expand or []):
            tax_ids = [tax for tax in self.tax_ids_by_customer.get(customer["id"], []) if not tax.get("deleted")]
            rendered["tax_ids"] = {
                "object": "list",
                "data": list(reversed(tax_ids)),
                "has_more": False,
                "url": f"/v1/customers/{customer['id']}/tax_ids",
            }
        return rendered

    def retrieve_customer(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        return self._render_customer(self._get("customer", id), params.get("expand"))

    def list_customers(self, params: dict) -> dict:
        self._check_params(params, _allowed("CustomerListParams"))
        email = params.get("email")
        expand = params.get("expand")
        return self._list(
            "customer",
            params,
            lambda obj: email is None or obj["email"] == email,
            "/v1/customers",
            render=lambda obj: self._render_customer(obj, expand, prefix="data."),
        )

    def delete_customer(self, params: dict, id: str) -> dict:
        customer = self._get("customer", id)
        customer["deleted"] = True
        for tax_id in self.tax_ids_by_customer.get(id, []):
            tax_id["deleted"] = True
        return {"id": id, "object": "customer", "deleted": True}

    # Tax IDs

    def _build_tax_id(self, customer_id: str, params: dict) -> dict:
        if not isinstance(params, dict):
            raise EmulatedError(400, "Invalid tax_id_data", param="tax_id_data")
        tax_type, value = params.get("type"), params.get("value")
        if not tax_type or not value:
            raise EmulatedError(400, "Missing required param: type or value.", code="parameter_missing")
        if tax_type == "eu_vat" and not EU_VAT_RE.match(value):
            raise EmulatedError(400, f"Invalid value for eu_vat: {value}", code="tax_id_invalid", param="value")
        return stripe_objects.tax_id(customer_id, value, type=tax_type, created=self._now())

    def create_tax_id(self, params: dict, customer: str) -> dict:
        self._get("customer", customer)
        self._check_params(params, _allowed("CustomerCreateTaxIdParams"), required=("type", "value"))
        tax_id = self._build_tax_id(customer, params)
        self._store_tax_id(tax_id)
        return tax_id

    def _store_tax_id(self, tax_id: dict) -> None:
        self.objects["tax_id"][tax_id["id"]] = tax_id
        self.tax_ids_by_customer.setdefault(tax_id["customer"], []).append(tax_id)

    def list_tax_ids(self, params: dict, customer: str) -> dict:
        self._get("customer", customer)
        self._check_params(params, _allowed("CustomerListTaxIdsParams"))
        mine = {tax["id"] for tax in self.tax_ids_by_customer.get(customer, [])}
        return self._list("tax_id", params, lambda obj: obj["id"] in mine, f"/v1/customers/{customer}/tax_ids")

    def delete_tax_id(self, params: dict, customer: str, id: str) -> dict:
        tax_id = self._get("tax_id", id)
        if tax_id["customer"] != customer:
            raise EmulatedError(404, f"No such tax_id: '{id}'", code="resource_missing", param="id")
        tax_id["deleted"] = True
        return {"id": id, "object": "tax_id", "deleted": True}

    # Products

    def create_product(self, params: dict) -> dict:
        self._check_params(params, _allowed("ProductCreateParams"), required=("name",))
        product_id = params.get("id") or stripe_objects.new_id("prod")
        if product_id in self.objects["product"]:
            raise EmulatedError(400, f"Product already exists: {product_id}", code="resource_already_exists")
        now = self._now()
        product = stripe_objects.product(id=product_id, created=now, updated=now, name=params["name"])
        self._apply_product(product, params)
        self.objects["product"][product_id] = product
        return product

    def update_product(self, params: dict, id: str) -> dict:
        product = self._get("product", id)
        self._check_params(params, _allowed("ProductUpdateParams"))
        self._apply_product(product, params)
        product["updated"] = self._now()
        return product

    def _apply_product(self, product: dict, params: dict) -> None:
        for field in ("name", "description", "unit_label", "statement_descriptor", "url"):
            if field in params:
                if field == "name" and not params[field]:
                    raise EmulatedError(400, "A product's name cannot be empty.", param="name")
                product[field] = params[field] or None
        if "active" in params:
            product["active"] = _bool(params["active"], "active")
        if "marketing_features" in params:
            features = params["marketing_features"]
            product["marketing_features"] = [] if features == "" else [{"name": item["name"]} for item in features]
        if "metadata" in params:
            product["metadata"] = self._metadata(product["metadata"], params["metadata"])

    def retrieve_product(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        return self._get("product", id)

    def list_products(self, params: dict) -> dict:
        self._check_params(params, _allowed("ProductListParams"))
        active = _bool(params["active"], "active") if "active" in params else None
        return self._list("product", params, lambda obj: active is None or obj["active"] == active, "/v1/products")

    # Prices

    def create_price(self, params: dict) -> dict:
        self._check_params(params, _allowed("PriceCreateParams"), required=("currency", "product"))
        self._get("product", params["product"])
        if "unit_amount" not in params:
            raise EmulatedError(400, "Missing required param: unit_amount.", code="parameter_missing")
        currency = params["currency"]
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise EmulatedError(400, f"Invalid currency: {currency}", param="currency")
        recurring = params.get("recurring")
        if recurring:
            unknown = set(recurring) - {"interval", "interval_count", "meter", "usage_type"}
            if unknown:
                name = sorted(unknown)[0]
                raise EmulatedError(400, f"Received unknown parameter: recurring[{name}]", param=f"recurring[{name}]")
            if recurring.get("interval") not in ("day", "week", "month", "year"):
                raise EmulatedError(400, "Invalid recurring[interval]", param="recurring[interval]")
            recurring = {
                "interval": recurring["interval"],
                "interval_count": _int(recurring.get("interval_count", 1), "recurring[interval_count]"),
                "usage_type": recurring.get("usage_type", "licensed"),
            }
        unit_amount = _int(params["unit_amount"], "unit_amount")
        price = stripe_objects.price(
            params["product"],
            unit_amount,
            currency,
            interval=recurring["interval"] if recurring else None,
            interval_count=recurring["interval_count"] if recurring else 1,
            created=self._now(),
            active=_bool(params.get("active", True), "active"),
            lookup_key=params.get("lookup_key") or None,
            metadata=self._metadata({}, params.get("metadata", {})),
            nickname=params.get("nickname") or None,
            tax_behavior=params.get("tax_behavior", "unspecified"),
        )
        if recurring:
            price["recurring"]["usage_type"] = recurring["usage_type"]
        self.objects["price"][price["id"]] = price
        return price

    def update_price(self, params: dict, id: str) -> dict:
        price = self._get("price", id)
        self._check_params(params, _allowed("PriceUpdateParams"))
        if "active" in params:
            price["active"] = _bool(params["active"], "active")
        if "nickname" in params:
            price["nickname"] = params["nickname"] or None
        if "lookup_key" in params:
            price["lookup_key"] = params["lookup_key"] or None
        if "metadata" in params:
            price["metadata"] = self._metadata(price["metadata"], params["metadata"])
        return price

    def retrieve_price(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        return self._get("price", id)

    def list_prices(self, params: dict) -> dict:
        self._check_params(params, _allowed("PriceListParams"))
        active = _bool(params["active"], "active") if "active" in params else None
        product = params.get("product")
        return self._list(
            "price",
            params,
            lambda obj: (active is None or obj["active"] == active) and (product is None or obj["product"] == product),
            "/v1/prices",
        )

    # Checkout sessions

    def create_checkout_session(self, params: dict) -> dict:
        self._check_params(params, _allowed_in(stripe.params.checkout, "SessionCreateParams"), required=("mode",))
        mode = params["mode"]
        if mode not in ("payment", "subscription", "setup"):
            raise EmulatedError(400, f"Invalid mode: {mode}", param="mode")
        customer_id = params.get("customer")
        if customer_id:
            self._get("customer", customer_id)
            if params.get("customer_email"):
                raise EmulatedError(400, "You may only specify one of these parameters: customer, customer_email.")
        if params.get("customer_update") and not customer_id:
            raise EmulatedError(400, "customer_update can only be used with customer.", param="customer_update")
        line_items = params.get("line_items") or []
        if mode != "setup" and not line_items:
            raise EmulatedError(400, "line_items is required in payment and subscription mode.", param="line_items")
        total, currency = 0, None
        for index, item in enumerate(line_items):
            price = self._get("price", item.get("price", ""))
            if not price["active"]:
                raise EmulatedError(400, f"The price {price['id']} is not active.", param=f"line_items[{index}][price]")
            if mode == "payment" and price["type"] == "recurring":
                raise EmulatedError(
                    400, "You specified `payment` mode but passed a recurring price.", param="line_items"
                )
            quantity = _int(item.get("quantity", 1), f"line_items[{index}][quantity]")
            total += price["unit_amount"] * quantity
            currency = price["currency"]
        if mode == "subscription" and not any(
            self._get("price", item["price"])["type"] == "recurring" for item in line_items
        ):
            raise EmulatedError(400, "You must provide at least one recurring price in `subscription` mode.")
        session = stripe_objects.checkout_session(
            mode=mode,
            customer_id=customer_id,
            amount_total=total,
            currency=currency,
            created=self._now(),
            cancel_url=params.get("cancel_url"),
            success_url=params.get("success_url"),
            client_reference_id=params.get("client_reference_id"),
            customer_email=params.get("customer_email"),
            metadata=self._metadata({}, params.get("metadata", {})),
            allow_promotion_codes=_bool(params["allow_promotion_codes"], "allow_promotion_codes")
            if "allow_promotion_codes" in params
            else None,
            locale=params.get("locale"),
        )
        if "automatic_tax" in params:
            session["automatic_tax"]["enabled"] = _bool(params["automatic_tax"].get("enabled"), "automatic_tax")
        if "tax_id_collection" in params:
            enabled = _bool(params["tax_id_collection"].get("enabled"), "tax_id_collection")
            session["tax_id_collection"] = {"enabled": enabled, "required": "never"}
        # Kept for complete_checkout(); Stripe shows line items only on request.
        self.session_requests[session["id"]] = params
        self.objects["checkout.session"][session["id"]] = session
        return session

    def retrieve_checkout_session(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        session = self._get("checkout.session", id)
        if "subscription" in (params.get("expand") or []) and isinstance(session.get("subscription"), str):
            return {**session, "subscription": self._get("subscription", session["subscription"])}
        return session

    def list_checkout_sessions(self, params: dict) -> dict:
        self._check_params(params, _allowed_in(stripe.params.checkout, "SessionListParams"))
        customer, status = params.get("customer"), params.get("status")
        return self._list(
            "checkout.session",
            params,
            lambda obj: (
                (customer is None or obj["customer"] == customer) and (status is None or obj["status"] == status)
            ),
            "/v1/checkout/sessions",
        )

    def expire_checkout_session(self, params: dict, id: str) -> dict:
        self._check_params(params, _allowed_in(stripe.params.checkout, "SessionExpireParams"))
        session = self._get("checkout.session", id)
        if session["status"] != "open":
            raise EmulatedError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This one is {session["status"]}.',
            )
        session["status"] = "expired"
        return session

    def expire_checkout(self, session_id: str) -> dict:
        """Let the session's 24 hours pass: it expires unpaid. Returns it, as the webhook carries it."""
        with self.lock:
            return self.expire_checkout_session({}, session_id)

    def complete_checkout(
        self,
        session_id: str,
        *,
        payment_status: str = "paid",
        address: dict[str, str] | None = None,
        name: str | None = None,
        tax_ids: list[tuple[str, str]] = (),
    ) -> tuple[dict, dict | None]:
        """
        Act as the customer paying on the hosted page: the session completes, a customer is
        created when it had none, and in subscription mode the subscription starts. What the
        buyer typed (``address``, ``name``, ``tax_ids`` as (type, value)) is in the session's
        ``customer_details``; as at Stripe, collected tax IDs are added to the customer, and
        the address and name written to it when ``customer_update`` says ``auto``.
        Returns (session, subscription or None), the objects the webhook events carry.
        """
        with self.lock:
            session = self._get("checkout.session", session_id)
            params = self.session_requests[session_id]
            if not session["customer"]:
                customer = stripe_objects.customer(created=self._now(), email=session["customer_email"])
                self.objects["customer"][customer["id"]] = customer
                session["customer"] = customer["id"]
            customer = self._get("customer", session["customer"])
            update = params.get("customer_update") or {}
            if address is not None and update.get("address") == "auto":
                customer["address"] = {key: address.get(key) for key in ADDRESS_KEYS}
            if name is not None and update.get("name") == "auto":
                customer["name"] = name
            if tax_ids and _bool((params.get("tax_id_collection") or {}).get("enabled", False), "enabled"):
                for tax_type, value in tax_ids:
                    self._store_tax_id(self._build_tax_id(customer["id"], {"type": tax_type, "value": value}))
            session["customer_details"] = stripe_objects.checkout_customer_details(
                email=customer.get("email") or session["customer_email"],
                name=name or customer.get("name"),
                address=address or customer.get("address"),
                tax_ids=list(tax_ids),
            )
            subscription = None
            if session["mode"] == "subscription":
                item = params["line_items"][0]
                price = self._get("price", item["price"])
                data = params.get("subscription_data") or {}
                trial_days = (
                    _int(data["trial_period_days"], "trial_period_days") if data.get("trial_period_days") else 0
                )
                now = self._now()
                subscription = stripe_objects.subscription(
                    session["customer"],
                    price,
                    quantity=_int(item.get("quantity", 1), "quantity"),
                    status="trialing" if trial_days else "active",
                    current_period_start=now,
                    metadata=self._metadata({}, data.get("metadata", {})),
                    trial_start=now if trial_days else None,
                    trial_end=now + trial_days * 86400 if trial_days else None,
                )
                self.objects["subscription"][subscription["id"]] = subscription
                session["subscription"] = subscription["id"]
            session.update(status="complete", payment_status=payment_status)
            return session, subscription

    # Customer portal

    def create_portal_session(self, params: dict) -> dict:
        self._check_params(
            params, _allowed_in(stripe.params.billing_portal, "SessionCreateParams"), required=("customer",)
        )
        self._get("customer", params["customer"])
        session = stripe_objects.billing_portal_session(
            params["customer"], params.get("return_url"), created=self._now(), locale=params.get("locale")
        )
        self.objects["billing_portal.session"][session["id"]] = session
        return session

    # Subscriptions

    def retrieve_subscription(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        return self._get("subscription", id)

    def list_subscriptions(self, params: dict) -> dict:
        self._check_params(params, _allowed("SubscriptionListParams"))
        customer, status = params.get("customer"), params.get("status")
        return self._list(
            "subscription",
            params,
            lambda obj: (
                (customer is None or obj["customer"] == customer)
                and (
                    obj["status"] == status
                    if status not in (None, "all")
                    else status == "all" or obj["status"] != "canceled"
                )
            ),
            "/v1/subscriptions",
        )

    def update_subscription(self, params: dict, id: str) -> dict:
        subscription = self._get("subscription", id)
        self._check_params(params, _allowed("SubscriptionUpdateParams"))
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise EmulatedError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        behavior = params.get("proration_behavior")
        if behavior not in (None, "create_prorations", "none", "always_invoice"):
            raise EmulatedError(400, f"Invalid proration_behavior: {behavior}", param="proration_behavior")
        anchor = params.get("billing_cycle_anchor")
        if anchor is not None and (not isinstance(anchor, dict) or anchor.get("type") not in ("now", "unchanged")):
            raise EmulatedError(
                400, "billing_cycle_anchor must be {type: now|unchanged}.", param="billing_cycle_anchor"
            )
        if subscription["schedule"] and ("cancel_at_period_end" in params or "cancel_at" in params):
            # As Stripe: a schedule owns the subscription's end; release or update it first.
            name = "cancel_at_period_end" if "cancel_at_period_end" in params else "cancel_at"
            raise EmulatedError(
                400,
                f"The subscription is managed by the subscription schedule `{subscription['schedule']}`, and "
                f"updating `{name}` is not allowed. Update the schedule or release it first.",
                param=name,
            )
        item = subscription["items"]["data"][0]
        if "cancel_at_period_end" in params:
            cancel = _bool(params["cancel_at_period_end"], "cancel_at_period_end")
            subscription["cancel_at_period_end"] = cancel
            subscription["cancel_at"] = item["current_period_end"] if cancel else None
            subscription["canceled_at"] = self._now() if cancel else None
        if "cancel_at" in params:
            value = params["cancel_at"]
            if value == "":
                subscription["cancel_at"] = None
            elif value in ("max_period_end", "min_period_end"):
                subscription["cancel_at"] = item["current_period_end"]
            else:
                subscription["cancel_at"] = _int(value, "cancel_at")
            if subscription["cancel_at"] is None and not subscription["cancel_at_period_end"]:
                subscription["canceled_at"] = None
        for index, change in enumerate(params.get("items") or []):
            items = {item["id"]: item for item in subscription["items"]["data"]}
            if change.get("id") not in items:
                raise EmulatedError(400, f"Invalid subscription item: {change.get('id')}", param=f"items[{index}][id]")
            item = items[change["id"]]
            if "price" in change:
                item["price"] = self._get("price", change["price"])
            if "quantity" in change:
                item["quantity"] = _int(change["quantity"], f"items[{index}][quantity]")
        if anchor and anchor["type"] == "now":
            now = self._now()
            subscription["billing_cycle_anchor"] = now
            for item in subscription["items"]["data"]:
                item["current_period_start"] = now
                item["current_period_end"] = now + 30 * 86400
        if "metadata" in params:
            subscription["metadata"] = self._metadata(subscription["metadata"], params["metadata"])
        return subscription

    def cancel_subscription(self, params: dict, id: str) -> dict:
        subscription = self._get("subscription", id)
        self._check_params(params, _allowed("SubscriptionCancelParams"))
        if subscription["status"] == "canceled":
            raise EmulatedError(400, f"No such subscription: '{id}' is already canceled.", param="id")
        now = self._now()
        subscription.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False)
        return subscription

    def resume_subscription(self, params: dict, id: str) -> dict:
        subscription = self._get("subscription", id)
        self._check_params(params, _allowed("SubscriptionResumeParams"))
        if subscription["status"] != "paused":
            raise EmulatedError(400, "Only a paused subscription can be resumed.", param="id")
        subscription["status"] = "active"
        return subscription

    # Subscription schedules (created from a subscription, then given phases)

    def create_schedule(self, params: dict) -> dict:
        self._check_params(params, _allowed("SubscriptionScheduleCreateParams"))
        subscription_id = params.get("from_subscription")
        if not subscription_id:
            raise EmulatedError(
                400, "This emulator creates schedules from_subscription only.", param="from_subscription"
            )
        if "phases" in params:
            raise EmulatedError(400, "You cannot set phases when from_subscription is set.", param="phases")
        subscription = self._get("subscription", subscription_id)
        if subscription["schedule"]:
            raise EmulatedError(400, "The subscription is already managed by a schedule.", param="from_subscription")
        item = subscription["items"]["data"][0]
        phase = stripe_objects.schedule_phase(
            item["price"], item["quantity"], item["current_period_start"], item["current_period_end"]
        )
        schedule = stripe_objects.subscription_schedule(subscription, [phase], created=self._now())
        self.objects["subscription_schedule"][schedule["id"]] = schedule
        subscription["schedule"] = schedule["id"]
        return schedule

    def retrieve_schedule(self, params: dict, id: str) -> dict:
        self._check_params(params, frozenset({"expand"}))
        return self._get("subscription_schedule", id)

    def update_schedule(self, params: dict, id: str) -> dict:
        schedule = self._get("subscription_schedule", id)
        self._check_params(params, _allowed("SubscriptionScheduleUpdateParams"))
        if "phases" in params:
            phases = []
            for index, phase in enumerate(params["phases"]):
                items = phase.get("items") or []
                if not items:
                    raise EmulatedError(400, "Each phase needs items.", param=f"phases[{index}][items]")
                price = self._get("price", items[0].get("price", ""))
                start = phase.get("start_date")
                start = int(start) if start not in (None, "now") else self._now()
                running = schedule["current_phase"] or {}
                if index == 0 and start != running.get("start_date"):
                    raise EmulatedError(
                        400,
                        "The phases must start with the current phase, its start_date unchanged.",
                        param="phases[0][start_date]",
                    )
                end = phase.get("end_date")
                built = stripe_objects.schedule_phase(
                    price, _int(items[0].get("quantity", 1), "quantity"), start, int(end) if end else None
                )
                # What else the phase sets, kept as given (trial, metadata, tax rates, discounts).
                if phase.get("trial_end") not in (None, ""):
                    built["trial_end"] = _int(phase["trial_end"], f"phases[{index}][trial_end]")
                for key in ("metadata", "default_tax_rates", "discounts", "proration_behavior", "description"):
                    if key in phase:
                        built[key] = phase[key]
                if items[0].get("metadata"):
                    built["items"][0]["metadata"] = items[0]["metadata"]
                if items[0].get("tax_rates"):
                    built["items"][0]["tax_rates"] = items[0]["tax_rates"]
                phases.append(built)
            for previous, following in itertools.pairwise(phases):
                following["start_date"] = previous["end_date"]
            # Past phases stay; the running one and those after it are replaced.
            schedule["phases"] = schedule["phases"][: self._running_phase(schedule)] + phases
        if "end_behavior" in params:
            if params["end_behavior"] not in ("release", "cancel"):
                raise EmulatedError(400, "Invalid end_behavior", param="end_behavior")
            schedule["end_behavior"] = params["end_behavior"]
        return schedule

    def release_schedule(self, params: dict, id: str) -> dict:
        self._check_params(params, _allowed("SubscriptionScheduleReleaseParams"))
        schedule = self._get("subscription_schedule", id)
        if schedule["status"] not in ("not_started", "active"):
            raise EmulatedError(400, f"You cannot release a subscription schedule that is {schedule['status']}.")
        subscription = self._get("subscription", schedule["subscription"])
        schedule.update(
            status="released",
            released_at=self._now(),
            released_subscription=subscription["id"],
            subscription=None,
            current_phase=None,
        )
        subscription["schedule"] = None
        return schedule

    def _running_phase(self, schedule: dict) -> int:
        running = schedule["current_phase"] or {}
        return next(
            (
                index
                for index, phase in enumerate(schedule["phases"])
                if phase["start_date"] == running.get("start_date")
            ),
            0,
        )

    def advance_schedule(self, schedule_id: str) -> dict:
        """
        Let time reach the next phase: the subscription takes its price and quantity. Past
        phases stay in ``phases``, as at Stripe; ``current_phase`` moves. Returns the subscription.
        """
        with self.lock:
            schedule = self._get("subscription_schedule", schedule_id)
            index = self._running_phase(schedule) + 1
            subscription = self._get("subscription", schedule["subscription"])
            item = subscription["items"]["data"][0]
            phase = schedule["phases"][index]
            item["price"] = self._get("price", phase["items"][0]["price"])
            item["quantity"] = phase["items"][0]["quantity"]
            start = phase["start_date"]
            item["current_period_start"], item["current_period_end"] = start, start + 30 * 86400
            schedule["current_phase"] = {"start_date": start, "end_date": phase["end_date"]}
            return subscription

    def end_period(self, subscription_id: str) -> dict:
        """
        Let the current period end: an attached schedule moves to its next phase (and is
        released after its last one), else the subscription renews as it is. Returns it.
        """
        with self.lock:
            subscription = self._get("subscription", subscription_id)
            schedule_id = subscription["schedule"]
            item = subscription["items"]["data"][0]
            if schedule_id:
                schedule = self._get("subscription_schedule", schedule_id)
                if self._running_phase(schedule) + 1 < len(schedule["phases"]):
                    return self.advance_schedule(schedule_id)
            end = item["current_period_end"]
            if subscription["cancel_at_period_end"] or (subscription["cancel_at"] and subscription["cancel_at"] <= end):
                subscription.update(status="canceled", ended_at=end, cancel_at_period_end=False)
                return subscription
            item["current_period_start"], item["current_period_end"] = end, end + 30 * 86400
            return subscription


_ROUTE_TABLE = [
    ("GET", "/v1/events", "list_events"),
    ("GET", "/v1/invoices", "list_invoices"),
    ("POST", "/v1/customers", "create_customer"),
    ("GET", "/v1/customers", "list_customers"),
    ("GET", "/v1/customers/:id", "retrieve_customer"),
    ("POST", "/v1/customers/:id", "update_customer"),
    ("DELETE", "/v1/customers/:id", "delete_customer"),
    ("POST", "/v1/customers/:customer/tax_ids", "create_tax_id"),
    ("GET", "/v1/customers/:customer/tax_ids", "list_tax_ids"),
    ("DELETE", "/v1/customers/:customer/tax_ids/:id", "delete_tax_id"),
    ("POST", "/v1/products", "create_product"),
    ("GET", "/v1/products", "list_products"),
    ("GET", "/v1/products/:id", "retrieve_product"),
    ("POST", "/v1/products/:id", "update_product"),
    ("POST", "/v1/prices", "create_price"),
    ("GET", "/v1/prices", "list_prices"),
    ("GET", "/v1/prices/:id", "retrieve_price"),
    ("POST", "/v1/prices/:id", "update_price"),
    ("POST", "/v1/checkout/sessions", "create_checkout_session"),
    ("GET", "/v1/checkout/sessions", "list_checkout_sessions"),
    ("GET", "/v1/checkout/sessions/:id", "retrieve_checkout_session"),
    ("POST", "/v1/checkout/sessions/:id/expire", "expire_checkout_session"),
    ("POST", "/v1/billing_portal/sessions", "create_portal_session"),
    ("GET", "/v1/subscriptions", "list_subscriptions"),
    ("GET", "/v1/subscriptions/:id", "retrieve_subscription"),
    ("POST", "/v1/subscriptions/:id", "update_subscription"),
    ("DELETE", "/v1/subscriptions/:id", "cancel_subscription"),
    ("POST", "/v1/subscriptions/:id/resume", "resume_subscription"),
    ("POST", "/v1/subscription_schedules", "create_schedule"),
    ("GET", "/v1/subscription_schedules/:id", "retrieve_schedule"),
    ("POST", "/v1/subscription_schedules/:id", "update_schedule"),
    ("POST", "/v1/subscription_schedules/:id/release", "release_schedule"),
]

_ROUTES = [
    (method, re.compile("^" + re.sub(r":(\w+)", r"(?P<\1>[^/]+)", route) + "$"), route, handler)
    for method, route, handler in _ROUTE_TABLE
]


class _Drop(Exception):
    """Close the connection without answering."""


class _Handler(BaseHTTPRequestHandler):
    emulator: StripeEmulator
    protocol_version = "HTTP/1.1"
    # Without this, each keep-alive request waits ~40 ms on Nagle's algorithm and delayed ACKs.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            if url.path.startswith("/_emulator/"):
                status, answer, extra = self.emulator.control(self.command, url.path)
            else:
                status, answer, extra = self.emulator.handle(self.command, url.path, url.query, body, headers)
        except _Drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", stripe_objects.new_id("req"))
        self.send_header("Stripe-Version", API_VERSION)
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve


def main() -> None:
    """Serve the emulator until interrupted: ``python -m tests.stripe_emulator [--port N]``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    emulator = StripeEmulator()
    print(emulator.start(port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
