// The benchmark chart: one SVG drawn here (no charting library: six small panels of lines
// and bars are less code than adapting one, and nothing has to be downloaded), turned into
// a PNG by the machine's Chromium through playwright-core.
import { writeFileSync } from "node:fs";

const W = 1560;
const H = 1000;
const PANEL_W = 470;
const PANEL_H = 420;
const MARGIN = { left: 64, right: 14, top: 44, bottom: 52 };
const COLORS = { putEncrypted: "#1f63c6", putPassthrough: "#1f63c6", getEncrypted: "#e0701a", getPassthrough: "#e0701a" };
const SERIES = [
  { key: "putEncrypted", label: "PUT encrypted", dash: "" },
  { key: "putPassthrough", label: "PUT passthrough", dash: "6 4" },
  { key: "getEncrypted", label: "GET encrypted", dash: "" },
  { key: "getPassthrough", label: "GET passthrough", dash: "6 4" },
];

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

function text(x, y, s, { size = 12, anchor = "start", weight = "normal", fill = "#222", rotate } = {}) {
  const transform = rotate ? ` transform="rotate(${rotate} ${x} ${y})"` : "";
  return `<text x="${x}" y="${y}" font-size="${size}" text-anchor="${anchor}" font-weight="${weight}" fill="${fill}"${transform}>${esc(s)}</text>`;
}

/** A panel frame at (x, y) with a title and (unless `bare`) a plotting area. */
function panel(x, y, title, xLabel, yLabel, bare = false) {
  const plot = { x: x + MARGIN.left, y: y + MARGIN.top, w: PANEL_W - MARGIN.left - MARGIN.right, h: PANEL_H - MARGIN.top - MARGIN.bottom };
  const parts = [
    `<rect x="${x}" y="${y}" width="${PANEL_W}" height="${PANEL_H}" fill="#fff" stroke="#ddd"/>`,
    text(x + PANEL_W / 2, y + 24, title, { size: 15, anchor: "middle", weight: "bold" }),
  ];
  if (!bare) parts.push(`<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="#fafafa" stroke="#bbb"/>`);
  if (xLabel) parts.push(text(plot.x + plot.w / 2, y + PANEL_H - 10, xLabel, { anchor: "middle" }));
  if (yLabel) parts.push(text(x + 16, plot.y + plot.h / 2, yLabel, { anchor: "middle", rotate: -90 }));
  return { plot, parts };
}

/** Linear or log10 scale from [lo, hi] onto [a, b]. */
function scale(lo, hi, a, b, log = false) {
  const f = log ? Math.log10 : (v) => v;
  const l = f(lo);
  const h = f(hi);
  return (v) => a + ((f(v) - l) / (h - l || 1)) * (b - a);
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) ticks.push(10 ** e);
  return ticks.filter((t) => t >= lo * 0.999 && t <= hi * 1.001);
}

function linearTicks(lo, hi, count = 5) {
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toFixed(10)));
  return ticks;
}

const tickLabel = (v) => (v >= 1000 ? `${v / 1000}k` : v >= 1 ? String(v) : String(Number(v.toPrecision(2))));

/** A line chart over object sizes (x: log2 of the size, labelled by size). */
function sizeChart(x, y, title, yLabel, labels, series, { log = false, min, max, refs = [] } = {}) {
  const { plot, parts } = panel(x, y, title, "object size", yLabel);
  const values = series.flatMap((s) => s.values.filter(Number.isFinite)).concat(refs.map((r) => r.value));
  let lo = min ?? (log ? Math.min(...values) / 1.5 : 0);
  let hi = max ?? (log ? Math.max(...values) * 1.5 : Math.max(...values) * 1.15);
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
  }
  const sx = (i) => plot.x + 18 + (i / Math.max(1, labels.length - 1)) * (plot.w - 36);
  const sy = scale(lo, hi, plot.y + plot.h, plot.y, log);
  for (const t of log ? logTicks(lo, hi) : linearTicks(lo, hi)) {
    parts.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e4e4e4"/>`);
    parts.push(text(plot.x - 6, sy(t) + 4, tickLabel(t), { anchor: "end", size: 11 }));
  }
  labels.forEach((label, i) => parts.push(text(sx(i), plot.y + plot.h + 16, label, { anchor: "middle", size: 11 })));
  for (const r of refs) {
    parts.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${sy(r.value)}" y2="${sy(r.value)}" stroke="${r.color ?? "#c0392b"}" stroke-dasharray="2 3" stroke-width="1.5"/>`);
    parts.push(text(plot.x + plot.w - 4, sy(r.value) - 4, r.label, { anchor: "end", size: 11, fill: r.color ?? "#c0392b" }));
  }
  for (const s of series) {
    const points = s.values.map((v, i) => (Number.isFinite(v) ? [sx(i), sy(Math.max(lo, Math.min(hi, v)))] : null));
    const path = points.filter(Boolean).map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2.2" stroke-dasharray="${s.dash}"/>`);
    for (const p of points.filter(Boolean)) parts.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="3.2" fill="${s.dash ? "#fff" : s.color}" stroke="${s.color}" stroke-width="1.6"/>`);
  }
  // Legend, top left inside the plot.
  series.forEach((s, i) => {
    const ly = plot.y + 14 + i * 16;
    parts.push(`<line x1="${plot.x + 8}" x2="${plot.x + 34}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.2" stroke-dasharray="${s.dash}"/>`);
    parts.push(text(plot.x + 40, ly, s.label, { size: 11 }));
  });
  return parts.join("\n");
}

