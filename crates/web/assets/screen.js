"use strict";
// The key comes once in the URL (`?key=`), is kept in this tab's session storage and taken out
// of the address bar, so it is not left on the wall for anyone to read.
const params = new URLSearchParams(location.search);
if (params.has("key")) {
  sessionStorage.setItem("elevens.screen.key", params.get("key"));
  params.delete("key");
  history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
}
const key = sessionStorage.getItem("elevens.screen.key") || "";
const $ = (id) => document.getElementById(id);
const int = new Intl.NumberFormat("en-US");
const money = (minor) => (Number(minor) / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(digits)}%`);

// A frame comes every second: past this without one, the figures on the wall are not live and
// the whole screen says so (a frozen GMV read from 5 m looks like a sale that stopped).
const STALE_AFTER_MS = 2500;
// Where a wall's clock and the chart's times are read: the browser's zone, named on the clock.
const zone = new Intl.DateTimeFormat("en-GB", { timeZoneName: "short" }).formatToParts(new Date())
  .find((p) => p.type === "timeZoneName")?.value || "";
const time24 = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const hhmm = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });

// Markup into an element; widths come as `data-width` (percent) and are set through the style
// object, as the page's Content-Security-Policy refuses inline style attributes.
function html(el, markup) {
  el.innerHTML = markup;
  el.querySelectorAll("[data-width]").forEach((e) => { e.style.width = `${e.dataset.width}%`; });
}

// A figure keeps its card's size: its font shrinks until the text fits (the CSS size is the most).
function fit(el, text) {
  if (el.textContent === text && el.dataset.fitted === String(el.clientWidth)) return;
  el.textContent = text;
  el.style.fontSize = "";
  let size = parseFloat(getComputedStyle(el).fontSize);
  for (let i = 0; i < 30 && el.scrollWidth > el.clientWidth && size > 20; i++) {
    size *= 0.92;
    el.style.fontSize = `${size}px`;
  }
  el.dataset.fitted = String(el.clientWidth);
}

// GMV counts up smoothly between frames instead of jumping once a second.
let shownGmv = 0, targetGmv = 0;
function tick() {
  shownGmv += (targetGmv - shownGmv) * 0.15;
  if (Math.abs(targetGmv - shownGmv) < 1) shownGmv = targetGmv;
  fit($("gmv"), money(Math.round(shownGmv)));
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

let serverOffset = 0, sale = null, lastFrameAt = 0, problem = null;
const serverNow = () => Date.now() + serverOffset;

// The featured sale's name and countdown, redrawn ten times a second.
function countdown() {
  $("clock").innerHTML = `${time24.format(new Date(serverNow()))} <small>${esc(zone)}</small>`;
  const el = $("countdown");
  if (!sale) { el.textContent = ""; return; }
  const now = serverNow();
  const starting = now < sale.starts_at;
  const left = Math.max(0, (starting ? sale.starts_at : sale.ends_at) - now);
  const h = Math.floor(left / 3.6e6), m = Math.floor(left / 6e4) % 60, s = Math.floor(left / 1e3) % 60;
  const clock = `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  el.innerHTML = sale.status === "ended" || sale.status === "cancelled" || (!starting && left === 0)
    ? `ended at ${hhmm.format(new Date(sale.ends_at))}`
    : `${starting ? "starts in" : "ends in"} <b>${clock}</b>`;
}
setInterval(countdown, 100);

function featured(s) {
  sale = s;
  if (!s) {
    fit($("sale-name"), "No flash sale scheduled");
    $("units").hidden = true;
    return;
  }
  const name = s.name || s.sku_title || `SKU #${s.sku_id}`;
  const what = s.status === "scheduled" ? "Next flash sale" : "Flash sale";
  fit($("sale-name"), `${what} · ${name}${s.chosen ? " ★" : ""}`);
  $("sale-name").title = s.chosen ? "featured by the operator" : "the open sale with the most GMV";
  $("units").hidden = false;
  if (s.taken === null || s.taken === undefined) {
    $("units-taken").style.width = "0%";
    $("units-text").textContent = `${int.format(s.quantity)} units`;
    return;
  }
  const share = s.quantity > 0 ? Math.min(100, (100 * s.taken) / s.quantity) : 0;
  $("units-taken").style.width = `${share}%`;
  $("units-text").textContent = s.remaining === 0
    ? `all ${int.format(s.quantity)} units ordered · sold out`
    : `${int.format(s.taken)} ordered · ${int.format(s.remaining)} left of ${int.format(s.quantity)}`;
}

