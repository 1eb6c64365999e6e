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
  for (let i = 0; i < 30 && el.scrollWidth > el.clientWidth && size > 8; i++) {
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

let serverOffset = 0, campaign = null;
function countdown() {
  const el = $("countdown");
  if (!campaign) { el.textContent = ""; return; }
  const now = Date.now() + serverOffset;
  const starting = now < campaign.starts_at;
  const left = Math.max(0, (starting ? campaign.starts_at : campaign.ends_at) - now);
  const h = Math.floor(left / 3.6e6), m = Math.floor(left / 6e4) % 60, s = Math.floor(left / 1e3) % 60, ds = Math.floor(left / 100) % 10;
  const clock = `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}.${ds}`;
  const what = campaign.name ? `“${esc(campaign.name)}”` : `SKU ${campaign.sku_id}`;
  el.innerHTML = `Flash sale ${what} · ${int.format(campaign.quantity)} units · ${starting ? "starts in" : "ends in"} <b id="clock">${clock}</b>`;
}
setInterval(countdown, 100);

// The chart: orders as bars, payments as a line over them, so that neither hides the other when
// they are equal; x is time (the last two minutes, seconds before this process started left
// empty rather than drawn as zeros); hovering shows a second's figures.
const WINDOW_S = 120;
let plot = null, lastTimeline = [];
function tooltipPlugin() {
  const tip = $("tooltip");
  return {
    hooks: {
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined || u.data[0][i] === undefined) { tip.style.display = "none"; return; }
        const t = new Date(u.data[0][i] * 1000).toLocaleTimeString();
        tip.innerHTML = `${t}<br>orders <b>${int.format(u.data[1][i])}</b> · payments <b>${int.format(u.data[2][i])}</b>`;
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
function makePlot() {
  const axis = { stroke: "#8a8fa8", grid: { stroke: "#232637", width: 1 }, ticks: { stroke: "#232637" },
    font: "12px system-ui, sans-serif" };
  const opts = {
    ...chartSize(),
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 8 } },
    scales: {
      x: { time: true, range: (u, min, max) => [serverNow() / 1000 - WINDOW_S, serverNow() / 1000] },
      y: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] },
    },
    axes: [{ ...axis, values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })) },
           { ...axis, size: 60, values: (u, ticks) => ticks.map((v) => int.format(v)) }],
    series: [
      {},
      { label: "orders / s", stroke: "#ff3b47", fill: "rgba(255, 59, 71, .45)", width: 1, paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } },
      { label: "payments / s", stroke: "#34d399", width: 3, points: { show: false } },
    ],
    plugins: [tooltipPlugin()],
  };
  plot = new uPlot(opts, [[], [], []], $("chart"));
}
const serverNow = () => Date.now() + serverOffset;
function chart(timeline) {
  lastTimeline = timeline;
  if (!plot) makePlot();
  plot.setData([timeline.map((s) => s.t), timeline.map((s) => s.orders), timeline.map((s) => s.payments)]);
}
new ResizeObserver(() => { if (plot) { plot.setSize(chartSize()); chart(lastTimeline); } }).observe($("chart"));

function ranked(id, rows, fallback, units) {
  const max = Math.max(1, ...rows.map((r) => Number(r.gmv)));
  // Two SKUs may share a title: those carry their id as well.
  const seen = {};
  rows.forEach((r) => { seen[r.name] = (seen[r.name] || 0) + 1; });
  rows = rows.map((r) => ({ ...r, name: r.name && seen[r.name] > 1 ? `${r.name} #${r.id}` : r.name }));
  const head = units
    ? `<tr><th data-width="38">SKU</th><th data-width="14"></th><th>GMV</th><th data-width="14">units</th></tr>`
    : `<tr><th data-width="44">merchant</th><th data-width="20"></th><th>GMV</th></tr>`;
  html($(id), head + (rows.map((r) =>
    `<tr><td title="${esc(r.name || "")}">${esc(r.name || `${fallback} #${r.id}`)}</td>` +
    `<td><div class="bar" data-width="${(100 * Number(r.gmv)) / max}"></div></td>` +
    `<td class="num">${money(r.gmv)}</td>${units ? `<td class="num">${int.format(r.units)}</td>` : ""}</tr>`).join("") ||
    `<tr><td colspan="4" class="empty">no sales yet</td></tr>`));
}