/** Grouped bars: groups × bars, each bar { label, value, color, hatch }. */
function barChart(x, y, title, yLabel, groups, { refs = [], note } = {}) {
  const { plot, parts } = panel(x, y, title, "", yLabel);
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite);
  const hi = Math.max(...values, ...refs.map((r) => r.value)) * 1.2 || 1;
  const sy = scale(0, hi, plot.y + plot.h, plot.y);
  for (const t of linearTicks(0, hi)) {
    parts.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e4e4e4"/>`);
    parts.push(text(plot.x - 6, sy(t) + 4, tickLabel(t), { anchor: "end", size: 11 }));
  }
  const groupW = plot.w / groups.length;
  groups.forEach((g, gi) => {
    const barW = Math.min(34, (groupW - 24) / g.bars.length);
    const start = plot.x + gi * groupW + (groupW - barW * g.bars.length) / 2;
    g.bars.forEach((b, bi) => {
      const bx = start + bi * barW;
      const v = Number.isFinite(b.value) ? b.value : 0;
      parts.push(`<rect x="${bx + 2}" y="${sy(v)}" width="${barW - 4}" height="${plot.y + plot.h - sy(v)}" fill="${b.hatch ? "#fff" : b.color}" stroke="${b.color}" stroke-width="1.6"/>`);
      parts.push(text(bx + barW / 2, sy(v) - 4, fmt(b.value, b.value < 10 ? 2 : 1), { anchor: "middle", size: 10 }));
    });
    parts.push(text(plot.x + gi * groupW + groupW / 2, plot.y + plot.h + 16, g.label, { anchor: "middle", size: 11 }));
  });
  const legend = groups[0]?.bars ?? [];
  legend.forEach((b, i) => {
    const lx = plot.x + 8 + (i % 2) * 150;
    const ly = plot.y + 14 + Math.floor(i / 2) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="10" fill="${b.hatch ? "#fff" : b.color}" stroke="${b.color}" stroke-width="1.6"/>`);
    parts.push(text(lx + 20, ly, b.legend, { size: 11 }));
  });
  if (note) note.forEach((line, i) => parts.push(text(plot.x + plot.w / 2, plot.y + plot.h + 32 + i * 14, line, { anchor: "middle", size: 11, fill: "#555" })));
  return parts.join("\n");
}

/** The key figures against their targets, as a text panel. */
function targetsPanel(x, y, targets, notes) {
  const { parts } = panel(x, y, "Key figures vs targets", "", "", true);
  targets.forEach((t, i) => {
    const ly = y + MARGIN.top + 14 + i * 36;
    parts.push(text(x + 18, ly, t.met ? "✔" : "✘", { size: 16, weight: "bold", fill: t.met ? "#1e8c3a" : "#c0392b" }));
    parts.push(text(x + 40, ly, t.name, { size: 12, weight: "bold" }));
    parts.push(text(x + 40, ly + 15, `${t.value}  (target ${t.target})`, { size: 11, fill: "#444" }));
  });
  notes.forEach((line, i) => parts.push(text(x + 18, y + PANEL_H - 14 - (notes.length - 1 - i) * 14, line, { size: 10.5, fill: "#666" })));
  return parts.join("\n");
}

