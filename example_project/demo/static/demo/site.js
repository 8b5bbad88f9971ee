/*
 * The example site's JavaScript: forms marked data-api are sent as JSON to the
 * django-bob-payments REST endpoints (with ?organization= when a team is selected), their
 * errors shown beside their fields; the billing form checks the VAT number as it is typed;
 * the checkout success page follows the checkout until it is settled.
 */
(function () {
  "use strict";

  const query = document.body.dataset.apiQuery || "";

  function csrfToken() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  async function api(method, path, body) {
    const options = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path + query, options);
    } catch (err) {
      return { ok: false, status: 0, data: { detail: "The site could not be reached. Check your connection and try again." } };
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      data = { detail: "Unexpected answer from the server (" + response.status + ")." };
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function valueOf(text) {
    if (text === "true") return true;
    if (text === "false") return false;
    return text;
  }

  function formBody(form, submitter) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.name === "csrfmiddlewaretoken" || field.disabled || field.tagName === "BUTTON") continue;
      if (field.type === "checkbox") body[field.name] = field.checked;
      else if (field.type === "number") { if (field.value !== "") body[field.name] = Number(field.value); }
      else if (field.dataset.type === "int") body[field.name] = Number(field.value);
      else body[field.name] = field.value;
    }
    if (submitter && submitter.name) body[submitter.name] = valueOf(submitter.value);
    return body;
  }

  function clearErrors(form) {
    for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const alert = form.querySelector("[data-form-error]");
    if (alert) { alert.textContent = ""; alert.hidden = true; }
  }

  function showErrors(form, data) {
    const general = [];
    if (typeof data.detail === "string") general.push(data.detail);
    for (const [name, messages] of Object.entries(data)) {
      if (name === "detail" || name === "code" || !Array.isArray(messages)) continue;
      const text = messages.map(function (m) { return typeof m === "string" ? m : m.message || ""; }).join(" ");
      const slot = form.querySelector('[data-error-for="' + name + '"]');
      const field = form.elements.namedItem(name);
      if (slot) {
        slot.textContent = text;
        if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
      } else {
        general.push(text);
      }
    }
    const alert = form.querySelector("[data-form-error]");
    if (alert) {
      alert.textContent = general.join(" ") || "Something went wrong; try again.";
      alert.hidden = false;
    }
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  }

  document.addEventListener("submit", async function (event) {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    const submitter = event.submitter;
    const body = formBody(form, submitter);
    clearErrors(form);
    form.setAttribute("aria-busy", "true");
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    const result = await api(form.dataset.method || "POST", form.dataset.api, body);
    form.removeAttribute("aria-busy");
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    if (!result.ok) {
      showErrors(form, result.data);
      return;
    }
    if (form.dataset.then === "redirect" && result.data.url) {
      window.location.assign(result.data.url);
    } else if (form.dataset.then === "reload") {
      window.location.assign(form.dataset.next || window.location.pathname);
    } else {
      form.dispatchEvent(new CustomEvent("api:done", { detail: result.data }));
    }
  });

  // The billing form: the VAT number is checked at VIES as it is typed.
  const billingForm = document.getElementById("billing-form");
  if (billingForm) {
    const vat = billingForm.elements.namedItem("vat_number");
    const country = billingForm.elements.namedItem("country");
    const status = document.getElementById("vat-status");
    let timer = null;
    let last = "";
    const texts = {
      valid: function (v) { return "Valid VAT number" + (v.name && v.name !== "---" ? ", registered to " + v.name : "") + "."; },
      invalid: function (v) { return v.message || "This VAT number is not valid."; },
      unverified: function () {
        return "VIES is unreachable right now. You can save: we will check the number later, and charge VAT until it is confirmed.";
      },
      not_applicable: function (v) { return v.message || "This number is not checked at VIES."; },
    };
    function show(state, text) {
      status.dataset.state = state;
      status.textContent = text;
    }
    async function check() {
      const number = vat.value.trim();
      if (number.length < 4 || !country.value) { last = ""; show("", ""); return; }
      const key = country.value + ":" + number;
      if (key === last) return;
      last = key;
      show("checking", "Checking the number at VIES…");
      const result = await api("POST", billingForm.dataset.vatUrl, { vat_number: number, country: country.value });
      if (key !== last) return;
      if (!result.ok) {
        const messages = result.data.vat_number || result.data.country || [result.data.detail || "The number could not be checked."];
        show("invalid", [].concat(messages).join(" "));
        return;
      }
      show(result.data.status, texts[result.data.status](result.data));
    }
    vat.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 600); });
    country.addEventListener("change", function () { last = ""; check(); });
    billingForm.addEventListener("api:done", function (event) {
      const saved = event.detail;
      billingForm.dataset.method = "PUT";
      const taxes = {
        reverse: "Reverse charge: the invoices carry no VAT, you account for it.",
        exempt: "Outside the EU: the invoices carry no VAT.",
        none: "VAT is charged at the seller's rate.",
      };
      let text = "Saved. " + (taxes[saved.tax_exempt] || "");
      if (saved.vat_status === "unverified") text += " Your VAT number is not confirmed yet: VIES did not answer; we will check it later.";
      const note = document.getElementById("billing-saved");
      note.textContent = text;
      note.hidden = false;
    });
  }

  // The checkout success page: "processing" until the checkout is settled, without a reload.
  const box = document.getElementById("checkout-state");
  if (box) {
    const names = JSON.parse(document.getElementById("product-names").textContent);
    const title = box.querySelector("[data-title]");
    const detail = box.querySelector("[data-detail]");
    function settle(state, heading, text) {
      box.dataset.state = state;
      title.textContent = heading;
      detail.textContent = text;
      box.querySelector("[data-next]").hidden = false;
    }
    async function poll(round) {
      const result = await api("GET", box.dataset.url);
      if (result.ok) {
        const state = result.data.state;
        const subscription = result.data.subscription;
        if (state === "complete") {
          if (subscription) {
            const until = subscription.current_period_end ? new Date(subscription.current_period_end).toLocaleDateString() : "";
            settle("complete", "Your " + (names[subscription.product] || subscription.product) + " plan is " + subscription.status + ".",
              until ? "The current period runs until " + until + "." : "");
          } else {
            settle("complete", "Payment received.", "Thank you: your order is paid.");
          }
          return;
        }
        if (state !== "processing") {
          settle(state, "The checkout is " + state + ".", "Nothing was charged. You can pick a plan again.");
          return;
        }
      } else if (result.status === 404 || result.status === 403) {
        settle("unknown", "This checkout is not yours.", result.data.detail || "");
        return;
      }
      if (round < 40) {
        setTimeout(function () { poll(round + 1); }, Math.min(500 * (round + 1), 3000));
      } else {
        detail.textContent = "The payment provider has not confirmed yet. This page keeps its place: reload it in a minute.";
      }
    }
    poll(0);
  }

  // The team switcher applies on change where JavaScript runs.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  }

})();
