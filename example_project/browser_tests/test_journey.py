"""
A new customer's whole journey through the example site, in Chromium: sign up, billing
information with a VAT number checked as it is typed (VIES valid, then VIES down), pricing,
checkout on the fake provider's page, the success page turning active without a reload,
entitlements, plan changes, cancel and resume, and the invoice.
"""

import re

from playwright.sync_api import expect

from django_bob_payments.models import BillingInformation, Subscription

PASSWORD = "a long demo passphrase"

# Records every state the success page shows, and how many times a page of this tab loaded.
RECORD_STATES = """
sessionStorage.setItem("loads", String(Number(sessionStorage.getItem("loads") || 0) + 1));
window.__states = [];
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("checkout-state");
  if (!box) return;
  window.__states.push(box.dataset.state);
  new MutationObserver(() => window.__states.push(box.dataset.state))
    .observe(box, {attributes: true, attributeFilter: ["data-state"]});
});
"""


def sign_up(page, site, username):
    page.goto(site + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/billing/$"))


def test_sign_up_to_invoice(site, page, shot, vies):
    vies.register("DE136695976", name="Beispiel GmbH")
    sign_up(page, site, "eve")
    expect(page.get_by_role("status").first).to_contain_text("Welcome")
    shot("signed-up")

    # Billing information; the VAT number is checked at VIES as it is typed.
    page.get_by_label("Name or company").fill("Beispiel GmbH")
    page.get_by_label("Billing email").fill("billing@beispiel.example")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("Address").fill("Hauptstrasse 1")
    page.get_by_label("Postal code").fill("10115")
    page.get_by_label("City").fill("Berlin")
    vat = page.get_by_label("VAT number")
    status = page.locator("#vat-status")
    vat.press_sequentially("DE136695976", delay=20)
    expect(status).to_have_attribute("data-state", "valid")
    expect(status).to_contain_text("Valid VAT number, registered to Beispiel GmbH")
    shot("vat-valid")

    # VIES goes down: another well-formed number cannot be checked, and the form says so.
    vies.fail("DE", "MS_UNAVAILABLE")
    vat.fill("DE129273398")
    expect(status).to_have_attribute("data-state", "unverified")
    expect(status).to_contain_text("VIES is unreachable right now")
    page.get_by_role("button", name="Save").click()
    saved = page.locator("#billing-saved")
    expect(saved).to_contain_text("Saved.")
    expect(saved).to_contain_text("not confirmed yet")
    billing = BillingInformation.objects.get(customer__user__username="eve")
    assert (billing.vat_number, billing.vat_status) == ("DE129273398", "unverified")
    shot("vies-down-saved")

    # VIES is back: the registered number is valid, and cross-border B2B is reverse-charged.
    vies.recover("DE")
    from django.core.cache import cache

    cache.clear()  # the VIES breaker's pause after MS_UNAVAILABLE
    vat.fill("DE136695976")
    expect(status).to_have_attribute("data-state", "valid")
    page.get_by_role("button", name="Save").click()
    expect(saved).to_contain_text("Reverse charge")
    billing.refresh_from_db()
    assert (billing.vat_status, billing.tax_exempt) == ("valid", "reverse")

    # Pricing, monthly and yearly.
    page.get_by_role("link", name="Pricing").click()
    expect(page.get_by_role("heading", name="Starter")).to_be_visible()
    page.get_by_role("link", name="Yearly").click()
    expect(page.locator(".plan", has_text="Starter").locator(".price")).to_contain_text("90.00")
    shot("pricing-yearly")
    page.get_by_role("link", name="Monthly").click()
    expect(page.locator(".plan", has_text="Starter").locator(".price")).to_contain_text("9.00")
    shot("pricing-monthly")

    # The fake provider's checkout page looks like a checkout.
    page.context.add_init_script(RECORD_STATES)
    page.get_by_role("button", name="Choose Starter").click()
    expect(page).to_have_url(re.compile(r"/api/payment/fake/checkout/"))
    expect(page.get_by_role("heading", name="Starter")).to_be_visible()
    expect(page.get_by_text("9.00 EUR per month")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Quantity"))).to_contain_text("1")
    expect(page.get_by_role("row", name=re.compile("Tax"))).to_contain_text("Reverse charge")
    expect(page.get_by_text("no money moves")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    shot("fake-checkout")
    page.get_by_role("button", name=re.compile(r"^Pay 9\.00")).click()

    # The success page: "processing", then the active plan, in the same page load.
    expect(page).to_have_url(re.compile(r"/checkout/success/\?session_id="))
    state = page.locator("#checkout-state")
    expect(state).to_have_attribute("data-state", "complete")
    expect(state).to_contain_text("Your Starter plan is active.")
    assert page.evaluate("window.__states") == ["processing", "complete"]
    assert page.evaluate("sessionStorage.getItem('loads')") == "2"  # the checkout page, then this one
    shot("success-active")

    # The account: entitlements with usage against the limits.
    page.get_by_role("link", name="Go to your account").click()
    projects = page.locator("[data-limit=projects]")
    expect(projects).to_contain_text("0")
    expect(projects.locator("td").last).to_have_text("3")
    expect(page.get_by_text("Features: api.")).to_be_visible()
    page.get_by_label("Project name").fill("Website")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_text("Project Website created.")).to_be_visible()
    expect(projects.locator("td").first).to_contain_text("1")
    shot("account-starter")

    # Change plan now, then schedule a downgrade for the period end.
    page.get_by_label("New plan").select_option(label="Team · 29.00 EUR per month")
    page.get_by_role("button", name="Change now").click()
    expect(page.get_by_role("heading", name=re.compile("Team plan"))).to_be_visible()
    expect(page.locator("[data-limit=projects] td").last).to_have_text("50")
    page.get_by_label("New plan").select_option(label="Starter · 9.00 EUR per month")
    page.get_by_role("button", name="Change at the end of the period").click()
    expect(page.locator("[data-scheduled]")).to_contain_text("Changes to Starter")
    shot("account-downgrade-scheduled")
    subscription = Subscription.objects.get(customer__user__username="eve")
    assert subscription.pricing.product.slug == "team"
    assert subscription.scheduled_pricing.product.slug == "starter"

    # Cancel at the period end (the scheduled change is dropped), then resume.
    page.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page.locator("[data-cancels]")).to_contain_text("Cancels on")
    expect(page.locator("[data-scheduled]")).to_have_count(0)
    shot("account-canceling")
    page.get_by_role("button", name="Resume the plan").click()
    expect(page.locator("[data-cancels]")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel at the end of the period")).to_be_visible()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancel_at_period_end) == ("active", False)

    # The portal (the fake provider has none: it sends the customer straight back), whose
    # return refreshes the subscriptions from the provider.
    page.get_by_role("button", name="Open the billing portal").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.locator(".notice.warning")).to_have_count(0)
    expect(page.get_by_role("heading", name=re.compile("Team plan"))).to_be_visible()

    # Orders and invoices, with a link to the invoice.
    page.get_by_role("link", name="Orders & invoices").click()
    invoice_row = page.locator("[data-invoice]").first
    expect(invoice_row).to_contain_text("9.00")
    shot("orders")
    invoice_row.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("^Invoice"))).to_be_visible()
    expect(page.get_by_text("Beispiel GmbH")).to_be_visible()
    shot("invoice")


def test_checkout_canceled_charges_nothing(site, page, shot):
    sign_up(page, site, "frank")
    page.get_by_role("link", name="Pricing").click()
    page.get_by_role("button", name="Choose Starter").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page).to_have_url(re.compile(r"/pricing/\?checkout=canceled"))
    expect(page.get_by_role("status")).to_contain_text("Checkout canceled: nothing was charged.")
    shot("canceled")
    assert not Subscription.objects.filter(customer__user__username="frank").exists()
