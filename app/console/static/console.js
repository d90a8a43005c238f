/* Gridline console: live refresh of the queue (ETag polling), no dependencies. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute("data-live-url");
  var etag = live.getAttribute("data-etag");
  var PERIOD = 20000;

  function ids() {
    var seen = {};
    live.querySelectorAll("tr[data-id]").forEach(function (row) { seen[row.getAttribute("data-id")] = true; });
    return seen;
  }

  function ticked() {
    var on = {};
    live.querySelectorAll("input[name=case]:checked").forEach(function (box) { on[box.value] = true; });
    return on;
  }

  function poll() {
    if (document.hidden) { return; }
    fetch(url, { credentials: "same-origin", headers: { "If-None-Match": etag || "" }, redirect: "manual" })
      .then(function (response) {
        if (response.status !== 200) { return null; }
        etag = response.headers.get("ETag") || etag;
        return response.text();
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        var before = ids();
        var keep = ticked();
        live.innerHTML = html;
        live.querySelectorAll("tr[data-id]").forEach(function (row) {
          var id = row.getAttribute("data-id");
          if (!before[id]) { row.classList.add("new"); }
          var box = row.querySelector("input[name=case]");
          if (box && keep[id]) { box.checked = true; }
        });
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  window.setInterval(poll, PERIOD);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
}());