// The chart: orders as bars, payments and refusals as lines over them, so that none hides
// another when they are equal; x is time (the last two minutes, seconds before this process
// started left empty rather than drawn as zeros); hovering shows a second's figures.
const WINDOW_S = 120;
let plot = null, lastData = [[], [], [], []];
function tooltipPlugin() {
  const tip = $("tooltip");
  return {
    hooks: {
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined || u.data[0][i] === undefined) { tip.style.display = "none"; return; }
        const t = time24.format(new Date(u.data[0][i] * 1000));
        const refused = u.data[3][i] === null ? "–" : int.format(u.data[3][i]);
        tip.innerHTML = `${t}<br>orders <b>${int.format(u.data[1][i])}</b> · payments <b>${int.format(u.data[2][i])}</b> · turned away <b>${refused}</b>`;
        const left = Math.min(u.cursor.left + 14, u.over.clientWidth - tip.offsetWidth);
        tip.style.left = `${left + u.over.offsetLeft}px`;
        tip.style.top = `${Math.max(0, u.cursor.top - 40) + u.over.offsetTop}px`;
        tip.style.display = "block";
      },
    },
  };
}
function chartSize() {
  const box = $("chart");
  return { width: Math.max(100, box.clientWidth), height: Math.max(60, box.clientHeight) };
}
// The axes' labels as large as the page's smallest text (the gate's line is of that size).
function makePlot() {
  const px = Math.max(12, Math.round(parseFloat(getComputedStyle($("gate")).fontSize)));
  const font = `${px}px system-ui, sans-serif`;
  const axis = { stroke: "#a3a8c3", grid: { stroke: "#232637", width: 1 }, ticks: { stroke: "#232637" }, font };
  const opts = {
    ...chartSize(),
    // Room on the right for the last time label, which is centred on its tick.
    padding: [px / 2, px * 2.5, 0, 0],
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 8 } },
    scales: {
      x: { time: true, range: () => [serverNow() / 1000 - WINDOW_S, serverNow() / 1000] },
      y: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] },
    },
    axes: [{ ...axis, size: px * 2, space: px * 7, values: (u, ticks) => ticks.map((t) => time24.format(new Date(t * 1000))) },
           { ...axis, size: px * 4, values: (u, ticks) => ticks.map((v) => int.format(v)) }],
    series: [
      {},
      { label: "orders / s", stroke: "#ff3b47", fill: "rgba(255, 59, 71, .45)", width: 1, paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
      { label: "payments / s", stroke: "#34d399", width: 3, points: { show: false } },
      { label: "turned away / s", stroke: "#ffc94a", width: 3, dash: [10, 6], points: { show: false } },
    ],
    plugins: [tooltipPlugin()],
  };
  plot = new uPlot(opts, lastData, $("chart"));
}
function chart(timeline, refusals) {
  const refused = new Map(refusals.map((r) => [r.t, r.refused]));
  lastData = [timeline.map((s) => s.t), timeline.map((s) => s.orders), timeline.map((s) => s.payments),
    timeline.map((s) => (refused.has(s.t) ? refused.get(s.t) : null))];
  if (!plot) makePlot();
  plot.setData(lastData);
}
// A new size may bring a new text size: the chart is drawn again, not stretched.
new ResizeObserver(() => { if (plot) { plot.destroy(); makePlot(); } }).observe($("chart"));

function ranked(id, rows, fallback, units) {
  const max = Math.max(1, ...rows.map((r) => Number(r.gmv)));
  // Two SKUs may share a title: those carry their id as well.
  const seen = {};
  rows.forEach((r) => { seen[r.name] = (seen[r.name] || 0) + 1; });
  rows = rows.map((r) => ({ ...r, name: r.name && seen[r.name] > 1 ? `${r.name} #${r.id}` : r.name }));
  const head = units
    ? `<tr><th data-width="40">SKU</th><th data-width="14"></th><th>GMV</th><th data-width="16">units</th></tr>`
    : `<tr><th data-width="46">merchant</th><th data-width="18"></th><th>GMV</th></tr>`;
  html($(id), head + (rows.map((r) =>
    `<tr><td title="${esc(r.name || "")}">${esc(r.name || `${fallback} #${r.id}`)}</td>` +
    `<td><div class="bar" data-width="${(100 * Number(r.gmv)) / max}"></div></td>` +
    `<td class="num">${money(r.gmv)}</td>${units ? `<td class="num">${int.format(r.units)}</td>` : ""}</tr>`).join("") ||
    `<tr><td colspan="4" class="empty">no sales yet</td></tr>`));
}

// Why requests are turned away, in words, with the gate's state in a line under it.
function turnedAway(frame) {
  const last = frame.refusals.length ? frame.refusals[frame.refusals.length - 1].refused : 0;
  fit($("refused"), int.format(last));
  $("refused").classList.toggle("warn", last > 0);
  html($("why"), frame.shedding.length
    ? frame.shedding.slice(0, 3).map((s) => `<li><span class="reason">${esc(s.reason)}</span><span class="count">${int.format(s.refused)} in 10 s</span></li>`).join("")
    : `<li class="calm">Nobody turned away in the last 10 s</li>`);
  const a = frame.admission;
  const waiting = a.waiting_room_tickets_waiting;
  $("gate").textContent = `${int.format(a.in_flight)} in progress of ${int.format(a.limit)} allowed` +
    (waiting ? ` · ${int.format(waiting)} in the waiting room` : "");
}