/** The whole chart as SVG text. */
export function chartSvg(results) {
  const rows = Object.entries(results.sizes);
  const labels = rows.map(([label]) => label);
  const pick = (fn) => rows.map(([, r]) => fn(r));
  const lines = (field) => SERIES.map((s) => ({ ...s, color: COLORS[s.key], values: pick((r) => field(r, s.key)) }));
  const mbps = { putEncrypted: "putEncryptedMBps", putPassthrough: "putPassthroughMBps", getEncrypted: "getEncryptedMBps", getPassthrough: "getPassthroughMBps" };
  const rss = { putEncrypted: "putEncryptedGrowthMiB", putPassthrough: "putPassthroughGrowthMiB", getEncrypted: "getEncryptedGrowthMiB", getPassthrough: "getPassthroughGrowthMiB" };
  const col = (i) => 20 + i * (PANEL_W + 40);
  const row = (i) => 70 + i * (PANEL_H + 40);
  const c = results.cpu ?? {};
  const cpuRefs = Number.isFinite(c.opensslAesGcmSecondsPerGiB)
    ? [
        { value: c.opensslAesGcmSecondsPerGiB, label: `openssl aes-256-gcm ${fmt(c.opensslAesGcmSecondsPerGiB)} s`, color: "#555" },
        { value: 2 * c.opensslAesGcmSecondsPerGiB, label: "2x openssl", color: "#c0392b" },
      ]
    : [];
  const lat = results.latency ?? {};
  const rng = results.range ?? {};
  const env = results.environment ?? {};
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#f3f4f6"/>`,
    text(20, 30, "S3 SSE-KMS gateway: encrypted (SSE-KMS) vs bare R2 passthrough, same workerd, same local R2 (Miniflare)", { size: 18, weight: "bold" }),
    text(20, 52, `${results.quick ? "QUICK run · " : ""}${env.cpu ?? ""} · ${env.cores ?? "?"} cores · load before ${env.loadBefore ?? "?"} · ${(results.date ?? "").slice(0, 16).replace("T", " ")} UTC · medians of interleaved repetitions`, { size: 12, fill: "#555" }),
    sizeChart(col(0), row(0), "Throughput (MB/s, median)", "MB/s", labels, lines((r, k) => r[mbps[k]]), { log: true }),
    sizeChart(
      col(1),
      row(0),
      "Encrypted / passthrough throughput",
      "ratio",
      labels,
      [
        { label: "PUT ratio", color: COLORS.putEncrypted, dash: "", values: pick((r) => r.putRatio) },
        { label: "GET ratio", color: COLORS.getEncrypted, dash: "", values: pick((r) => r.getRatio) },
      ],
      { min: 0, max: Math.max(1.2, ...pick((r) => r.putRatio), ...pick((r) => r.getRatio)) * 1.05, refs: [{ value: 0.9, label: "target 0.9" }, { value: 1, label: "1.0", color: "#888" }] },
    ),
    targetsPanel(col(2), row(0), results.targets ?? [], [
      "Passthrough: bare R2.put/R2.get route in the same worker and workerd.",
      "RSS: workerd resident set, peak during a transfer minus its start.",
      "CPU: workerd user+system seconds (includes the local R2 simulator).",
    ]),
    sizeChart(col(0), row(1), "workerd RSS growth per transfer (MiB, max)", "MiB", labels, lines((r, k) => r[rss[k]]), {
      min: 0,
      max: Math.max(80, ...rows.flatMap(([, r]) => Object.values(rss).map((f) => r[f]).filter(Number.isFinite))) * 1.1,
      refs: [{ value: 64, label: "target < 64 MiB" }],
    }),
    sizeChart(col(1), row(1), "workerd CPU per GiB transferred (s)", "CPU seconds / GiB", labels, lines((r, k) => r.cpuSecondsPerGiB?.[k]), { log: true, refs: cpuRefs }),
    barChart(
      col(2),
      row(1),
      "Latency (ms): 1 KiB objects, 1-byte ranges",
      "ms",
      [
        { label: "PUT 1 KiB", bars: latencyBars(lat.putPassthroughP50Ms, lat.putEncryptedP50Ms, lat.putPassthroughP99Ms, lat.putEncryptedP99Ms) },
        { label: "GET 1 KiB", bars: latencyBars(lat.getPassthroughP50Ms, lat.getEncryptedP50Ms, lat.getPassthroughP99Ms, lat.getEncryptedP99Ms) },
        { label: `1-byte range, ${rng.objectSize ?? ""}`, bars: latencyBars(rng.passthroughP50Ms, rng.encryptedP50Ms, rng.passthroughP99Ms, rng.encryptedP99Ms) },
      ],
      { note: [`${lat.samples ?? "?"} requests per 1 KiB case, ${rng.samples ?? "?"} ranges; range reads ${rng.r2ChunksReadPerRange ?? "?"} chunk(s), ${rng.r2BytesReadPerRange ?? "?"} B from R2`] },
    ),
    "</svg>",
  ];
  return svg.join("\n");
}

function latencyBars(p50Pass, p50Enc, p99Pass, p99Enc) {
  return [
    { legend: "p50 passthrough", value: p50Pass, color: "#7f8c8d", hatch: true },
    { legend: "p50 encrypted", value: p50Enc, color: "#7f8c8d" },
    { legend: "p99 passthrough", value: p99Pass, color: "#8e44ad", hatch: true },
    { legend: "p99 encrypted", value: p99Enc, color: "#8e44ad" },
  ];
}

/** Writes `svg` as a PNG through headless Chromium (CHROMIUM_PATH or /usr/bin/chromium). */
export async function writePng(svg, path) {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: W, height: H }, deviceScaleFactor: 1 });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path, clip: { x: 0, y: 0, width: W, height: H } });
  } finally {
    await browser.close();
  }
}

export function writeSvg(svg, path) {
  writeFileSync(path, svg);
}
