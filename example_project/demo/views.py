"""
The example SaaS's pages. They read through django-bob-payments' public API (the
interactor, its catalog and the documented models) and act through its REST endpoints,
called by ``static/demo/site.js``: checkout, the portal, subscription changes, billing
information and the VAT check.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_countries import countries

from demo.context import selected_team
from demo.forms import ProjectForm, SignupForm
from demo.models import Membership, Project
from django_bob_payments.exceptions import BillingPermissionDenied, BobPaymentsError
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import BillingInformation, Pricing, Subscription

ENDED = (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED)


def billing_customer(request):
    """The customer the request acts for: the user's own, or the selected team's (owners and billing members only)."""
    team = selected_team(request)
    return get_payment_interactor().get_customer(request.user, team.pk if team else None)


def refused(request, err: BillingPermissionDenied):
    """The page a team member without the billing role gets instead of the team's billing."""
    team = selected_team(request)
    owners = Membership.objects.filter(team=team, role=Membership.Role.OWNER).select_related("user") if team else []
    context = {"message": err.args[0], "owners": [m.user for m in owners]}
    return render(request, "demo/refused.html", context, status=403)


def billing_page(view):
    """A logged-in page of the account's billing, called with its customer; the refusal page for other members."""

    @login_required
    @wraps(view)
    def page(request, *args, **kwargs):
        try:
            customer = billing_customer(request)
        except BillingPermissionDenied as err:
            return refused(request, err)
        return view(request, customer, *args, **kwargs)

    return page


def home(request):
    return render(request, "demo/home.html")


def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Add your billing information, then pick a plan.")
        return redirect("billing")
    return render(request, "registration/signup.html", {"form": form})


def current_subscriptions(customer):
    return (
        customer.subscriptions.exclude(status__in=ENDED)
        .select_related("pricing__product", "scheduled_pricing__product")
        .order_by("-created_at")
    )


def pricing(request):
    interval = "year" if request.GET.get("interval") == "year" else "month"
    current = set()
    can_pay = True
    if request.user.is_authenticated:
        try:
            current = {s.pricing_id for s in current_subscriptions(billing_customer(request))}
        except BillingPermissionDenied:
            can_pay = False
    plans = []
    for product in get_payment_interactor().products.catalog().filter(is_addon=False):
        prices = [p for p in product.active_pricings if not p.is_recurring or p.interval == interval]
        if prices:
            plans.append({"product": product, "pricings": prices})
    success = request.build_absolute_uri(reverse("checkout-success")) + "?session_id={CHECKOUT_SESSION_ID}"
    context = {
        "plans": plans,
        "interval": interval,
        "current": current,
        "can_pay": can_pay,
        "success_url": success,
        "cancel_url": request.build_absolute_uri(reverse("pricing")) + "?checkout=canceled",
        "canceled": request.GET.get("checkout") == "canceled",
    }
    return render(request, "demo/pricing.html", context)


@billing_page
def billing(request, customer):
    info = BillingInformation.objects.filter(customer=customer).first()
    context = {"info": info, "countries": list(countries), "method": "PUT" if info else "POST"}
    return render(request, "demo/billing.html", context)


@login_required
def checkout_success(request):
    session_id = request.GET.get("session_id", "")
    if not session_id:
        return redirect("account")
    names = dict(get_payment_interactor().products.catalog().values_list("slug", "name"))
    return render(request, "demo/checkout_success.html", {"session_id": session_id, "product_names": names})


def projects_of(request):
    """The projects of the selected team, or the user's own."""
    team = selected_team(request)
    return team.projects.all() if team else Project.objects.filter(owner=request.user, team=None)


def usage(request) -> dict[str, int]:
    """What the account uses of what the plans limit."""
    team = selected_team(request)
    return {"projects": projects_of(request).count(), "seats": team.memberships.count() if team else 1}


@billing_page
def account(request, customer):
    if request.GET.get("portal") == "returned":
        # Back from the provider's portal: read the subscriptions there (at most once a minute).
        try:
            get_payment_interactor().refresh_subscriptions(customer)
        except BobPaymentsError:
            messages.warning(request, "We could not reach the payment provider; changes show up shortly.")
        return redirect("account")
    subscriptions = list(current_subscriptions(customer))
    used = usage(request)
    entitlements = []
    for subscription in subscriptions:
        limits = (subscription.entitlements or {}).get("limits", {})
        rows = [{"name": name, "limit": limit, "used": used.get(name)} for name, limit in sorted(limits.items())]
        entitlements.append({"subscription": subscription, "limits": rows})
    plans = Pricing.objects.filter(
        is_active=True, product__is_active=True, product__is_addon=False, type=Pricing.Type.RECURRING
    ).select_related("product")
    context = {
        "entitlements": entitlements,
        "plans": plans.order_by("product__sort_order", "amount"),
        "projects": projects_of(request).order_by("-created_at"),
        "project_form": ProjectForm(),
    }
    return render(request, "demo/account.html", context)


@login_required
@require_POST
def create_project(request):
    """Any member creates projects, up to the limit the account's plan grants (``Customer.limit``)."""
    interactor = get_payment_interactor()
    team = selected_team(request)
    customer = interactor.customers.for_organization(team) if team else interactor.customers.for_user(request.user)
    form = ProjectForm(request.POST)
    limit = customer.limit("projects")
    used = projects_of(request).count()
    if not form.is_valid():
        messages.error(request, "Give the project a name.")
    elif limit is None:
        messages.error(request, "Pick a plan to create projects.")
    elif used >= limit:
        messages.error(request, f"Your plan allows {limit} projects. Change plan to create more.")
    else:
        Project.objects.create(name=form.cleaned_data["name"], owner=request.user, team=team)
        messages.success(request, f"Project {form.cleaned_data['name']} created.")
    return redirect("account")


@billing_page
def orders(request, customer):
    context = {
        "orders": customer.orders.select_related("pricing__product")
        .prefetch_related("payment_attempts")
        .order_by("-created_at"),
        "invoices": customer.invoices.order_by("-created_at"),
    }
    return render(request, "demo/orders.html", context)


@billing_page
def invoice(request, customer, pk: int):
    found = customer.invoices.filter(pk=pk).first()
    if found is None:
        raise Http404("No such invoice.")
    info = BillingInformation.objects.filter(customer=customer).first()
    return render(request, "demo/invoice.html", {"invoice": found, "info": info})


@login_required
@require_POST
def switch_team(request):
    team_id = request.POST.get("team", "")
    if team_id.isdigit() and request.user.memberships.filter(team_id=int(team_id)).exists():
        request.session["team"] = int(team_id)
    else:
        request.session.pop("team", None)
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return redirect(target if safe else "account")
