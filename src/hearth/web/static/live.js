// Keeps "Checked N s ago" (templates/_live.html) true between refreshes of the health view:
// counts on from the age the server gave (data-age) by this browser's own clock, so a clock
// set differently from the server's changes nothing, and a refresh that fails shows as an
// age that keeps growing. A file, not an inline script: the page's CSP allows only these.
(function () {
  "use strict";
  var firstSeen = new WeakMap(); // each <time data-age> -> when this page first had it

  function ago(age) {
    if (age < 60) return age + " s ago";
    if (age < 3600) return Math.floor(age / 60) + " min ago";
    return Math.floor(age / 3600) + " h ago";
  }

  function tick() {
    var now = performance.now();
    document.querySelectorAll("time[data-age]").forEach(function (time) {
      if (!firstSeen.has(time)) firstSeen.set(time, now);
      var age = Number(time.dataset.age) + Math.floor((now - firstSeen.get(time)) / 1000);
      var text = ago(age);
      if (time.textContent !== text) time.textContent = text;
    });
  }

  tick();
  // A refresh brings a new <time>: start counting it at once, not at the next tick.
  document.body.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);
})();