function admission(a) {
  const row = (name, c) => {
    const shed = Object.values(c.shed).reduce((x, y) => x + y, 0);
    return `<tr><td>${name}</td><td class="num">${int.format(c.admitted)}</td><td class="num shed">${int.format(shed)}</td></tr>`;
  };
  html($("admission"), `<tr><th data-width="46">class</th><th>admitted</th><th>shed (429)</th></tr>` +
    row("payments", a.pay) + row("orders", a.order) + row("reads", a.read) + row("operator", a.operator) +
    `<tr><td>in flight / limit</td><td class="num" colspan="2">${int.format(a.in_flight)} / ${int.format(a.limit)}</td></tr>` +
    `<tr><td>waiting room</td><td class="num" colspan="2">${int.format(a.waiting_room_tickets_waiting)}</td></tr>`);
}

function funnels(list) {
  html($("funnels"), `<tr><th data-width="34">campaign</th><th>views</th><th>→ order</th><th>orders</th><th>→ paid</th><th>paid</th></tr>` +
    (list.map((f) =>
      `<tr><td title="${esc(f.name || "")}">${esc(f.name || `campaign #${f.campaign_id}`)}</td><td class="num">${int.format(f.views)}</td>` +
      `<td class="num">${pct(f.view_to_order)}</td><td class="num">${int.format(f.orders)}</td>` +
      `<td class="num">${pct(f.order_to_paid)}</td><td class="num">${int.format(f.paid)}</td></tr>`).join("") ||
    `<tr><td colspan="6" class="empty">no campaign orders yet</td></tr>`));
}

function experiment(e) {
  if (!e) { html($("ab"), `<tr><td class="empty">no experiment defined</td></tr>`); $("ab-verdict").textContent = ""; return; }
  $("ab-title").textContent = `A/B experiment · ${e.name}`;
  const p = (t) => (t ? t.p_value.toFixed(3) : "–");
  html($("ab"), `<tr><th data-width="22">variant</th><th>buyers shown</th><th>converted</th><th>conversion</th>` +
    `<th>p (conv.)</th><th>AOV</th><th>p (AOV)</th><th>GMV / buyer</th></tr>` +
    e.variants.map((v) => `<tr><td>${esc(v.name)}</td><td class="num">${int.format(v.buyers)}</td><td class="num">${int.format(v.converted)}</td>` +
      `<td class="num">${pct(v.conversion, 2)}</td><td class="num">${p(v.conversion_test)}</td><td class="num">${money(v.aov)}</td>` +
      `<td class="num">${p(v.aov_test)}</td><td class="num">${money(v.gmv_per_buyer)}</td></tr>`).join(""));
  $("ab-verdict").textContent = e.variants.filter((v) => v.verdict).map((v) => v.verdict).join(" ");
}

function render(frame) {
  serverOffset = frame.server_time - Date.now();
  campaign = frame.next_campaign;
  const s = frame.summary;
  targetGmv = Number(s.gmv);
  $("currency").textContent = s.currency || "CNY";
  fit($("ops"), int.format(s.orders_per_s));
  fit($("pps"), int.format(s.payments_per_s));
  fit($("paid"), int.format(s.paid_orders));
  fit($("aov"), money(s.aov));
  fit($("peak"), int.format(s.peak_orders_per_s));
  fit($("refunds"), int.format(s.refunded_orders));
  chart(frame.timeline);
  ranked("skus", frame.top_skus, "SKU", true);
  ranked("merchants", frame.top_merchants, "merchant", false);
  funnels(frame.funnels);
  admission(frame.admission);
  experiment(frame.experiment);
  $("status").className = "status";
  $("status").textContent = "live · " + new Date(frame.server_time).toLocaleTimeString();
}

function connect() {
  const source = new EventSource("/v1/live?key=" + encodeURIComponent(key));
  source.addEventListener("frame", (e) => render(JSON.parse(e.data)));
  source.onerror = () => {
    $("status").className = "status down";
    $("status").textContent = key ? "reconnecting…" : "open /screen?key=<viewer key> once";
  };
}
connect();
