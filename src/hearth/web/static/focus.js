// A button htmx disables while its request runs (hx-disabled-elt) loses the keyboard focus:
// the browser moves it to <body>, and a keyboard user would start again from the top. Give it
// back to the button once htmx has enabled it again, unless the user moved on meanwhile.
"use strict";
document.addEventListener("htmx:afterRequest", (event) => {
  const button = event.detail.elt;
  if (!(button instanceof HTMLButtonElement) || !button.hasAttribute("hx-disabled-elt")) return;
  const lost = document.activeElement === null || document.activeElement === document.body;
  if (lost) {
    // htmx enables the button after this event's handlers run: focus it on the next frame.
    requestAnimationFrame(() => {
      if (!button.disabled && (document.activeElement === null || document.activeElement === document.body)) {
        button.focus();
      }
    });
  }
});
