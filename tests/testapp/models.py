"""Models of a project that uses the app: a custom user and an organization that pays."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A custom user model, to show the app does not assume auth.User."""


class Organization(models.Model):
    """A team billed as one customer; its owners and billing admins manage billing."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name

    def can_manage_billing(self, user) -> bool:
        return self.memberships.filter(user=user, role__in=("owner", "billing")).exists()


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=[("owner", "owner"), ("billing", "billing"), ("member", "member")])

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.organization}"
