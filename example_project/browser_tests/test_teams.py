"""Team billing: owners and billing members pay for the team; other members are refused."""

import re

from demo.models import Team
from playwright.sync_api import expect

from django_bob_payments.models import Subscription


def log_in(page, site, username):
    page.goto(site + "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(username)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/account/$"))


def switch_to(page, label):
    """Choose the account in the header's switcher; the page reloads acting for it."""
    with page.expect_navigation():
        page.get_by_label("Account", exact=True).select_option(label=label)
    expect(page.get_by_label("Account", exact=True).locator("option:checked")).to_have_text(label)


def test_member_without_billing_role_is_refused(site, page, shot):
    log_in(page, site, "bob")
    switch_to(page, "Acme (team)")
    expect(page.get_by_role("alert")).to_contain_text("You may not manage this organization's billing.")
    expect(page.get_by_text("Ask an owner: alice.")).to_be_visible()
    shot("member-account-refused")
    page.get_by_role("link", name="Pricing").click()
    expect(page.get_by_role("alert").first).to_contain_text("Only the team's owners and billing members")
    page.get_by_role("button", name="Choose Starter for Acme").click()
    expect(page.locator(".plan", has_text="Starter").locator("[data-form-error]")).to_contain_text(
        "You may not manage this organization's billing."
    )
    shot("member-checkout-refused")
    page.goto(site + "/billing/")
    expect(page.get_by_role("alert")).to_contain_text("You may not manage")
    assert not Subscription.objects.exists()


def test_owner_pays_for_the_team(site, page, shot):
    log_in(page, site, "alice")
    switch_to(page, "Acme (team)")
    page.get_by_role("link", name="Pricing").click()
    plan = page.locator(".plan", has_text="Team")
    plan.get_by_label("Seats").fill("3")
    plan.get_by_role("button", name="Choose Team for Acme").click()
    expect(page.get_by_role("row", name=re.compile("Quantity"))).to_contain_text("3")
    page.get_by_role("button", name=re.compile(r"^Pay 87\.00")).click()
    expect(page.locator("#checkout-state")).to_contain_text("Your Team plan is active.")
    page.get_by_role("link", name="Go to your account").click()
    seats = page.locator("[data-limit=seats]")
    expect(seats.locator("td").first).to_contain_text("2")  # alice and bob
    expect(seats.locator("td").last).to_have_text("3")
    shot("team-account")
    team = Team.objects.get(name="Acme")
    subscription = Subscription.objects.get()
    assert subscription.customer.organization_id == str(team.pk)
    assert subscription.quantity == 3

    # Her personal account has no plan: the team's is the team's.
    switch_to(page, "alice (personal)")
    expect(page.get_by_role("heading", name="No plan yet")).to_be_visible()


def test_the_switcher_refuses_odd_input(client, db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("carol", password="carol")
    client.force_login(user)
    answer = client.post("/teams/switch/", {"team": "abc", "next": "//evil.example/"})
    assert (answer.status_code, answer["Location"]) == (302, "/account/")
    team = Team.objects.create(name="Other")  # carol is not a member
    client.post("/teams/switch/", {"team": str(team.pk)})
    assert "team" not in client.session
    assert client.post("/teams/switch/", {"team": "", "next": "/pricing/"})["Location"] == "/pricing/"
