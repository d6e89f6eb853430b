// Bar charts on a canvas: no library, sized to the element, sharp on high-density screens.

export const PALETTE = [
  "#3b6fd4",
  "#e0863a",
  "#3aa776",
  "#9b59b6",
  "#d4a53b",
  "#d44f6e",
  "#4bb3c4",
  "#7f8c8d",
];

/** A canvas's drawing context, resized to its displayed width (CSS pixels). */
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = Number(canvas.getAttribute("height")) || 180;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  return { context, width, height };
}

/**
 * Stacked bars. `bars` is a list of `{ label, segments: [{ value, color }] }`; labels are drawn when
 * they fit (a thousand workers become a thousand thin bars). `line` draws a dashed reference (the mean).
 */
export function drawBars(canvas, bars, { line, empty = "nothing yet", describe } = {}) {
  const { context, width, height } = prepare(canvas);
  hoverText(canvas, bars, describe);
  const left = 34;
  const bottom = 18;
  const top = 8;
  const plotHeight = height - bottom - top;
  const plotWidth = width - left - 4;
  if (bars.length === 0) {
    context.fillStyle = "#6b7385";
    context.fillText(empty, left, top + plotHeight / 2);
    return;
  }
  const totals = bars.map((bar) => bar.segments.reduce((sum, s) => sum + s.value, 0));
  const max = Math.max(1, ...totals, line ?? 0);
  const scale = plotHeight / max;
  // Axis: the maximum and zero.
  context.fillStyle = "#6b7385";
  context.textAlign = "right";
  context.fillText(String(max), left - 4, top + 8);
  context.fillText("0", left - 4, top + plotHeight);
  context.strokeStyle = "#e2e5eb";
  context.beginPath();
  context.moveTo(left, top + plotHeight + 0.5);
  context.lineTo(left + plotWidth, top + plotHeight + 0.5);
  context.stroke();

  const slot = plotWidth / bars.length;
  const barWidth = Math.max(1, slot > 4 ? slot * 0.75 : slot);
  bars.forEach((bar, index) => {
    let y = top + plotHeight;
    const x = left + index * slot + (slot - barWidth) / 2;
    for (const segment of bar.segments) {
      // A zero still shows as a sliver: a schedule that moved nothing happened all the same.
      const h = Math.max(segment.value * scale, bar.segments.length === 1 ? 2 : 0);
      context.fillStyle = segment.color;
      context.fillRect(x, y - h, barWidth, h);
      y -= h;
    }
  });
  // Labels when there is room for them, else the first and the last.
  context.fillStyle = "#6b7385";
  context.textAlign = "center";
  const fits = bars.every((bar) => context.measureText(bar.label).width < slot - 2);
  const labelled = fits ? bars.map((_, i) => i) : [0, bars.length - 1];
  for (const index of new Set(labelled)) {
    const x = left + index * slot + slot / 2;
    context.textAlign = fits ? "center" : index === 0 ? "left" : "right";
    context.fillText(bars[index].label, fits ? x : index === 0 ? left : left + plotWidth, height - 5);
  }
  if (line !== undefined) {
    const y = top + plotHeight - line * scale + 0.5;
    context.strokeStyle = "#1d2330";
    context.setLineDash([4, 3]);
    context.beginPath();
    context.moveTo(left, y);
    context.lineTo(left + plotWidth, y);
    context.stroke();
    context.setLineDash([]);
  }
}

/** The bar under the pointer, described in the canvas's tooltip (labels do not fit a thousand bars). */
function hoverText(canvas, bars, describe = (bar) => bar.label) {
  canvas.onmousemove = (event) => {
    const rect = canvas.getBoundingClientRect();
    const index = Math.floor(((event.clientX - rect.left - 34) / (rect.width - 38)) * bars.length);
    canvas.title = index >= 0 && index < bars.length ? describe(bars[index]) : "";
  };
}
