"""An email backend whose SMTP server is down."""

from django.core.mail.backends.base import BaseEmailBackend


class DownEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server at 127.0.0.1:25 refused the connection")
