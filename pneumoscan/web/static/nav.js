// The header's menu button on narrow screens: shown only where this script runs; without it the
// navigation simply wraps. The CSS hides the list behind the button below 48rem.
document.addEventListener("DOMContentLoaded", () => {
  const header = document.querySelector("header.site");
  const button = header && header.querySelector(".menu-button");
  if (!button) return;
  header.classList.add("has-menu");
  button.hidden = false;
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    header.classList.toggle("menu-open", open);
  });
});
