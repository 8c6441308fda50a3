// The operator console's only script: a table body with data-refresh is fetched again every
// data-refresh-seconds and replaced in place (the page works without it, one reload at a time).
"use strict";
document.querySelectorAll("[data-refresh]").forEach((body) => {
  const seconds = Number(body.dataset.refreshSeconds || "5");
  const status = document.querySelector("[data-refresh-status]");
  const refresh = async () => {
    if (body.contains(document.activeElement)) return; // never move the keyboard's place
    try {
      const answer = await fetch(body.dataset.refresh, { credentials: "same-origin", redirect: "manual" });
      if (answer.ok) {
        body.innerHTML = await answer.text();
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString() + "; refreshes itself every " + seconds + " seconds.";
      } else if (status) {
        status.textContent = "Not refreshed (" + (answer.status || "signed out") + "); reload the page.";
      }
    } catch (error) {
      if (status) status.textContent = "Not refreshed: the gateway did not answer.";
    }
  };
  setInterval(refresh, seconds * 1000);
});
