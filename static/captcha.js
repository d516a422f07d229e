// The proof-of-work CAPTCHA of a form: <altcha-widget id="captcha" name="altcha">
// (templates/_captcha.html). Loaded as a module after static/vendor/altcha/altcha.min.js.
//
// - We serve the widget's "external" build: the default build injects a <style> element
//   and starts its workers from blob: URLs, both refused by our Content-Security-Policy.
//   This one takes its CSS from vendor/altcha/altcha.css, and its workers are
//   registered here from our own origin (the widget's data-workers URL).
// - The form's submit buttons stay disabled until the widget reports the state
//   "verified", and are disabled again when it expires or fails (the widget resets
//   itself, and so disables them, on a page restored from the back/forward cache).
//   A button marked data-captcha-exempt (e.g. "start again") is left alone.
// - A click anywhere in the widget's box starts the check, not only on its checkbox.

const WORKERS = {
  "PBKDF2/SHA-256": "pbkdf2.js",
  "PBKDF2/SHA-384": "pbkdf2.js",
  "PBKDF2/SHA-512": "pbkdf2.js",
  "SHA-256": "sha.js",
  "SHA-384": "sha.js",
  "SHA-512": "sha.js",
};

function registerWorkers(base) {
  const registry = globalThis.$altcha && globalThis.$altcha.algorithms;
  if (!registry || !base) {
    return;
  }
  const baseUrl = new URL(base, document.baseURI);
  for (const [algorithm, file] of Object.entries(WORKERS)) {
    if (!registry.has(algorithm)) {
      const url = new URL(file, baseUrl);
      registry.set(algorithm, () => new Worker(url));
    }
  }
}

function guard(widget) {
  const form = widget.closest("form");
  if (!form) {
    return;
  }
  let verified = false;
  const controls = () =>
    Array.from(
      form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"]'),
    ).filter((control) => !control.hasAttribute("data-captcha-exempt"));
  const update = (state) => {
    verified = state === "verified";
    for (const control of controls()) {
      control.disabled = !verified;
    }
  };

  widget.addEventListener("statechange", (event) => {
    update(event.detail && event.detail.state);
  });
  form.addEventListener("submit", (event) => {
    const submitter = event.submitter;
    if (!verified && !(submitter && submitter.hasAttribute("data-captcha-exempt"))) {
      event.preventDefault();
    }
  });
  // The whole box starts the check, not only its checkbox and label: a click elsewhere
  // in it ticks the checkbox, as the person would.
  widget.addEventListener("click", (event) => {
    const checkbox = widget.querySelector('input[type="checkbox"]');
    if (
      !checkbox ||
      (checkbox.parentElement && checkbox.parentElement.contains(event.target)) ||
      event.target.closest("input, label, a, button, [data-popover]")
    ) {
      return; // the widget's own controls handle their clicks
    }
    const current = typeof widget.getState === "function" ? widget.getState() : null;
    if (["unverified", "expired", "error"].includes(current)) {
      checkbox.click();
    }
  });
  const state = typeof widget.getState === "function" ? widget.getState() : "unverified";
  update(state);
}

for (const widget of document.querySelectorAll("altcha-widget")) {
  registerWorkers(widget.dataset.workers);
  guard(widget);
}
