"""An interactor override, as a project would write one."""

from django_bob_payments.interactors import PaymentInteractor


class RecordingPaymentInteractor(PaymentInteractor):
    """Records the users it was told about, then does the default work."""

    created_users: list = []

    def post_user_created(self, user):
        type(self).created_users.append(user.pk)
        return super().post_user_created(user)


class NotAnInteractor:
    """A class that is not a PaymentInteractor, for the system checks."""
