// The "Copy report" button of the Diagnostics page. A file, not an inline script: the page's
// CSP allows only these. Without JavaScript the button stays hidden and the text is selected
// and copied by hand. The clipboard API needs a secure context (https, or localhost); on a
// LAN address over http the text is selected and the copy command used instead, and if that
// is refused too, the text stays selected for Ctrl+C.
(function () {
  "use strict";
  var button = document.getElementById("copy-report");
  var status = document.getElementById("copy-status");
  if (!button || !status) return;
  var source = document.getElementById(button.dataset.copies);
  if (!source) return;

  function select() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallback() {
    select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    status.textContent = copied
      ? "Copied to the clipboard."
      : "The report is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
  }

  button.addEventListener("click", function () {
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { status.textContent = "Copied to the clipboard."; },
        fallback
      );
    } else {
      fallback();
    }
  });
  button.hidden = false;
})();
