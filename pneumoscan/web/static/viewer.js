// The result page's viewer: the X-ray with the heatmap as a layer on one stage, with zoom (buttons,
// wheel, pinch, + and -), pan (drag, arrow keys), brightness and contrast, and the heatmap's toggle
// and opacity. Without this script the page shows the two figures as they are.
const ZOOM_STEP = 1.25;
const MAX_ZOOM = 16;

function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function setUpViewer(viewer) {
  const base = viewer.querySelector("img[data-layer=image]");
  const heat = viewer.querySelector("img[data-layer=heatmap]");
  const controls = viewer.querySelector(".viewer-controls");
  const images = viewer.querySelector(".images");
  const control = (name) => controls.querySelector(`[data-control=${name}]`);

  const stage = document.createElement("div");
  stage.className = "stage";
  stage.tabIndex = 0;
  stage.setAttribute("role", "img");
  stage.setAttribute("aria-label", "Chest X-ray with the heatmap layer: drag or use the arrow keys to pan, + and - to zoom");
  const layers = document.createElement("div");
  layers.className = "layers";
  const baseLayer = base.cloneNode();
  const heatLayer = heat.cloneNode();
  baseLayer.alt = "";
  heatLayer.alt = "";
  heatLayer.className = "heat-layer";
  layers.append(baseLayer, heatLayer);
  stage.append(layers);
  images.after(stage);

  // The fitted size (the whole X-ray in the stage) and the view: scale relative to it, offset in px.
  let fit = { width: 0, height: 0 };
  const view = { scale: 1, x: 0, y: 0 };

  function draw() {
    layers.style.width = `${fit.width}px`;
    layers.style.height = `${fit.height}px`;
    layers.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  }

  function reset() {
    const width = baseLayer.naturalWidth || Number(base.getAttribute("width")) || 1;
    const height = baseLayer.naturalHeight || Number(base.getAttribute("height")) || 1;
    const ratio = Math.min(stage.clientWidth / width, stage.clientHeight / height);
    fit = { width: width * ratio, height: height * ratio };
    view.scale = 1;
    view.x = (stage.clientWidth - fit.width) / 2;
    view.y = (stage.clientHeight - fit.height) / 2;
    draw();
  }

  // Zoom by `factor` keeping the stage point (px, py) where it is; at most MAX_ZOOM times the
  // original's own pixels.
  function zoom(factor, px = stage.clientWidth / 2, py = stage.clientHeight / 2) {
    const most = Math.max(1, (MAX_ZOOM * (baseLayer.naturalWidth || fit.width)) / fit.width);
    const scale = clamp(view.scale * factor, 0.5, most);
    view.x = px - ((px - view.x) * scale) / view.scale;
    view.y = py - ((py - view.y) * scale) / view.scale;
    view.scale = scale;
    draw();
  }

  function pan(dx, dy) {
    view.x += dx;
    view.y += dy;
    draw();
  }

  function levels() {
    const brightness = control("brightness").value / 100;
    const contrast = control("contrast").value / 100;
    baseLayer.style.filter = `brightness(${brightness}) contrast(${contrast})`;
  }

  function heatmap() {
    heatLayer.hidden = !control("heatmap").checked;
    heatLayer.style.opacity = String(control("opacity").value / 100);
  }

  control("zoom-in").addEventListener("click", () => zoom(ZOOM_STEP));
  control("zoom-out").addEventListener("click", () => zoom(1 / ZOOM_STEP));
  control("reset").addEventListener("click", () => {
    control("brightness").value = 100;
    control("contrast").value = 100;
    levels();
    reset();
  });
  control("brightness").addEventListener("input", levels);
  control("contrast").addEventListener("input", levels);
  control("heatmap").addEventListener("change", heatmap);
  control("opacity").addEventListener("input", heatmap);

  stage.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const box = stage.getBoundingClientRect();
      zoom(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event.clientX - box.left, event.clientY - box.top);
    },
    { passive: false },
  );

  // One pointer pans; two pinch-zoom about their midpoint.
  const pointers = new Map();
  stage.addEventListener("pointerdown", (event) => {
    stage.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    stage.classList.add("dragging");
  });
  stage.addEventListener("pointermove", (event) => {
    const last = pointers.get(event.pointerId);
    if (!last) return;
    const now = { x: event.clientX, y: event.clientY };
    if (pointers.size === 1) {
      pan(now.x - last.x, now.y - last.y);
    } else if (pointers.size === 2) {
      const [other] = [...pointers].filter(([id]) => id !== event.pointerId).map(([, point]) => point);
      const before = Math.hypot(last.x - other.x, last.y - other.y);
      const after = Math.hypot(now.x - other.x, now.y - other.y);
      const box = stage.getBoundingClientRect();
      if (before > 0) zoom(after / before, (now.x + other.x) / 2 - box.left, (now.y + other.y) / 2 - box.top);
    }
    pointers.set(event.pointerId, now);
  });
  const release = (event) => {
    pointers.delete(event.pointerId);
    if (!pointers.size) stage.classList.remove("dragging");
  };
  stage.addEventListener("pointerup", release);
  stage.addEventListener("pointercancel", release);

  const KEYS = {
    ArrowLeft: () => pan(40, 0),
    ArrowRight: () => pan(-40, 0),
    ArrowUp: () => pan(0, 40),
    ArrowDown: () => pan(0, -40),
    "+": () => zoom(ZOOM_STEP),
    "=": () => zoom(ZOOM_STEP),
    "-": () => zoom(1 / ZOOM_STEP),
    0: reset,
  };
  stage.addEventListener("keydown", (event) => {
    const action = KEYS[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });

  controls.hidden = false;
  viewer.classList.add("viewer-on");
  heatmap();
  levels();
  if (baseLayer.complete) reset();
  baseLayer.addEventListener("load", reset);
  window.addEventListener("resize", reset);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const viewer of document.querySelectorAll("[data-viewer]")) setUpViewer(viewer);
});
