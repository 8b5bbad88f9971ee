"""
Signals sent by django-bob-payments. Each is sent with ``sender=`` the class that sends it
and keyword arguments carrying model instances.
"""

from django.dispatch import Signal

# A local customer was created for a new user.
# Arguments: customer (Customer), user.
customer_created = Signal()
