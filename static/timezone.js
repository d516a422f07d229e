// Tells the provider the browser's time zone, so pages show times on the person's own clock.
(function () {
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  // IANA names ("Europe/Amsterdam") need no escaping in a cookie; anything else is not sent.
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) return;
  if (document.cookie.split("; ").indexOf("idp_tz=" + zone) !== -1) return;
  document.cookie = "idp_tz=" + zone + "; path=/; max-age=31536000; samesite=lax" +
    (location.protocol === "https:" ? "; secure" : "");
})();
