"""
Every page at a phone's width and a laptop's: no sideways scrolling, every field labelled,
every error tied to its field.
"""

import pytest
from playwright.sync_api import expect

PAGES = ["/", "/pricing/", "/signup/", "/login/", "/billing/", "/account/", "/orders/"]

CHECK = """
() => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) {
    problems.push(`scrolls sideways: ${doc.scrollWidth} > ${window.innerWidth}`);
  }
  for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const labelled = (field.labels && field.labels.length) || field.getAttribute("aria-label");
    if (!labelled) problems.push(`no label: ${field.name || field.id}`);
    for (const id of (field.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean)) {
      if (!document.getElementById(id)) problems.push(`${field.name}: aria-describedby names a missing #${id}`);
    }
  }
  for (const slot of document.querySelectorAll("[data-error-for]")) {
    const field = slot.closest("form").elements.namedItem(slot.dataset.errorFor);
    if (!field || !(field.getAttribute("aria-describedby") || "").split(/\\s+/).includes(slot.id)) {
      problems.push(`error slot ${slot.id} is not tied to its field`);
    }
  }
  return problems;
}
"""


@pytest.mark.parametrize("width", [375, 1280])
def test_pages_fit_and_are_labelled(site, page, shot, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(site + "/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out alice")).to_be_visible()
    found = {}
    for path in PAGES:
        page.goto(site + path)
        problems = page.evaluate(CHECK)
        if problems:
            found[path] = problems
        shot(path.strip("/") or "home")
    assert not found


def test_signup_errors_are_tied_to_their_fields(site, page):
    page.goto(site + "/signup/")
    page.get_by_label("Username").fill("alice")
    page.get_by_role("button", name="Sign up").click()
    username = page.get_by_label("Username")
    expect(username).to_have_attribute("aria-invalid", "true")
    error = page.locator("#" + username.get_attribute("aria-describedby").split()[0])
    expect(error).to_contain_text("already exists")


def test_billing_errors_are_tied_to_their_fields(site, page):
    page.goto(site + "/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Log in").click()
    page.goto(site + "/billing/")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("VAT number").fill("DE12345")
    page.get_by_role("button", name="Save").click()
    for label in ("Name or company", "Billing email"):
        expect(page.get_by_label(label)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_name-error")).not_to_be_empty()
    expect(page.get_by_label("Name or company")).to_be_focused()
    # The fields fixed, the VAT number's own error shows under it.
    page.get_by_label("Name or company").fill("Alice")
    page.get_by_label("Billing email").fill("alice@example.com")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("VAT number")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_vat_number-error")).to_contain_text("invalid length")
    expect(page.get_by_label("Name or company")).not_to_have_attribute("aria-invalid", "true")
