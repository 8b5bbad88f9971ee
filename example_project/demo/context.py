"""Template context of every page: the teams the user belongs to and the one selected."""

from demo.models import Team


def selected_team(request) -> Team | None:
    """The team chosen in the switcher, when the user is still one of its members (looked up once per request)."""
    if not hasattr(request, "_demo_team"):
        team_id = request.session.get("team")
        request._demo_team = (
            Team.objects.filter(pk=team_id, memberships__user=request.user).first()
            if team_id and request.user.is_authenticated
            else None
        )
    return request._demo_team


def billing_account(request) -> dict:
    if not request.user.is_authenticated:
        return {}
    team = selected_team(request)
    return {
        "teams": Team.objects.filter(memberships__user=request.user).order_by("name"),
        "team": team,
        # Appended to the API's URLs: act for the selected team (`?organization=<id>`).
        "api_query": f"?organization={team.pk}" if team else "",
    }
