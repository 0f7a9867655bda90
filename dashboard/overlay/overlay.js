// The Grad-CAM overlay, blended in the browser: (1 - a) * photo + a * table[map], the formula the
// server uses for downloads. The server sends the photo (JPEG) and each map (8-bit grey PNG) once, as
// media URLs; opacity, colormap, "Original" and the layer scrubber repaint here on every input event,
// and only the final choice goes back to the server (one rerun), so the link keeps carrying the view.

const pixels = new Map(); // media URL -> Promise of ImageData: URLs are content hashes, so this never goes stale
const REPORT_AFTER_MS = 350; // a burst of key presses or a drag reports once, after it stops

function load(url) {
  if (!pixels.has(url)) {
    pixels.set(url, fetch(url)
      .then((response) => response.blob())
      // No colour management: the map's grey levels must reach the blend as sent.
      .then((blob) => createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" }))
      .then((bitmap) => {
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(bitmap, 0, 0);
        return context.getImageData(0, 0, bitmap.width, bitmap.height);
      })
      .catch((error) => { // forget a failed fetch, so the next layout of this URL tries again
        pixels.delete(url);
        console.error(`Grad-CAM overlay: could not load ${url}`, error);
        throw error;
      }));
  }
  return pixels.get(url);
}

// A map sent at another size than its photo is stretched to it (bilinear, by the canvas).
async function fit(image, width, height) {
  if (!image || (image.width === width && image.height === height)) return image;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(await createImageBitmap(image), 0, 0, width, height);
  return context.getImageData(0, 0, width, height);
}

function element(tag, attributes = {}, parent = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (parent) parent.appendChild(node);
  return node;
}

function build(parent) {
  const root = element("div", { class: "gc" }, parent);
  root.innerHTML = `
    <div class="gc-step" hidden>
      <button type="button" class="gc-button gc-play" aria-pressed="false">▶ Play</button>
      <input type="range" class="gc-slider gc-frame" min="0" max="0" step="1" aria-label="Layer">
      <div class="gc-step-title" aria-live="polite"></div>
    </div>
    <div class="gc-panels"></div>
    <div class="gc-controls">
      <label class="gc-opacity-label">Opacity <output class="gc-opacity-value"></output>
        <input type="range" class="gc-slider gc-opacity" min="0" max="1" step="0.05" aria-label="Opacity">
      </label>
      <label class="gc-colormap-label">Colormap <select class="gc-select gc-colormap" aria-label="Colormap"></select></label>
    </div>
    <div class="gc-legend">
      <button type="button" class="gc-button gc-original" aria-pressed="false"
              title="Hold to see the photo without the map; press Space or Enter to switch">Original</button>
      <span aria-hidden="true">not used</span><canvas class="gc-legend-strip" width="256" height="1" aria-hidden="true"></canvas><span aria-hidden="true">most evidence</span>
    </div>`;
  return root;
}

class Overlay {
  constructor(root) {
    this.root = root;
    this.panels = [];
    this.frame = 0;
    this.original = false;
    this.timer = null;
    this.reported = null; // what we last told the server, so its echo does not move the controls back
    this.paintQueued = false;
    const $ = (selector) => root.querySelector(selector);
    this.opacity = $(".gc-opacity");
    this.opacityValue = $(".gc-opacity-value");
    this.colormap = $(".gc-colormap");
    this.originalButton = $(".gc-original");
    this.frameSlider = $(".gc-frame");
    this.play = $(".gc-play");
    this.stepTitle = $(".gc-step-title");
    this.legend = $(".gc-legend-strip");

    this.opacity.addEventListener("input", () => { this.showOpacity(); this.repaint(); });
    this.opacity.addEventListener("change", () => this.report());
    this.colormap.addEventListener("change", () => { this.repaint(); this.drawLegend(); this.report(); });
    this.frameSlider.addEventListener("input", () => { this.stop(); this.show(Number(this.frameSlider.value)); });
    this.frameSlider.addEventListener("change", () => this.report());
    this.play.addEventListener("click", () => (this.playing ? this.stop(true) : this.start()));
    // "Original": hold with the mouse or a finger; Space/Enter (a click with no pointer) switches it.
    this.originalButton.addEventListener("pointerdown", () => this.setOriginal(true));
    for (const type of ["pointerup", "pointerleave", "pointercancel"]) {
      this.originalButton.addEventListener(type, () => this.setOriginal(false));
    }
    this.originalButton.addEventListener("click", (event) => { if (event.detail === 0) this.setOriginal(!this.original); });
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    this.tables = data.tables;
    this.root.classList.toggle("gc-large", Boolean(data.large));
    const names = Object.keys(data.tables);
    if (this.colormap.options.length !== names.length) {
      this.colormap.replaceChildren(...names.map((name) => new Option(name, name)));
    }
    // The server's view wins unless it is only the echo of what this component reported.
    const echo = this.reported && this.reported.opacity === data.opacity && this.reported.colormap === data.colormap
      && (data.frame === null || this.reported.frame === data.frame);
    if (!echo || this.panels.length === 0) {
      this.opacity.value = data.opacity;
      this.colormap.value = data.colormap;
      if (data.frame !== null) this.frame = data.frame;
    }
    this.showOpacity();
    this.drawLegend();
    this.scrubbing = data.frame !== null;
    this.layout(data);
  }

  layout(data) {
    const signature = JSON.stringify([data.photo, data.panels, data.columns]);
    if (signature === this.signature) { this.repaint(); return; }
    this.signature = signature;
    const container = this.root.querySelector(".gc-panels");
    container.style.setProperty("--columns", this.scrubbing ? 1 : data.columns);
    container.replaceChildren();
    this.panels = data.panels.map((panel, index) => {
      const figure = element("figure", { class: "gc-panel" }, container);
      // The URLs ride along on the canvas: the browser test checks the blend against them.
      const canvas = element("canvas", { class: "gc-canvas", role: "img", "aria-label": panel.caption,
                                         "data-photo": data.photo, "data-map": panel.map || "" }, figure);
      element("figcaption", {}, figure).textContent = panel.caption;
      if (this.scrubbing) figure.hidden = index !== this.frame;
      return { ...panel, figure, canvas, context: canvas.getContext("2d") };
    });
    const step = this.root.querySelector(".gc-step");
    step.hidden = !this.scrubbing;
    this.frameSlider.max = String(Math.max(0, this.panels.length - 1));
    const photo = load(data.photo);
    for (const panel of this.panels) {
      Promise.all([photo, panel.map && load(panel.map), panel.marks && load(panel.marks)])
        .then(async ([image, map, marks]) => {
          panel.photo = image;
          panel.mapPixels = await fit(map, image.width, image.height);
          panel.marksBitmap = marks && await createImageBitmap(await fit(marks, image.width, image.height));
          panel.canvas.width = image.width;
          panel.canvas.height = image.height;
          panel.out = new ImageData(image.width, image.height);
          this.repaint();
        });
    }
    if (this.scrubbing) this.show(Math.min(this.frame, this.panels.length - 1));
  }

  showOpacity() {
    const value = Number(this.opacity.value);
    this.opacityValue.textContent = value.toFixed(2);
    this.opacity.setAttribute("aria-valuetext", `${Math.round(value * 100)} percent`);
    this.opacity.style.setProperty("--fill", `${value * 100}%`);
  }

  show(index) {
    this.frame = index;
    this.frameSlider.value = String(index);
    const max = Math.max(1, this.panels.length - 1);
    this.frameSlider.style.setProperty("--fill", `${(100 * index) / max}%`);
    this.panels.forEach((panel, i) => { panel.figure.hidden = i !== index; });
    const panel = this.panels[index];
    if (panel) {
      this.stepTitle.textContent = panel.title || "";
      this.frameSlider.setAttribute("aria-valuetext", panel.title || String(index + 1));
    }
    this.repaint();
  }

  start() {
    this.playing = setInterval(() => {
      if (!this.root.isConnected) return this.stop(); // the tab was closed
      this.show((this.frame + 1) % this.panels.length);
    }, 700);
    this.play.setAttribute("aria-pressed", "true");
    this.play.textContent = "⏸ Pause";
  }

  stop(report = false) {
    if (!this.playing) return;
    clearInterval(this.playing);
    this.playing = null;
    this.play.setAttribute("aria-pressed", "false");
    this.play.textContent = "▶ Play";
    if (report) this.report();
  }

  setOriginal(on) {
    if (this.original === on) return;
    this.original = on;
    this.originalButton.setAttribute("aria-pressed", String(on));
    this.repaint();
  }

  repaint() {
    for (const panel of this.panels) panel.stale = true;
    if (this.paintQueued) return;
    this.paintQueued = true;
    requestAnimationFrame(() => { this.paintQueued = false; this.paint(); });
  }

  paint() {
    const a = Number(this.opacity.value);
    const table = this.tables[this.colormap.value];
    for (const [index, panel] of this.panels.entries()) {
      if (!panel.out || !panel.stale || (this.scrubbing && index !== this.frame)) continue;
      panel.stale = false;
      const photo = panel.photo.data, out = panel.out.data;
      if (!panel.mapPixels || this.original || a === 0) {
        out.set(photo);
      } else {
        const map = panel.mapPixels.data, b = 1 - a;
        for (let i = 0; i < out.length; i += 4) {
          const k = map[i] * 3;
          out[i] = b * photo[i] + a * table[k] + 0.5;
          out[i + 1] = b * photo[i + 1] + a * table[k + 1] + 0.5;
          out[i + 2] = b * photo[i + 2] + a * table[k + 2] + 0.5;
          out[i + 3] = 255;
        }
      }
      panel.context.putImageData(panel.out, 0, 0);
      if (panel.marksBitmap && !this.original) panel.context.drawImage(panel.marksBitmap, 0, 0);
      panel.canvas.dataset.painted = `${a.toFixed(2)} ${this.colormap.value} ${this.original ? "original" : "overlay"}`;
    }
  }

  drawLegend() {
    const table = this.tables[this.colormap.value];
    const context = this.legend.getContext("2d");
    const strip = new ImageData(256, 1);
    for (let i = 0; i < 256; i++) strip.data.set([table[3 * i], table[3 * i + 1], table[3 * i + 2], 255], 4 * i);
    context.putImageData(strip, 0, 0);
  }

  report() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const view = { opacity: Number(this.opacity.value), colormap: this.colormap.value,
                     frame: this.scrubbing ? this.frame : null };
      if (this.reported && JSON.stringify(view) === JSON.stringify(this.reported)) return;
      this.reported = view;
      this.setStateValue("view", view);
    }, REPORT_AFTER_MS);
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  // The same parent comes back with every new `data`: keep the canvases and the focused control.
  let root = parentElement.querySelector(".gc");
  if (!root) {
    root = build(parentElement);
    root.overlay = new Overlay(root);
  }
  root.overlay.update(data, setStateValue);
  return () => {};
}
