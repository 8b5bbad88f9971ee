"""
Services: small classes that do the ORM work of one concern each.

The interactor composes them; a project that overrides the interactor can swap any of them
by setting the matching attribute in its subclass.
"""

from django_bob_payments.services.billing import BillingService
from django_bob_payments.services.customers import CustomerService
from django_bob_payments.services.mailer import MailerService
from django_bob_payments.services.orders import OrderService
from django_bob_payments.services.organizations import OrganizationService
from django_bob_payments.services.payments import PaymentService
from django_bob_payments.services.plans import PlanService
from django_bob_payments.services.products import ProductService
from django_bob_payments.services.subscriptions import SubscriptionService

__all__ = [
    "BillingService",
    "CustomerService",
    "MailerService",
    "OrderService",
    "OrganizationService",
    "PaymentService",
    "PlanService",
    "ProductService",
    "SubscriptionService",
]
