// Live feedback on a new password: asks the server which policy rules it meets.
(function () {
  var field = document.getElementById("password");
  var confirm = document.getElementById("password_confirm");
  var list = document.getElementById("password-rules");
  if (!field || !confirm || !list || !field.dataset.checkUrl) return;
  var form = field.form;
  var token = form.querySelector("input[name=csrf_token]");
  var timer = null;
  var seq = 0;
  function show(rules) {
    list.querySelectorAll("li[data-rule]").forEach(function (item) {
      var ok = rules[item.dataset.rule];
      item.classList.toggle("ok", ok === true);
      item.classList.toggle("bad", ok === false);
    });
  }
  function check() {
    var mine = ++seq;
    var body = new URLSearchParams();
    body.set("password", field.value);
    body.set("password_confirm", confirm.value);
    if (token) body.set("csrf_token", token.value);
    fetch(field.dataset.checkUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": token ? token.value : "", Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === seq) show(data.rules); })
      .catch(function () {});
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  }
  field.addEventListener("input", later);
  confirm.addEventListener("input", later);
})();
