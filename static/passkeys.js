// Passkeys in the browser (WebAuthn): sign in, confirm the second step, or set one up. A form
// with data-passkey ("get" or "create") asks its data-options-url for the options (the server
// keeps the challenge), lets navigator.credentials sign or create, and posts the answer as its
// hidden "credential" field. Without WebAuthn the forms stay hidden and the
// [data-passkey-unsupported] hints stay visible.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-passkey]");
  if (!forms.length || !window.PublicKeyCredential || !navigator.credentials) return;

  // -- base64url, the encoding of every binary value in the options and the answers --------

  function fromBase64url(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // -- the options from the server, the answer to it ----------------------------------------

  function descriptors(list) {
    return (list || []).map(function (d) { return Object.assign({}, d, { id: fromBase64url(d.id) }); });
  }

  function creationOptions(o) {
    return Object.assign({}, o, {
      challenge: fromBase64url(o.challenge),
      user: Object.assign({}, o.user, { id: fromBase64url(o.user.id) }),
      excludeCredentials: descriptors(o.excludeCredentials),
    });
  }

  function requestOptions(o) {
    return Object.assign({}, o, { challenge: fromBase64url(o.challenge), allowCredentials: descriptors(o.allowCredentials) });
  }

  function answer(credential) {
    var r = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      json.response.attestationObject = toBase64url(r.attestationObject);
      json.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      json.response.authenticatorData = toBase64url(r.authenticatorData);
      json.response.signature = toBase64url(r.signature);
      json.response.userHandle = r.userHandle ? toBase64url(r.userHandle) : null;
    }
    return JSON.stringify(json);
  }

  // -- talking to the server and to the authenticator ---------------------------------------

  function failure(message) {
    var error = new Error(message);
    error.shown = message;
    return error;
  }

  function fetchOptions(form) {
    var body = new URLSearchParams(new FormData(form));
    body.delete("credential");
    var token = form.querySelector("input[name=csrf_token]");
    return fetch(form.dataset.optionsUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", Accept: "application/json" },
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (data.sign_in) {
          // A fresh sign-in first: the page comes back afterwards.
          window.location.assign(data.sign_in);
          return new Promise(function () {});
        }
        if (!r.ok || !data.publicKey) throw failure(data.error_description || data.error || form.dataset.failed);
        return data;
      });
    });
  }

  function ceremony(form, data, signal) {
    if (data.flow && form.elements.flow) form.elements.flow.value = data.flow;
    if (form.dataset.passkey === "create") {
      return navigator.credentials.create({ publicKey: creationOptions(data.publicKey) });
    }
    var request = { publicKey: requestOptions(data.publicKey) };
    if (signal) {
      request.signal = signal;
      request.mediation = "conditional";
    }
    return navigator.credentials.get(request);
  }

  function send(form, credential) {
    if (!credential) throw failure(form.dataset.failed);
    form.elements.credential.value = answer(credential);
    form.submit();
  }

  function show(form, text) {
    var box = form.querySelector("[data-passkey-message]");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  function explain(form, error) {
    var name = error && error.name;
    if (name === "AbortError") return; // another request took its place
    if (name === "NotAllowedError") return show(form, form.dataset.cancelled);
    if (name === "InvalidStateError") return show(form, form.dataset.exists);
    show(form, (error && error.shown) || form.dataset.failed);
  }

  // -- the forms ----------------------------------------------------------------------------

  // The page's conditional request (passkeys offered in the e-mail field's autofill), which a
  // press of the button replaces: a browser runs one request at a time.
  var conditional = null;

  function offerInAutofill(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) return;
      var controller = new AbortController();
      conditional = controller;
      return fetchOptions(form)
        .then(function (data) { return controller.signal.aborted ? null : ceremony(form, data, controller.signal); })
        .then(function (credential) { if (credential) send(form, credential); });
    }).catch(function () {
      // Autofill is an offer: when it fails, the button and the password remain.
    });
  }

  forms.forEach(function (form) {
    var busy = false;
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;
      busy = true;
      show(form, "");
      if (conditional) {
        conditional.abort();
        conditional = null;
      }
      fetchOptions(form)
        .then(function (data) { return ceremony(form, data); })
        .then(function (credential) { send(form, credential); })
        .catch(function (error) {
          busy = false;
          explain(form, error);
          // The press replaced the autofill's request: offer the passkeys there again.
          if (form.hasAttribute("data-conditional")) offerInAutofill(form);
        });
    });
    if (form.hasAttribute("data-conditional")) offerInAutofill(form);
  });
  document.querySelectorAll("[data-passkey-section]").forEach(function (el) { el.hidden = false; });
  document.querySelectorAll("[data-passkey-unsupported]").forEach(function (el) { el.hidden = true; });
})();
