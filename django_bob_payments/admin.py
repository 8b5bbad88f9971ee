"""Admin for every model. Provider IDs are read-only: they are the provider's, not ours."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from django_bob_payments import models

EXTERNAL_READONLY = ("provider", "external_id", "last_event_created", "last_event_id", "created_at", "updated_at")


class ExternalInline(admin.TabularInline):
    """Provider IDs of a local row, shown read-only."""

    extra = 0
    can_delete = False
    readonly_fields = ("provider", "external_id", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ExternalAdmin(admin.ModelAdmin):
    """Common options of the External* link models."""

    list_display = ("external_id", "provider", "created_at")
    list_filter = ("provider",)
    search_fields = ("external_id",)
    readonly_fields = EXTERNAL_READONLY


class PricingInline(admin.TabularInline):
    model = models.Pricing
    extra = 0
    fields = ("nickname", "amount", "currency", "type", "interval", "interval_count", "is_active")
    show_change_link = True


@admin.register(models.Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "max_subscriptions_per_customer", "sort_order")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "external_ids__external_id")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PricingInline, type("ExternalProductInline", (ExternalInline,), {"model": models.ExternalProduct})]


@admin.register(models.Pricing)
class PricingAdmin(admin.ModelAdmin):
    list_display = ("__str__", "product", "amount", "currency", "type", "interval", "is_active")
    list_filter = ("is_active", "type", "interval", "currency")
    search_fields = ("nickname", "product__name", "external_ids__external_id")
    list_select_related = ("product",)
    inlines = [type("ExternalPricingInline", (ExternalInline,), {"model": models.ExternalPricing})]


class BillingInformationInline(admin.StackedInline):
    model = models.BillingInformation
    extra = 0
    readonly_fields = (
        "is_from_eu",
        "vat_status",
        "vat_verified_at",
        "vies_consultation_number",
        "tax_exempt",
        "sync_status",
        "synced_at",
    )


@admin.register(models.Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "billing_email", "billing_country", "created_at")
    list_filter = ("billing_information__country", "billing_information__tax_exempt")
    search_fields = (
        "user__email",
        "billing_information__email",
        "billing_information__name",
        "billing_information__vat_number",
        "external_ids__external_id",
    )
    list_select_related = ("user", "billing_information", "organization_type")
    raw_id_fields = ("user",)
    inlines = [
        BillingInformationInline,
        type("ExternalCustomerInline", (ExternalInline,), {"model": models.ExternalCustomer}),
    ]

    @admin.display(description=_("billing email"))
    def billing_email(self, obj: models.Customer) -> str:
        billing = getattr(obj, "billing_information", None)
        return billing.email if billing else ""

    @admin.display(description=_("country"))
    def billing_country(self, obj: models.Customer) -> str:
        billing = getattr(obj, "billing_information", None)
        return str(billing.country) if billing else ""


@admin.register(models.BillingInformation)
class BillingInformationAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "country", "vat_number", "vat_status", "tax_exempt", "sync_status")
    list_filter = ("vat_status", "tax_exempt", "sync_status", "is_from_eu", "country")
    search_fields = ("name", "email", "vat_number", "customer__user__email")
    readonly_fields = BillingInformationInline.readonly_fields
    raw_id_fields = ("customer",)


class SubscriptionItemInline(admin.TabularInline):
    """The subscription's items as the provider reported them: shown, not edited."""

    model = models.SubscriptionItem
    extra = 0
    readonly_fields = ("pricing", "quantity", "provider", "external_id")
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "customer",
        "pricing",
        "status",
        "quantity",
        "current_period_end",
        "cancel_at_period_end",
    )
    list_filter = ("status", "cancel_at_period_end", "pricing__product")
    search_fields = ("customer__user__email", "customer__billing_information__email", "external_ids__external_id")
    list_select_related = ("customer__user", "pricing__product")
    raw_id_fields = ("customer", "pricing", "scheduled_pricing")
    inlines = [
        SubscriptionItemInline,
        type("ExternalSubscriptionInline", (ExternalInline,), {"model": models.ExternalSubscription}),
    ]


class PaymentAttemptInline(admin.TabularInline):
    model = models.PaymentAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("provider", "external_id", "status", "amount", "currency", "failure_code", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("__str__", "customer", "pricing", "quantity", "amount_total", "currency", "status", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("customer__user__email", "customer__billing_information__email", "payment_attempts__external_id")
    list_select_related = ("customer__user", "pricing__product")
    raw_id_fields = ("customer", "pricing", "subscription")
    inlines = [PaymentAttemptInline]


@admin.register(models.PaymentAttempt)
class PaymentAttemptAdmin(admin.ModelAdmin):
    list_display = ("__str__", "order", "provider", "external_id", "status", "amount", "currency", "created_at")
    list_filter = ("provider", "status")
    search_fields = ("external_id", "order__customer__user__email")
    readonly_fields = ("provider", "external_id", "created_at", "updated_at")
    raw_id_fields = ("order",)


class RecordAdmin(admin.ModelAdmin):
    """Rows recorded from the provider: shown, never added or edited by hand."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(models.SubscriptionItem)
class SubscriptionItemAdmin(RecordAdmin):
    list_display = ("subscription", "pricing", "quantity", "provider", "external_id")
    search_fields = ("external_id", "subscription__external_ids__external_id")
    list_select_related = ("pricing__product", "subscription__customer__user", "subscription__pricing__product")


@admin.register(models.Invoice)
class InvoiceAdmin(RecordAdmin):
    list_display = ("number", "customer", "status", "total", "currency", "provider", "external_id", "created_at")
    list_filter = ("provider", "status", "currency")
    search_fields = ("number", "external_id", "customer__user__email", "customer__billing_information__email")
    list_select_related = ("customer__user",)


for _model in (models.ExternalCustomer, models.ExternalProduct, models.ExternalPricing, models.ExternalSubscription):
    admin.site.register(_model, ExternalAdmin)


@admin.register(models.WebhookEvent)
class WebhookEventAdmin(RecordAdmin):
    actions = ["replay"]
    list_display = ("event_id", "type", "provider", "status", "attempts", "customer_key", "received_at", "processed_at")
    list_filter = ("provider", "status", "livemode", "type")
    search_fields = ("event_id", "type", "customer_key")
    exclude = ("body",)

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "body_as_received"]

    @admin.display(description=_("body as received"))
    def body_as_received(self, obj: models.WebhookEvent) -> str:
        return bytes(obj.body).decode("utf-8", "replace")

    @admin.action(description=_("Apply the selected failed or pending events again"))
    def replay(self, request, queryset) -> None:
        from django_bob_payments.interactors import get_payment_interactor

        interactor = get_payment_interactor()
        results = [interactor.process_webhook_event(event) for event in queryset.order_by("created", "pk")]
        failed = sum(result.status == models.WebhookEvent.Status.FAILED for result in results)
        level = messages.ERROR if failed else messages.SUCCESS
        self.message_user(
            request,
            _("%(done)d event(s) handled, %(failed)d failed.") % {"done": len(results), "failed": failed},
            level,
        )


@admin.register(models.BillingEmail)
class BillingEmailAdmin(RecordAdmin):
    list_display = ("key", "kind", "customer", "status", "attempts", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("key", "subject", "customer__user__email", "customer__billing_information__email")
    list_select_related = ("customer__user",)


@admin.register(models.FakeProviderObject)
class FakeProviderObjectAdmin(RecordAdmin):
    list_display = ("external_id", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("external_id",)


@admin.register(models.PaymentsSite)
class PaymentsSiteAdmin(RecordAdmin):
    list_display = ("key", "created_at")
    search_fields = ("key",)