function funnels(list) {
  html($("funnels"), `<tr><th data-width="34">sale</th><th>views</th><th>orders</th><th>→ paid</th><th>paid</th></tr>` +
    (list.map((f) => {
      const name = f.name || f.sku_title || `sale #${f.campaign_id}`;
      const state = f.status === "open" ? "" : ` <span class="tag">${esc(f.status)}</span>`;
      return `<tr><td title="${esc(name)}">${esc(name)}${state}</td><td class="num">${int.format(f.views)}</td>` +
        `<td class="num">${int.format(f.orders)}</td><td class="num">${pct(f.order_to_paid, 0)}</td><td class="num">${int.format(f.paid)}</td></tr>`;
    }).join("") ||
    `<tr><td colspan="5" class="empty">no flash sale yet</td></tr>`));
}

function experiment(e) {
  if (!e) { html($("ab"), `<tr><td class="empty">no experiment defined</td></tr>`); $("ab-verdict").textContent = ""; return; }
  $("ab-title").textContent = `A/B experiment · ${e.name}`;
  html($("ab"), `<tr><th data-width="22">variant</th><th>buyers shown</th><th>conversion</th><th>AOV</th><th>GMV / buyer</th></tr>` +
    e.variants.map((v) => `<tr><td>${esc(v.name)}</td><td class="num">${int.format(v.buyers)}</td>` +
      `<td class="num">${pct(v.conversion, 2)}</td><td class="num">${money(v.aov)}</td><td class="num">${money(v.gmv_per_buyer)}</td></tr>`).join(""));
  $("ab-verdict").textContent = e.variants.filter((v) => v.verdict).map((v) => v.verdict).join(" ");
}

function render(frame) {
  serverOffset = frame.server_time - Date.now();
  lastFrameAt = Date.now();
  const s = frame.summary;
  targetGmv = Number(s.gmv);
  $("currency").textContent = s.currency || "CNY";
  fit($("ops"), int.format(s.orders_per_s));
  fit($("pps"), int.format(s.payments_per_s));
  fit($("paid"), int.format(s.paid_orders));
  fit($("aov"), money(s.aov));
  fit($("peak"), int.format(s.peak_orders_per_s));
  fit($("refunds"), int.format(s.refunded_orders));
  featured(frame.featured);
  chart(frame.timeline, frame.refusals);
  ranked("skus", frame.top_skus, "SKU", true);
  ranked("merchants", frame.top_merchants, "merchant", false);
  funnels(frame.funnels);
  turnedAway(frame);
  experiment(frame.experiment);
  problem = null;
  show();
}

// What covers the whole screen when its figures cannot be trusted: none, a missing or refused
// key, or a server not heard from.
function show() {
  const stale = key && lastFrameAt && Date.now() - lastFrameAt > STALE_AFTER_MS;
  const never = key && !lastFrameAt && Date.now() - started > STALE_AFTER_MS;
  let title = null, text = "";
  if (!key) {
    title = "This screen needs a key";
    text = "Open /screen?key=<viewer key> once on this screen. No figures are shown without one.";
  } else if (problem === "refused") {
    title = "Key refused";
    text = "The server refused this screen's key. Open /screen?key=<viewer key> with a valid viewer key.";
  } else if (stale) {
    const ago = Math.round((Date.now() - lastFrameAt) / 1000);
    title = "Not live";
    text = `No figures from the server since ${time24.format(new Date(lastFrameAt + serverOffset))} (${ago} s ago). The figures below are frozen. Reconnecting…`;
  } else if (never) {
    title = "Not live";
    text = "The server does not answer. Reconnecting…";
  }
  document.body.classList.toggle("down", title !== null);
  $("overlay").hidden = title === null;
  if (title !== null) {
    $("overlay-title").textContent = title;
    $("overlay-text").textContent = text;
  }
  $("status").className = title === null ? "status" : "status down";
  $("status").textContent = title === null ? "live" : title.toLowerCase();
}
const started = Date.now();
setInterval(show, 250);

// Whether the key is refused or the server is away: EventSource does not say, a request does.
async function diagnose() {
  try {
    const r = await fetch("/v1/analytics/summary", { headers: { authorization: `Bearer ${key}` } });
    problem = r.status === 401 || r.status === 403 ? "refused" : null;
  } catch {
    problem = null;
  }
  show();
}

function connect() {
  if (!key) { show(); return; }
  const source = new EventSource("/v1/live?key=" + encodeURIComponent(key));
  source.addEventListener("frame", (e) => render(JSON.parse(e.data)));
  source.onerror = () => { diagnose(); };
}
connect();
