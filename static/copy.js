// Copy buttons: <button data-copy="TEXT" data-copied="MESSAGE" data-status="ID"> puts TEXT on the
// clipboard and says MESSAGE in the element ID (a live region). Hidden without this script.
(function () {
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject();
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var status = document.getElementById(button.dataset.status);
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = button.dataset.copy;
      var copy = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(text).catch(function () { return fallback(text); })
        : fallback(text);
      copy.then(function () {
        if (status) status.textContent = button.dataset.copied;
      }, function () {
        if (status) status.textContent = button.dataset.failed;
      });
    });
  });
})();
