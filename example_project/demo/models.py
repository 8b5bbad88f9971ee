"""
The example SaaS's own models: teams that pay for their members, and projects, the thing
its plans limit.
"""

from django.conf import settings
from django.db import models


class Team(models.Model):
    """An organization that pays for its members (``BOB_PAYMENTS["ORGANIZATION_MODEL"]``)."""

    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name

    def can_manage_billing(self, user) -> bool:
        """The hook django-bob-payments asks: owners and billing members manage the team's billing."""
        return self.memberships.filter(user=user, role__in=[Membership.Role.OWNER, Membership.Role.BILLING]).exists()


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        BILLING = "billing", "Billing"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="demo_one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Project(models.Model):
    """What the plans limit (``limits: {"projects": N}``): a user's own, or a team's."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True, related_name="projects")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
