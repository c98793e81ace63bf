// The upload form, still posted by the browser: a drop zone, the chosen files listed by name with
// a thumbnail (drawn on a canvas, so the CSP needs no blob: images), and a busy button on submit.
const THUMB = 48;

async function thumbnail(file) {
  const canvas = document.createElement("canvas");
  canvas.width = THUMB;
  canvas.height = THUMB;
  canvas.setAttribute("aria-hidden", "true");
  try {
    const bitmap = await createImageBitmap(file);
    const ratio = Math.min(THUMB / bitmap.width, THUMB / bitmap.height);
    const [width, height] = [bitmap.width * ratio, bitmap.height * ratio];
    canvas.getContext("2d").drawImage(bitmap, (THUMB - width) / 2, (THUMB - height) / 2, width, height);
  } catch {
    // DICOM and the like: the browser cannot draw them; the name alone is listed.
  }
  return canvas;
}

function listFiles(input, list) {
  list.replaceChildren();
  for (const file of input.files) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`;
    item.append(name);
    list.append(item);
    thumbnail(file).then((canvas) => item.prepend(canvas));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector("[data-drop-zone]");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector(".chosen");
  const form = zone.closest("form");
  const button = form.querySelector("button[type=submit]");
  const idle = button.textContent;
  zone.querySelector(".drop-hint").hidden = false;

  input.addEventListener("change", () => listFiles(input, list));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    input.files = event.dataTransfer.files;
    listFiles(input, list);
  });

  form.addEventListener("submit", () => {
    form.setAttribute("aria-busy", "true");
    button.setAttribute("aria-busy", "true");
    button.textContent = button.dataset.busyText;
    // Disabled after this turn, so the browser still sends the form.
    setTimeout(() => {
      button.disabled = true;
    });
  });
  // Back from the result page (bfcache): the form is usable again.
  window.addEventListener("pageshow", () => {
    form.removeAttribute("aria-busy");
    button.removeAttribute("aria-busy");
    button.disabled = false;
    button.textContent = idle;
  });
});
