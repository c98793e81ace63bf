// The result page's "Print / save as PDF" button: shown only where this script runs (the CSP
// forbids inline scripts, so it lives here); without JavaScript the browser's own Print still works.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
});
