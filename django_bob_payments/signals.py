"""
Signals sent by django-bob-payments. Each is sent with ``sender=`` the class that sends it
and keyword arguments carrying model instances.
"""

from django.dispatch import Signal

# A local customer was created for a new user.
# Arguments: customer (Customer), user.
customer_created = Signal()

# A subscription was recorded from the provider for the first time.
# Arguments: subscription (Subscription).
subscription_created = Signal()

# A recorded subscription changed (status, plan, quantity, period or cancellation).
# Arguments: subscription (Subscription), previous_status (str).
subscription_updated = Signal()

# A subscription ended.
# Arguments: subscription (Subscription).
subscription_canceled = Signal()

# A subscription's trial ends in three days.
# Arguments: subscription (Subscription).
subscription_trial_will_end = Signal()

# A customer holds more active subscriptions to a product than it allows.
# Arguments: subscription (Subscription, the one over the limit).
subscription_limit_exceeded = Signal()

# A checkout completed (paid, or waiting for an asynchronous payment).
# Arguments: order (Order), payment_attempt (PaymentAttempt).
checkout_completed = Signal()

# An order was paid.
# Arguments: order (Order), payment_attempt (PaymentAttempt).
payment_succeeded = Signal()

# A payment failed: an asynchronous checkout payment, or a subscription invoice.
# Arguments: order (Order or None), payment_attempt (PaymentAttempt or None), invoice (Invoice or None).
payment_failed = Signal()

# An invoice was paid.
# Arguments: invoice (Invoice).
invoice_paid = Signal()

# A webhook event was applied (or ignored, having no handler).
# Arguments: event (WebhookEvent).
webhook_event_processed = Signal()

# Applying a webhook event failed; the provider will deliver it again.
# Arguments: event (WebhookEvent), error (Exception).
webhook_event_failed = Signal()

# A VAT number that VIES had confirmed is no longer valid (found by revalidatevat).
# Arguments: billing_information (BillingInformation).
vat_number_invalidated = Signal()

# A completed checkout brought billing details the buyer typed on the provider's page (a VAT
# number, or a first address): they are recorded, and the number is checked after the commit.
# Arguments: billing_information (BillingInformation).
billing_details_collected = Signal()

# A plan change scheduled for the period end has happened (the provider's subscription now
# has the scheduled price and quantity). The app's receiver releases the schedule.
# Arguments: subscription (Subscription), schedule_external_id (str, "" when unknown).
scheduled_change_applied = Signal()
