// The elevens console: one page over the public API. The key lives in session storage (never in
// the address bar); every state-changing request carries an Idempotency-Key that stays the same
// until the API has answered it, so a double click or a retry never does a thing twice. Text from
// the API is put in the page as text, never as markup.
"use strict";

const KEY = "elevens.console.key";
const LIVE_MS = 2000;
// A SKU with fewer units than this free to order is running out (the store's dashboard).
const LOW_STOCK_UNITS = 10;
// Requests one list page may make to fill itself when the API's pages come back short.
const SHORT_PAGES_FOLLOWED = 10;
const app = document.getElementById("app");
// The language: the one chosen here (kept in this browser), else the browser's; Chinese words
// come from console-zh.js. Dates and amounts are formatted for it.
const LANG_KEY = "elevens.console.lang";
let LANG = localStorage.getItem(LANG_KEY) || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en");
const t = (s) => (LANG === "zh-CN" && typeof ZH_CN !== "undefined" && ZH_CN[s]) || s;
document.documentElement.lang = LANG;
let me = null;
let timers = [];

// ---- DOM ----
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    // Through the style object: the page's Content-Security-Policy refuses style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const card = (title, ...body) => h("section", { class: "card" }, title ? h("h3", {}, t(title)) : null, ...body);
const tag = (s) => h("span", { class: "tag " + s }, t(s.replace(/_/g, " ")));

// ---- money and time: integers in minor units, formatted without floating point ----
function money(minor, currency) {
  if (minor === null || minor === undefined) return "";
  const n = BigInt(minor);
  const neg = n < 0n;
  const a = neg ? -n : n;
  const units = (a / 100n).toLocaleString(LANG);
  const cents = String(a % 100n).padStart(2, "0");
  return (neg ? "-" : "") + units + "." + cents + (currency ? " " + currency : "");
}
// Basis points as a percentage, without floating point and without trailing zeros
// (1234 -> "12.34%", 1250 -> "12.5%", 1500 -> "15%").
const percent = (bp) => {
  const cents = String(bp % 100).padStart(2, "0").replace(/0+$/, "");
  return Math.floor(bp / 100) + (cents ? "." + cents : "") + "%";
};
// "12.34" -> 1234; refuses what is not an amount with at most two decimals.
function minorUnits(text) {
  const m = /^\s*(\d{1,13})(?:\.(\d{1,2}))?\s*$/.exec(text);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
}
// A time: in the store's zone, named, on a store's pages; else in this browser's, for its language.
const when = (ms) => (!ms ? "" : storeZone ? whenZoned(ms) : new Date(Number(ms)).toLocaleString(LANG, { hour12: false }));
function span(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = String(Math.floor(s / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return (d ? d + "d " : "") + hh + ":" + mm + ":" + ss;
}

// ---- the API ----
class ApiError extends Error {
  constructor(status, body) {
    super(body.message || "HTTP " + status);
    this.status = status; this.code = body.code; this.body = body;
  }
}
function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return "console-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
async function api(method, path, body, idempotencyKey) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { code: "network", message: "The server could not be reached; try again." });
  }
  const text = await response.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch (e) { json = { message: text }; }
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    if (retry && !json.message) json.message = "Busy: try again in " + retry + " s.";
    else if (retry) json.message += " (try again in " + retry + " s)";
    throw new ApiError(response.status, json);
  }
  return json;
}
// A refusal the client must not repeat with the same key (a different request would be refused
// as a key reused): anything but no answer, 429 and 503, which may be retried as they are.
const settled = (e) => !(e instanceof ApiError) || ![0, 429, 503].includes(e.status);

// Keys of list actions (dispatch, approve, revoke...), one per action and entity until it is
// answered: the second click of a double click sends the same key.
const actionKeys = new Map();
async function act(name, method, path, body, button) {
  const key = actionKeys.get(name) || newKey();
  actionKeys.set(name, key);
  if (button) button.disabled = true;
  try {
    const out = await api(method, path, body, key);
    actionKeys.delete(name);
    return out;
  } catch (e) {
    if (settled(e)) actionKeys.delete(name);
    throw e;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- forms: fields validated as the API does; the API's message shown beside its field ----
// A field: {name, label, type, required, min, max, maxlength, pattern, options, value, wide, money, help}
function form(spec) {
  let key = newKey();
  const inputs = {};
  const errors = {};
  const formErr = h("div", { class: "err formerr", role: "alert" });
  const done = h("div", { "aria-live": "polite" });
  const submit = h("button", { class: "primary", type: "submit" }, t(spec.submit || "Save"));
  const el = h("form", { class: "f", novalidate: true, "aria-label": spec.title || spec.submit });
  for (const f of spec.fields) {
    const id = "f-" + Math.random().toString(36).slice(2);
    let input;
    if (f.options) {
      input = h("select", { id, name: f.name, required: f.required },
        f.options.map(([v, text]) => h("option", { value: v, selected: String(f.value) === String(v) }, t(text))));
    } else if (f.picker) {
      // Search as you type: the API's search fills the suggestions; the choice carries its id.
      const options = h("datalist", { id: id + "-list" });
      input = h("input", { id, name: f.name, type: "text", required: f.required, list: id + "-list", autocomplete: "off",
        placeholder: f.placeholder || "type a name", value: f.value === undefined ? null : f.value });
      let timer = null;
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const q = input.value.replace(/\s*\(#\d+\)\s*$/, "").trim();
          if (!q || /^\d+$/.test(q)) return;
          try { options.replaceChildren(...(await f.picker(q)).map(([id, text]) => h("option", { value: text + " (#" + id + ")" }))); } catch (e) { /* suggestions only */ }
        }, 150);
      });
      el.append(options);
    } else if (f.type === "textarea") {
      input = h("textarea", { id, name: f.name, rows: 3, maxlength: f.maxlength });
      if (f.value !== undefined) input.value = f.value;
    } else {
      input = h("input", {
        id, name: f.name, type: f.money ? "text" : f.type || "text", required: f.required, min: f.min, max: f.max,
        maxlength: f.maxlength, pattern: f.pattern, inputmode: f.money ? "decimal" : null,
        autocomplete: f.autocomplete || "off", value: f.value === undefined ? null : f.value,
        placeholder: f.placeholder,
      });
    }
    const err = h("div", { class: "err", id: id + "-err" });
    input.setAttribute("aria-describedby", id + "-err");
    inputs[f.name] = input; errors[f.name] = err;
    el.append(h("div", { class: "field" + (f.wide ? " wide" : "") }, h("label", { for: id }, t(f.label)), input, err));
  }
  el.append(formErr, h("div", { class: "actions wide" }, submit), done);
  const showError = (field, message) => {
    const input = inputs[field];
    if (input && errors[field]) {
      errors[field].textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    } else {
      formErr.textContent = message;
    }
  };
  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    formErr.textContent = ""; done.textContent = "";
    for (const f of spec.fields) { errors[f.name].textContent = ""; inputs[f.name].removeAttribute("aria-invalid"); }
    // The browser's checks first (required, bounds, pattern), each beside its field.
    const values = {};
    for (const f of spec.fields) {
      const input = inputs[f.name];
      if (!input.checkValidity()) return showError(f.name, input.validationMessage);
      let v = input.value.trim();
      if (v === "") { values[f.name] = undefined; continue; }
      if (f.money) {
        v = minorUnits(v);
        if (v === null) return showError(f.name, "an amount such as 12.34");
      } else if (f.picker) {
        const m = /(?:^|#)(\d+)\)?\s*$/.exec(v);
        if (!m) return showError(f.name, "pick one from the suggestions as you type its name");
        v = Number(m[1]);
      } else if (f.percent) {
        const m = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(v);
        if (!m) return showError(f.name, "a percentage such as 15 or 12.5");
        v = Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
      } else if (f.type === "number") v = Number(v);
      else if (f.type === "datetime-local") v = fromLocalInput(input.value);
      values[f.name] = v;
    }
    let body;
    try { body = spec.body(values); } catch (e) { return showError(e.field, e.message); }
    submit.disabled = true;
    try {
      const out = await api(spec.method || "POST", typeof spec.path === "function" ? spec.path(values) : spec.path, body, key);
      key = newKey();
      if (spec.reset !== false) el.reset();
      done.replaceChildren(spec.done ? spec.done(out) : h("div", { class: "notice" }, t("Done.")));
      if (spec.after) spec.after(out);
    } catch (e) {
      if (settled(e)) key = newKey();
      const field = e.body && e.body.details && e.body.details.field;
      const mapped = spec.fieldOf ? spec.fieldOf(field, e) : field;
      showError(inputs[mapped] ? mapped : null, e.message);
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}
function invalid(field, message) { const e = new Error(message); e.field = field; return e; }

// ---- lists: the API's cursors; a failure (403, 404) shown where the list would be ----
// spec: {path, query, items(json), columns: [[label, fn, cls]], cursor: "after"|"before", next(json),
//        limitParam: the page size's parameter name ("limit" unless said; null for lists without one)}
function list(spec) {
  const box = h("div", { class: "table" });
  const pager = h("div", { class: "pager" });
  const wrap = h("div", {}, box, pager);
  const stack = [];
  const selected = new Map();
  let cursor = null;
  const limit = spec.limit || 20;
  const limitParam = spec.limitParam === undefined ? "limit" : spec.limitParam;
  async function fetchPage(from, want) {
    const params = new URLSearchParams(spec.query ? spec.query() : {});
    if (limitParam) params.set(limitParam, String(want));
    if (from !== null) params.set(spec.cursor || "after", from);
    const path = typeof spec.path === "function" ? spec.path() : spec.path;
    const json = await api("GET", path + "?" + params.toString());
    return [spec.items ? spec.items(json) : json.items, spec.next ? spec.next(json) : json.next_after];
  }
  async function load() {
    // A page that looked at its bound of records comes back short with a cursor: follow it
    // (at most SHORT_PAGES_FOLLOWED requests) so that a page shows `limit` rows or the end.
    let rows = [];
    let next = cursor;
    try {
      for (let i = 0; i < SHORT_PAGES_FOLLOWED; i++) {
        const [got, after] = await fetchPage(next, limit - rows.length);
        rows = rows.concat(got);
        next = after;
        if (rows.length >= limit || next === null || next === undefined || !limitParam) break;
      }
    } catch (e) {
      if (e.status === 401) return signIn(e.message);
      box.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message));
      pager.replaceChildren();
      return;
    }
    // With `select`, a first column of checkboxes: `wrap.selected()` is the rows ticked.
    selected.clear();
    const pick = (row) => {
      const box = h("input", { type: "checkbox", "aria-label": "select " + spec.select(row) });
      box.addEventListener("change", () => { if (box.checked) selected.set(spec.select(row), row); else selected.delete(spec.select(row)); });
      return box;
    };
    const columns = spec.select ? [["", pick, "pick"], ...spec.columns] : spec.columns;
    wrap.rows = rows;
    // Each cell carries its column's name: on a phone the rows are cards, each value labelled.
    const table = h("table", {},
      h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls, scope: "col" }, t(label))))),
      h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, columns.map(([label, fn, cls]) => h("td", { class: cls, "data-label": label ? t(label) : null }, fn(row, load)))))
        : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, t(spec.empty || "Nothing here yet.")))));
    box.replaceChildren(table);
    const prev = h("button", { type: "button", disabled: !stack.length, onclick: () => { cursor = stack.pop(); load(); } }, t("‹ Previous"));
    const more = h("button", { type: "button", disabled: next === null || next === undefined,
      onclick: () => { stack.push(cursor); cursor = next; load(); } }, t("Next ›"));
    pager.replaceChildren(prev, more, h("span", {}, rows.length + " " + t("shown")));
  }
  wrap.selected = () => [...selected.values()];
  wrap.reload = () => { stack.length = 0; cursor = null; return load(); };
  wrap.refresh = load;
  load();
  return wrap;
}

function button(label, onclick, cls) {
  const b = h("button", { type: "button", class: cls });
  b.textContent = t(label);
  b.addEventListener("click", async () => {
    try { await onclick(b); } catch (e) { alertIn(b, e.message); }
  });
  return b;
}
function alertIn(near, message) {
  const cell = near.closest("td, section, form") || app;
  let err = cell.querySelector(":scope > .err.action");
  if (!err) { err = h("div", { class: "err action", role: "alert" }); cell.append(err); }
  err.textContent = message;
}
// A live figure: its name, its value, and a line under it (kept, blank, so figures with and
// without one are the same height and an update never moves the page).
function fig(k, v, sub) {
  return h("div", { class: "figure" }, h("div", { class: "k" }, t(k)), h("div", { class: "v" }, v), h("div", { class: "k" }, sub || "\u00a0"));
}
// A figure that is words (an address), given room to be read whole.
function textFig(k, v) {
  const f = fig(k, v);
  f.classList.add("text");
  return f;
}
function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }

// ---- pages ----
const merchantPages = [
  ["store", "Today & wallet", storePage],
  ["catalogue", "Catalogue", cataloguePage],
  ["products", "Products", productsPage],
  ["warehouses", "Warehouses", warehousesPage],
  ["campaigns", "Flash sales", campaignsPage],
  ["coupons", "Coupons & red packets", couponsPage],
  ["orders", "Orders to ship", ordersPage],
  ["shipments", "Shipments", shipmentsPage],
  ["returns", "Returns", returnsPage],
  ["tickets", "Service tickets", ticketsPage],
];
const adminPages = [
  ["merchants", "Merchants", merchantsPage],
  ["buyers", "Buyers", buyersPage],
  ["categories", "Categories", categoriesPage],
  ["keys", "API keys", keysPage],
  ["admission", "Admission", admissionPage],
  ["platform", "Platform accounts", platformPage],
  ["audit", "Audit", auditPage],
  ["experiments", "Experiments", experimentsPage],
  ["events", "Events & webhooks", eventsPage],
];
// The store an operator works for (from the Merchants page), {merchant_id, name}, kept in the tab like the
// key; the admin key may do everything a merchant may, so the merchant's pages serve as they are.
const AS = "elevens.console.as";
function actingFor() {
  if (!me || me.role !== "admin") return null;
  try { return JSON.parse(sessionStorage.getItem(AS)); } catch (e) { return null; }
}
function pagesOf(role) {
  if (role === "merchant" || actingFor()) return merchantPages;
  if (role === "admin") return adminPages;
  return [];
}
const M = () => (actingFor() || me).merchant_id;
const merchantId = M;
// Goes to a page, drawing it again when the address is already there (no hashchange then).
function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

function walletCard(path) {
  const figures = h("div", { class: "figures" });
  const entries = list({
    path, cursor: "before", limit: 20, limitParam: "entries",
    items: (w) => {
      figures.replaceChildren(...(w.accounts.length ? w.accounts.map((a) => h("div", { class: "figure" },
        h("div", { class: "k" }, "Balance " + a.currency + " · " + a.entries_total + (a.entries_total === 1 ? " entry" : " entries")),
        h("div", { class: "v" }, money(a.balance, a.currency)))) : [h("div", { class: "muted" }, "No money has moved yet.")]));
      const a = w.accounts[0];
      entries.currency = a && a.currency;
      return a ? a.entries : [];
    },
    next: (w) => (w.accounts[0] ? w.accounts[0].next_before : null),
    columns: [
      ["Transfer", (e) => "#" + e.transfer_id],
      ["Kind", (e) => e.kind.replace(/_/g, " ")],
      ["Amount", (e) => money(e.amount, entries.currency), "num"],
      ["Counterparty", (e) => e.counterparty],
      ["Order", (e) => (e.order_id ? "#" + e.order_id : "")],
      ["At", (e) => when(e.at)],
    ],
    empty: "No ledger entries yet.",
  });
  entries.querySelector(".table").before(figures);
  return entries;
}

// The store's day at a glance, live: today's sales, the sales running and due, parcels due
// today and late, tickets past their first-answer deadline.
function dashboard() {
  const m = M();
  const figures = h("div", { class: "figures", id: "today" });
  const sales = h("div", { class: "sales" });
  const work = h("div", { class: "figures" });
  const refresh = async () => {
    try {
      const [f, c, parcels, late, overdue, low] = await Promise.all([
        api("GET", `/v1/merchants/${m}/figures`),
        api("GET", `/v1/merchants/${m}/campaigns?limit=100`),
        api("GET", `/v1/merchants/${m}/shipments?status=awaiting_dispatch&sort=newest&limit=100`),
        api("GET", `/v1/merchants/${m}/shipments?status=awaiting_dispatch&late=true&limit=100`),
        api("GET", `/v1/merchants/${m}/tickets?overdue=true&limit=100`),
        api("GET", `/v1/merchants/${m}/skus?stock_below=${LOW_STOCK_UNITS}&limit=100`),
      ]);
      figures.replaceChildren(fig(t("GMV today") + " (" + f.day + ", " + f.time_zone + ")", money(f.day_gmv)), fig("Paid orders today", f.day_paid_orders),
        fig("Average order today", money(f.day_aov)),
        fig("Conversion today", f.day_conversion_bp === null || f.day_conversion_bp === undefined ? "–" : percent(f.day_conversion_bp),
          f.day_views + " " + t("views")),
        fig("GMV since opening", money(f.gmv)), fig("Paid orders since opening", f.paid_orders));
      const running = c.items.filter((x) => x.status === "open" || x.status === "scheduled");
      sales.replaceChildren(...(running.length ? running.map((x) => h("div", { class: "sale" },
        h("div", { class: "sale-head" }, h("strong", {}, x.name || "Sale #" + x.campaign_id), " ", tag(x.status), " ", countdown(x)),
        h("div", { class: "bar", role: "img", "aria-label": x.taken + " of " + x.quantity + " units ordered" }, h("i", { style: "width:" + Math.min(100, (100 * x.taken) / x.quantity) + "%" })),
        h("div", { class: "muted" }, x.taken + " " + t("ordered") + " · " + x.remaining + " " + t("left of") + " " + x.quantity)))
        : [h("div", { class: "muted" }, t("No sale running or scheduled."))]));
      const today = new Date().toLocaleDateString("sv-SE");
      const more = (page) => (page.next_after ? "+" : "");
      const due = parcels.items.filter((p) => p.dispatch_date === today).length;
      const n = (page) => page.items.length;
      work.replaceChildren(fig("Parcels to leave today", due + more(parcels)),
        fig("Parcels late", n(late) + more(late), n(late) ? t("dispatch them first") : ""),
        fig("Tickets past their deadline", n(overdue) + more(overdue), n(overdue) ? t("answer them first") : ""),
        fig("SKUs running out", n(low) + more(low), n(low) ? low.items.slice(0, 3).map((s) => s.title + ": " + s.available).join(" · ") : ""));
    } catch (e) {
      if (e.status === 401) return signIn(e.message);
      figures.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message));
    }
  };
  every(LIVE_MS * 2, refresh);
  return [card("Today", figures), card("Sales", sales), card("To do", work)];
}

function storePage(main) {
  main.append(h("h2", {}, t("Store") + ": " + ((actingFor() || me).name || "#" + M())), ...dashboard(),
    card("Wallet and ledger", walletCard(`/v1/merchants/${M()}/wallet`)),
    card("Shipping fee per order", form({
      submit: "Set fee", method: "PUT", path: `/v1/merchants/${M()}/shipping-fee`,
      fields: [{ name: "fee", label: "Fee (0 for free shipping)", money: true, required: true }, currencyField()],
      body: (v) => ({ fee: v.fee, currency: v.currency }),
    })),
    card("Time zone", h("p", { class: "muted" }, t("The store's day on this page, and every time the console shows and takes, are in this zone.")), form({
      submit: "Set time zone", method: "PUT", path: `/v1/merchants/${M()}/time-zone`, reset: false,
      fields: [{ name: "utc_offset_minutes", label: "Time zone", options: ZONES, value: storeZone ? storeZone.offset : 0 }],
      body: (v) => ({ utc_offset_minutes: Number(v.utc_offset_minutes) }),
      after: () => { storeZone = null; render(); },
    })));
}
function currencyField() {
  return { name: "currency", label: "Currency", required: true, value: "CNY", pattern: "[A-Z]{3}", maxlength: 3 };
}

function cataloguePage(main) {
  const m = merchantId();
  main.append(h("h2", {}, t("Catalogue")));
  // Found by name through the API's search, else the merchant's SKUs in order.
  let words = "";
  const skus = list({
    path: () => (words ? "/v1/search" : `/v1/merchants/${m}/skus`),
    query: () => (words ? { q: words, merchant_id: m } : {}),
    items: (j) => (j.hits ? j.hits.map((x) => x.sku) : j.items),
    next: (j) => (j.hits ? null : j.next_after),
    select: (s) => s.sku_id,
    columns: [
      ["SKU", (s) => "#" + s.sku_id],
      ["Title", (s) => s.title],
      ["Price", (s) => money(s.price, s.currency), "num"],
      ["Available", (s) => s.available, "num"],
      ["Reserved", (s) => s.reserved, "num"],
      ["Sold", (s) => s.sold, "num"],
      ["", (s, reload) => skuActions(s, reload)],
    ],
    empty: "No SKUs yet: create the first below.",
  });
  const find = h("input", { id: "find-sku", type: "search", placeholder: t("Find a SKU by name"), "aria-label": t("Find a SKU by name") });
  let timer = null;
  find.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { words = find.value.trim(); skus.reload(); }, 200); });
  // Many SKUs at once: a new price, or units added, for every SKU ticked.
  const outcome = h("div", { "aria-live": "polite" });
  const bulk = async (b, what, request) => {
    const picked = skus.selected();
    if (!picked.length) { outcome.replaceChildren(h("div", { class: "notice bad" }, t("Tick the SKUs first."))); return; }
    b.disabled = true;
    const refused = [];
    for (const s of picked) {
      try { await act(what + ":" + s.sku_id, ...request(s)); } catch (e) { refused.push("#" + s.sku_id + ": " + e.message); }
    }
    b.disabled = false;
    outcome.replaceChildren(h("div", { class: refused.length ? "notice bad" : "notice", role: "status" },
      (picked.length - refused.length) + " / " + picked.length + " " + t("SKUs changed.") + (refused.length ? " " + refused.join("; ") : "")));
    skus.refresh();
  };
  const price = h("input", { id: "bulk-price", inputmode: "decimal", placeholder: "99.00" });
  const units = h("input", { id: "bulk-units", type: "number", min: 1, placeholder: "100" });
  const tools = h("div", { class: "bulk" },
    h("div", { class: "field" }, h("label", { for: "bulk-price" }, t("New price of the ticked SKUs")), price),
    button("Set price", (b) => {
      const p = minorUnits(price.value);
      if (!p) { outcome.replaceChildren(h("div", { class: "notice bad" }, t("an amount such as 12.34"))); return; }
      return bulk(b, "price-" + p, (s) => ["PATCH", `/v1/skus/${s.sku_id}`, { price: p }]);
    }),
    h("div", { class: "field" }, h("label", { for: "bulk-units" }, t("Units to add to each ticked SKU")), units),
    button("Add stock", (b) => {
      const n = Number(units.value);
      if (!Number.isInteger(n) || n < 1) { outcome.replaceChildren(h("div", { class: "notice bad" }, t("a whole number of units"))); return; }
      return bulk(b, "restock-" + n + "-" + Date.now(), (s) => ["POST", `/v1/skus/${s.sku_id}/restock`, { quantity: n }]);
    }));
  main.append(card("SKUs and stock", find, tools, outcome, skus),
    card("New SKU", skuForm(m, () => skus.refresh())), card("Import from CSV", importForm(m, () => skus.refresh())));
}
// A catalogue file: every row checked by the server first, each error shown with its line and
// field; a file sent again (same choice, same key) creates nothing twice.
function importForm(m, after) {
  const file = h("input", { id: "import-file", type: "file", accept: ".csv,text/csv" });
  const out = h("div", { "aria-live": "polite" });
  let key = newKey();
  file.addEventListener("change", () => { key = newKey(); });
  const send = button("Import", async (b) => {
    if (!file.files.length) { out.replaceChildren(h("div", { class: "notice bad" }, t("Choose a CSV file first."))); return; }
    b.disabled = true;
    try {
      const response = await fetch(`/v1/merchants/${m}/skus.csv`, { method: "POST", body: await file.files[0].text(),
        headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY), "Content-Type": "text/csv", "Idempotency-Key": key } });
      const body = await response.json().catch(() => ({}));
      if (response.status === 422 && body.details && body.details.rows) {
        out.replaceChildren(h("div", { class: "notice bad", role: "alert" }, body.message),
          h("div", { class: "table" }, h("table", { class: "import-errors" }, h("thead", {}, h("tr", {}, [t("Line"), t("Field"), t("Problem")].map((x) => h("th", {}, x)))),
            h("tbody", {}, body.details.rows.map((r) => h("tr", {}, h("td", { "data-label": t("Line") }, r.line), h("td", { "data-label": t("Field") }, r.field), h("td", { "data-label": t("Problem") }, r.message)))))));
        return;
      }
      if (!response.ok) throw new ApiError(response.status, body);
      out.replaceChildren(h("div", { class: body.refused ? "notice bad" : "notice", role: "status" },
        body.created + " " + t("SKUs created") + (body.refused ? ", " + body.refused + " " + t("refused") + ": " + body.rows.filter((r) => !r.sku_id).map((r) => t("line") + " " + r.line + ": " + r.message).join("; ") : ".")));
      after();
    } catch (e) { out.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message)); } finally { b.disabled = false; }
  }, "primary");
  return h("div", {}, h("p", { class: "muted" }, t("Columns: title, price (12.34), currency, and optionally description and stock; a header row first.")),
    h("div", { class: "field" }, h("label", { for: "import-file" }, t("CSV file")), file), h("div", { class: "actions", style: "margin-top:8px" }, send), out);
}
// The SKU form, its warehouse picked by name among the store's (read first).
function skuForm(m, after) {
  const slot = h("div", {}, h("span", { class: "muted" }, "…"));
  api("GET", `/v1/merchants/${m}/warehouses?limit=100`).then((j) => j.items, () => []).then((warehouses) =>
    slot.replaceChildren(skuFormWith(m, after, [["", t("the store's first")], ...warehouses.map((w) => [w.warehouse_id, w.name + " (" + w.region + ")"])])));
  return slot;
}
function skuFormWith(m, after, warehouses) {
  return form({
    submit: "Create SKU", path: "/v1/skus",
    fields: [
      { name: "title", label: "Title", required: true, maxlength: 200, wide: true },
      { name: "description", label: "Description", type: "textarea", maxlength: 4000, wide: true },
      { name: "price", label: "Price", money: true, required: true, placeholder: "99.00" },
      currencyField(),
      { name: "stock", label: "Initial stock", type: "number", min: 0, max: 1000000000, required: true, value: 0 },
      { name: "warehouse_id", label: "Ships from", options: warehouses, value: "" },
    ],
    body: (v) => {
      if (!v.price) throw invalid("price", "must be positive");
      return { merchant_id: m, title: v.title, description: v.description || "", price: v.price, currency: v.currency,
        stock: v.stock, warehouse_id: v.warehouse_id ? Number(v.warehouse_id) : undefined };
    },
    fieldOf: (f) => (f === "amount" ? "price" : f === "initial_stock" ? "stock" : f),
    done: (s) => h("div", { class: "notice" }, "Created SKU #" + s.sku_id + ": " + s.title),
    after,
  });
}
function skuActions(s, reload) {
  const slot = h("div", {});
  const edit = button("Edit", () => {
    slot.replaceChildren(form({
      title: "Edit SKU " + s.sku_id, submit: "Save", method: "PATCH", path: `/v1/skus/${s.sku_id}`, reset: false,
      fields: [
        { name: "title", label: "Title", required: true, maxlength: 200, value: s.title },
        { name: "price", label: "Price", money: true, required: true, value: money(s.price).replace(/,/g, "") },
        { name: "description", label: "Description", type: "textarea", maxlength: 4000, value: s.description, wide: true },
      ],
      body: (v) => ({ title: v.title, price: v.price, description: v.description || "" }),
      after: reload,
    }));
  });
  const restock = button("Restock", () => {
    slot.replaceChildren(form({
      title: "Restock SKU " + s.sku_id, submit: "Add stock", path: `/v1/skus/${s.sku_id}/restock`,
      fields: [{ name: "quantity", label: "Units", type: "number", min: 1, max: 1000000000, required: true }],
      body: (v) => ({ quantity: v.quantity }),
      after: reload,
    }));
  });
  return h("div", {}, h("div", { class: "actions" }, edit, restock), slot);
}

// ---- products and categories ----
// Pages of a list followed to its end, at most `pages` requests of 100.
async function everything(path, pages) {
  let items = [], after = null;
  for (let i = 0; i < pages; i++) {
    const json = await api("GET", path + "?limit=100" + (after === null ? "" : "&after=" + after));
    items = items.concat(json.items);
    after = json.next_after;
    if (after === null || after === undefined) break;
  }
  return items;
}
// The tree as [id, "Electronics › Phones"] pairs, by path (10,000 categories at most).
async function categoryChoices() {
  const all = await everything("/v1/category-tree", 100);
  return all.map((c) => [c.category_id, c.path.join(" › ")]).sort((a, b) => a[1].localeCompare(b[1]));
}
const categoryPath = (p) => (p.category_path || []).join(" › ");

function productsPage(main, arg) {
  if (arg) return productPage(main, Number(arg));
  const m = merchantId();
  main.append(h("h2", {}, t("Products")));
  const find = finder({ words: "Product title" }, () => products.reload());
  const products = list({
    path: `/v1/merchants/${m}/products`, query: () => find.query(),
    columns: [
      ["Product", (p) => h("a", { href: "#/products/" + p.product_id }, p.title)],
      ["Category", categoryPath],
      ["Attributes", (p) => p.attributes.map((a) => a.name + ": " + a.value).join(", ")],
      ["Variants", (p) => p.variants.length, "num"],
      ["Available", (p) => p.variants.reduce((n, v) => n + v.available, 0), "num"],
    ],
    empty: "No products yet: group SKUs into one below.",
  });
  const slot = h("div", {}, h("div", { class: "muted" }, "Loading the categories…"));
  main.append(card("Products", find, products), card("New product", slot));
  categoryChoices().then((choices) => {
    if (!choices.length) {
      slot.replaceChildren(h("div", { class: "notice" }, "The operator has not made a category yet: a product sits in one."));
      return;
    }
    slot.replaceChildren(form({
      submit: "Create product", path: "/v1/products",
      fields: [
        { name: "title", label: "Title", required: true, maxlength: 200, wide: true },
        { name: "description", label: "Description", type: "textarea", maxlength: 4000, wide: true },
        { name: "category_id", label: "Category", required: true, options: choices },
        { name: "options", label: "Options its variants differ by (comma-separated, up to 3)", placeholder: "colour, storage" },
        { name: "attributes", label: "Attributes buyers filter on (one “name: value” a line)", type: "textarea", wide: true,
          placeholder: "brand: Elevens" },
      ],
      body: (v) => {
        const attributes = [];
        for (const line of (v.attributes || "").split("\n").map((l) => l.trim()).filter((l) => l)) {
          const at = line.indexOf(":");
          if (at < 1) throw invalid("attributes", "each line is name: value");
          attributes.push({ name: line.slice(0, at).trim(), value: line.slice(at + 1).trim() });
        }
        const options = (v.options || "").split(",").map((o) => o.trim()).filter((o) => o);
        return { merchant_id: m, title: v.title, description: v.description || "", category_id: Number(v.category_id),
          attributes, options };
      },
      done: (p) => h("div", { class: "notice" }, "Created ", h("a", { href: "#/products/" + p.product_id }, p.title),
        ": now add its variants."),
      after: () => products.refresh(),
    }));
  }).catch((e) => slot.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message)));
}

// A product: its variant grid (a column per option), a variant added from the store's SKUs, a move.
async function productPage(main, id) {
  main.append(h("h2", {}, t("Product")));
  const grid = h("div", { class: "table" });
  const addSlot = h("div", {});
  const moveSlot = h("div", {});
  main.append(card("Variants", grid), card("Add a variant", addSlot), card("Category", moveSlot));
  let p;
  try { p = await api("GET", "/v1/products/" + id); } catch (e) {
    grid.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message));
    return;
  }
  const draw = (p) => {
    main.querySelector("h2").textContent = "Product: " + p.title;
    grid.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, [...p.options, "SKU", "Price", "Available"].map((t, i) =>
        h("th", { scope: "col", class: i >= p.options.length + 1 ? "num" : null }, t)))),
      h("tbody", {}, p.variants.length ? p.variants.map((v) => h("tr", {},
        v.options.map((o) => h("td", {}, o)),
        h("td", {}, v.title + " (#" + v.sku_id + ")"),
        h("td", { class: "num" }, money(v.price, v.currency)),
        h("td", { class: "num" }, v.available)))
        : h("tr", {}, h("td", { colspan: p.options.length + 3, class: "muted" }, "No variant yet: add one below.")))));
    moveSlot.querySelector(".where")?.remove();
    moveSlot.prepend(h("p", { class: "where" }, "In " + categoryPath(p) + "."));
  };
  draw(p);
  const reload = async () => draw(await api("GET", "/v1/products/" + id));
  // The SKU picked by typing its title (the API's search over the store's SKUs), so a store of
  // any size reaches each; those already in this grid are not offered.
  const taken = new Set(p.variants.map((v) => v.sku_id));
  const suggest = skuSuggestions(p.merchant_id);
  addSlot.replaceChildren(form({
    submit: "Add variant", path: `/v1/products/${id}/variants`,
    fields: [
      { name: "sku_id", label: "SKU", required: true, picker: async (q) => (await suggest(q)).filter(([sku]) => !taken.has(sku)) },
      ...p.options.map((o, i) => ({ name: "o" + i, label: o, required: true, maxlength: 100 })),
    ],
    body: (v) => ({ sku_id: Number(v.sku_id), options: p.options.map((_, i) => v["o" + i]) }),
    fieldOf: (f) => (f === "options" ? "o0" : f),
    // Drawn again: the grid with the new variant, the SKUs left to add.
    after: () => go("#/products/" + id),
  }));
  const choices = await categoryChoices();
  moveSlot.append(form({
    submit: "Move product", path: `/v1/products/${id}/move`,
    fields: [{ name: "category_id", label: "Move to", required: true, options: choices, value: p.category_id }],
    body: (v) => ({ category_id: Number(v.category_id) }),
    reset: false,
    done: () => h("div", { class: "notice" }, "Moved."),
    after: reload,
  }));
}

function categoriesPage(main) {
  main.append(h("h2", {}, t("Categories")));
  const tree = list({
    path: "/v1/category-tree", limit: 50,
    columns: [
      ["Category", (c) => c.path.join(" › ")],
      ["Id", (c) => "#" + c.category_id, "num"],
      ["", (c, reload) => categoryMove(c, reload)],
    ],
    empty: "No categories yet: create the top of the tree below.",
  });
  const slot = h("div", {});
  main.append(card("The tree (at most 10,000 categories, 6 levels)", tree), card("New category", slot));
  const draw = async () => {
    const choices = await categoryChoices();
    slot.replaceChildren(form({
      submit: "Create category", path: "/v1/categories",
      fields: [
        { name: "name", label: "Name", required: true, maxlength: 100 },
        { name: "parent_id", label: "Under", options: [["", "— the top of the tree —"], ...choices] },
      ],
      body: (v) => ({ name: v.name, parent_id: v.parent_id ? Number(v.parent_id) : null }),
      done: (c) => h("div", { class: "notice" }, "Created " + c.path.join(" › ")),
      after: () => { tree.refresh(); draw(); },
    }));
  };
  draw().catch((e) => slot.replaceChildren(h("div", { class: "notice bad", role: "alert" }, e.message)));
}
function categoryMove(c, reload) {
  const slot = h("div", {});
  const move = button("Move", async () => {
    const choices = (await categoryChoices()).filter(([id]) => id !== c.category_id);
    slot.replaceChildren(form({
      title: "Move " + c.name, submit: "Move", path: `/v1/categories/${c.category_id}/move`,
      fields: [{ name: "parent_id", label: "Under", options: [["", "— the top of the tree —"], ...choices],
        value: c.parent_id === null ? "" : c.parent_id }],
      body: (v) => ({ parent_id: v.parent_id ? Number(v.parent_id) : null }),
      reset: false,
      after: reload,
    }));
  });
  return h("div", {}, h("div", { class: "actions" }, move), slot);
}

function warehousesPage(main) {
  const m = merchantId();
  const wh = list({
    path: `/v1/merchants/${m}/warehouses`,
    columns: [
      ["Warehouse", (w) => "#" + w.warehouse_id + " " + w.name],
      ["Region", (w) => w.region],
      ["Capacity/day", (w) => w.capacity_per_day, "num"],
      ["Cut-off", (w) => w.cutoff],
      ["Backlog", (w) => w.backlog_parcels + " parcels", "num"],
    ],
    empty: "No warehouse yet: orders ship once there is one.",
  });
  main.append(h("h2", {}, t("Warehouses")), card("Warehouses", wh), card("New warehouse", form({
    submit: "Create warehouse", path: `/v1/merchants/${m}/warehouses`,
    fields: [
      { name: "name", label: "Name", required: true, maxlength: 200 },
      { name: "region", label: "Region", required: true, maxlength: 64, placeholder: "hangzhou" },
      { name: "capacity_per_day", label: "Parcels per day", type: "number", min: 1, required: true, value: 1000 },
      { name: "cutoff", label: "Cut-off (HH:MM)", pattern: "\\d{2}:\\d{2}", value: "16:00" },
      { name: "utc_offset_minutes", label: "UTC offset (minutes)", type: "number", min: -840, max: 840, value: 480 },
    ],
    body: (v) => ({ name: v.name, region: v.region, capacity_per_day: v.capacity_per_day, cutoff: v.cutoff,
      utc_offset_minutes: v.utc_offset_minutes }),
    after: () => wh.refresh(),
  })));
}

// Times are entered and shown in this browser's zone, named beside them.
// Times are entered and shown in the store's time zone, named beside them (`UTC+08:00`); an
// operator's own pages use this browser's.
let storeZone = null;
const BROWSER_ZONE = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(new Date()).find((p) => p.type === "timeZoneName")?.value || "";
async function loadStoreZone() {
  const m = M();
  if (!m) { storeZone = null; return; }
  if (storeZone && storeZone.merchant === m) return;
  try {
    const x = await api("GET", `/v1/merchants/${m}`);
    storeZone = { merchant: m, offset: x.utc_offset_minutes, name: x.time_zone };
  } catch (e) { storeZone = null; }
}
const ZONE = () => (storeZone ? storeZone.name : BROWSER_ZONE);
const zoneOffset = (ms) => (storeZone ? storeZone.offset : -new Date(ms).getTimezoneOffset());
// An instant as the zone's wall clock, `YYYY-MM-DDTHH:MM` (a datetime-local field's value).
const localInput = (ms) => new Date(Number(ms) + zoneOffset(Number(ms)) * 60000).toISOString().slice(0, 16);
const fromLocalInput = (value) => { const wall = Date.parse(value + ":00Z"); return wall - zoneOffset(wall) * 60000; };
const whenZoned = (ms) => (ms ? localInput(ms).replace("T", " ") + " " + ZONE() : "");
// Offsets a store may take, every quarter hour from UTC-14:00 to UTC+14:00, named.
const zoneName = (m) => "UTC" + (m < 0 ? "-" : "+") + String(Math.floor(Math.abs(m) / 60)).padStart(2, "0") + ":" + String(Math.abs(m) % 60).padStart(2, "0");
const ZONES = Array.from({ length: 113 }, (_, i) => (i - 56) * 15).map((m) => [m, zoneName(m)]);
// Suggestions for a SKU picker: the merchant's SKUs whose titles hold the words typed.
const skuSuggestions = (m) => async (q) =>
  (await api("GET", "/v1/search?" + new URLSearchParams({ q, merchant_id: m, limit: 8 }))).hits.map((x) => [x.sku.sku_id, x.sku.title]);
// SKU titles by id, read once per page.
function skuTitles() {
  const known = new Map();
  return (id) => {
    const slot = h("span", {}, known.get(id) || "SKU #" + id);
    if (!known.has(id)) {
      known.set(id, api("GET", `/v1/skus/${id}`).then((x) => x.title, () => "SKU #" + id));
    }
    Promise.resolve(known.get(id)).then((t) => { slot.textContent = t; });
    return slot;
  };
}

function campaignsPage(main) {
  const m = merchantId();
  const title = skuTitles();
  const funnel = h("div", { class: "figures", "aria-live": "off" }, h("div", { class: "muted" }, t("Pick a sale to see its funnel.")));
  const editor = h("div", {});
  let watched = null;
  const campaigns = list({
    path: `/v1/merchants/${m}/campaigns`,
    columns: [
      ["Sale", (c) => c.name || "#" + c.campaign_id],
      ["SKU", (c) => title(c.sku_id)],
      ["Flash price", (c) => money(c.flash_price, c.currency), "num"],
      ["Taken", (c) => c.taken + " / " + c.quantity, "num"],
      ["Per buyer", (c) => c.per_buyer_limit, "num"],
      ["Status", (c) => tag(c.status)],
      ["Starts", (c) => whenZoned(c.starts_at)],
      ["Ends", (c) => whenZoned(c.ends_at)],
      ["Starts in", (c) => countdown(c)],
      ["", (c, reload) => h("div", { class: "actions" },
        button("Funnel", () => { watched = c; showFunnel(); }),
        c.status === "scheduled" || c.status === "open" ? button("Edit", () => edit(c)) : "",
        c.status === "scheduled" ? button("Cancel sale", async (b) => { await act("end:" + c.campaign_id, "POST", `/v1/campaigns/${c.campaign_id}/end`, undefined, b); reload(); }) : "",
        c.status === "open" ? button("End now", async (b) => { await act("end:" + c.campaign_id, "POST", `/v1/campaigns/${c.campaign_id}/end`, undefined, b); reload(); }) : "")],
    ],
    empty: "No flash sale yet.",
  });
  // Before a sale starts every term may change; once it runs, its name, units and end.
  function edit(c) {
    const started = c.status !== "scheduled";
    const fields = [
      { name: "name", label: "Name", maxlength: 200, value: c.name },
      { name: "quantity", label: "Units on sale (not below " + c.taken + " taken)", type: "number", min: Math.max(1, c.taken), max: 1000000000, value: c.quantity },
      { name: "ends_at", label: "Ends (" + ZONE() + ")", type: "datetime-local", value: localInput(c.ends_at) },
    ];
    if (!started) {
      fields.push({ name: "flash_price", label: "Flash price", money: true, value: money(c.flash_price) },
        { name: "per_buyer_limit", label: "Per buyer", type: "number", min: 1, max: 10000, value: c.per_buyer_limit },
        { name: "starts_at", label: "Starts (" + ZONE() + ")", type: "datetime-local", value: localInput(c.starts_at) });
    }
    editor.replaceChildren(card("Edit “" + (c.name || "#" + c.campaign_id) + "”", form({
      submit: "Save changes", method: "PATCH", path: `/v1/campaigns/${c.campaign_id}`, reset: false, fields,
      body: (v) => ({ name: v.name, quantity: v.quantity, ends_at: v.ends_at, flash_price: v.flash_price,
        per_buyer_limit: v.per_buyer_limit, starts_at: v.starts_at }),
      done: (x) => h("div", { class: "notice" }, "Saved: " + (x.name || "#" + x.campaign_id) + ", " + x.quantity + " units, ends " + whenZoned(x.ends_at)),
      after: () => campaigns.refresh(),
    })));
    editor.querySelector("input").focus();
  }
  async function showFunnel() {
    if (watched === null) return;
    try {
      const f = await api("GET", `/v1/analytics/campaigns/${watched.campaign_id}/funnel`);
      const pct = (r) => (r === null || r === undefined ? "–" : (100 * r).toFixed(1) + "%");
      funnel.replaceChildren(fig("Sale", watched.name || "#" + watched.campaign_id), fig("Views", f.views), fig("Orders", f.orders),
        fig("View → order", pct(f.view_to_order)), fig("Paid", f.paid), fig("Order → paid", pct(f.order_to_paid)));
    } catch (e) {
      funnel.replaceChildren(h("div", { class: "notice bad" }, e.message));
    }
  }
  every(LIVE_MS, showFunnel);
  const start = new Date(Date.now() + 5 * 60000);
  start.setSeconds(0, 0);
  main.append(h("h2", {}, t("Flash sales")), card("Live funnel", funnel), card("Sales", campaigns), editor, card("New flash sale", form({
    submit: "Create flash sale", path: "/v1/campaigns",
    fields: [
      { name: "name", label: "Name", maxlength: 200, required: true, placeholder: "Midnight phones" },
      { name: "sku_id", label: "SKU", picker: skuSuggestions(m), required: true },
      { name: "flash_price", label: "Flash price", money: true, required: true },
      currencyField(),
      { name: "quantity", label: "Units on sale", type: "number", min: 1, max: 1000000000, required: true },
      { name: "per_buyer_limit", label: "Per buyer", type: "number", min: 1, max: 10000, required: true, value: 1 },
      { name: "starts_at", label: "Starts (" + ZONE() + ")", type: "datetime-local", required: true, value: localInput(start.getTime()) },
      { name: "minutes", label: "Lasts (minutes, at most 31 days)", type: "number", min: 1, max: 44640, required: true, value: 60 },
    ],
    body: (v) => ({ name: v.name, sku_id: v.sku_id, flash_price: v.flash_price, currency: v.currency, quantity: v.quantity,
      per_buyer_limit: v.per_buyer_limit, starts_at: v.starts_at, ends_at: v.starts_at + v.minutes * 60000 }),
    fieldOf: (f) => (f === "amount" ? "flash_price" : f === "ends_at" ? "minutes" : f),
    done: (c) => h("div", { class: "notice" }, "Flash sale “" + c.name + "” created: starts in " + span(c.starts_in_ms)),
    after: () => campaigns.refresh(),
  })));
}
// A countdown from the server's clock (the answer's server_time), ticking in the page.
function countdown(c) {
  const el = h("span", { class: "countdown" });
  const offset = c.server_time - Date.now();
  const tick = () => {
    const left = c.starts_at - (Date.now() + offset);
    el.textContent = left > 0 ? span(left) : c.ends_at > Date.now() + offset ? "on now" : "ended";
  };
  tick();
  // A countdown redrawn away (a live list's refresh) stops with it.
  const timer = setInterval(() => { if (el.isConnected) tick(); else clearInterval(timer); }, 1000);
  timers.push(timer);
  return el;
}

function couponsPage(main) {
  const m = merchantId();
  const coupons = list({
    path: "/v1/coupons", query: () => ({ merchant_id: m }), items: (j) => j.coupons, next: () => null, limitParam: null,
    columns: [
      ["Coupon", (c) => "#" + c.coupon_id],
      ["Off", (c) => (c.kind === "fixed" ? money(c.amount_off, c.currency) : percent(c.percent_bps)), "num"],
      ["Min spend", (c) => money(c.min_spend, c.currency), "num"],
      ["Budget used", (c) => (c.budget_amount ? money(c.used_amount) + " of " + money(c.budget_amount, c.currency) : money(c.used_amount, c.currency)), "num"],
      ["Uses", (c) => c.used_count + (c.budget_uses ? " of " + c.budget_uses : ""), "num"],
      ["Ends", (c) => when(c.ends_at)],
      ["", (c, reload) => (c.disabled ? tag("disabled") : button("Disable", async (b) => { await act("disable-coupon:" + c.coupon_id, "POST", `/v1/coupons/${c.coupon_id}/disable`, undefined, b); reload(); }))],
    ],
  });
  const packets = list({
    path: "/v1/red-packets", query: () => ({ merchant_id: m }), items: (j) => j.red_packets, next: () => null, limitParam: null,
    columns: [
      ["Red packet", (p) => "#" + p.red_packet_id],
      ["Pool", (p) => money(p.amount, p.currency), "num"],
      ["Claimed", (p) => p.claimed_count + " / " + p.count + " · " + money(p.claimed_amount, p.currency), "num"],
      ["Status", (p) => tag(p.status)],
      ["Ends", (p) => when(p.ends_at)],
      ["", (p, reload) => (p.status === "open" ? button("Close", async (b) => { await act("close-packet:" + p.red_packet_id, "POST", `/v1/red-packets/${p.red_packet_id}/close`, undefined, b); reload(); }) : "")],
    ],
  });
  const days = (n) => Date.now() + n * 86400000;
  main.append(h("h2", {}, t("Coupons and red packets")), card("Coupons", coupons), card("New coupon", form({
    submit: "Create coupon", path: "/v1/coupons",
    fields: [
      { name: "kind", label: "Kind", options: [["fixed", "Amount off"], ["percent", "Percent off"]], value: "fixed" },
      { name: "amount_off", label: "Amount off", money: true },
      { name: "percent_bps", label: "Percent off (%)", percent: true, placeholder: "15" },
      currencyField(),
      { name: "min_spend", label: "Minimum spend", money: true, value: "0" },
      { name: "per_buyer_limit", label: "Uses per buyer", type: "number", min: 1, value: 1, required: true },
      { name: "budget_amount", label: "Budget (money)", money: true },
      { name: "budget_uses", label: "Budget (uses)", type: "number", min: 1 },
      { name: "days", label: "Runs for (days)", type: "number", min: 1, max: 365, value: 7, required: true },
    ],
    body: (v) => ({ merchant_id: m, kind: v.kind, amount_off: v.kind === "fixed" ? v.amount_off : undefined,
      percent_bps: v.kind === "percent" ? v.percent_bps : undefined, currency: v.currency,
      min_spend: v.min_spend || 0, per_buyer_limit: v.per_buyer_limit, budget_amount: v.budget_amount,
      budget_uses: v.budget_uses, starts_at: Date.now(), ends_at: days(v.days) }),
    fieldOf: (f) => (f === "amount" ? "amount_off" : f === "ends_at" ? "days" : f),
    after: () => coupons.refresh(),
  })), card("Red packets", packets), card("New red packet", form({
    submit: "Fund red packet", path: "/v1/red-packets",
    fields: [
      { name: "amount", label: "Pool", money: true, required: true },
      { name: "count", label: "Shares", type: "number", min: 1, required: true, value: 10 },
      currencyField(),
      { name: "hours", label: "Open for (hours)", type: "number", min: 1, max: 720, value: 24, required: true },
    ],
    body: (v) => ({ merchant_id: m, amount: v.amount, count: v.count, currency: v.currency, ends_at: Date.now() + v.hours * 3600000 }),
    fieldOf: (f) => (f === "ends_at" ? "hours" : f),
    after: () => packets.refresh(),
  })));
  // A coupon's form shows the fields of its kind only.
  const couponForm = main.querySelector('form[aria-label="Create coupon"]');
  const kind = couponForm.querySelector('[name="kind"]');
  const sync = () => {
    couponForm.querySelector('[name="amount_off"]').closest(".field").hidden = kind.value !== "fixed";
    couponForm.querySelector('[name="percent_bps"]').closest(".field").hidden = kind.value !== "percent";
  };
  kind.addEventListener("change", sync);
  sync();
}

function statusFilter(statuses, onchange, value) {
  const id = "status-" + Math.random().toString(36).slice(2);
  const select = h("select", { id, onchange: () => onchange(select.value) }, statuses.map(([v, text]) => h("option", { value: v, selected: v === value }, t(text))));
  return h("div", { class: "field", style: "max-width:240px;margin-bottom:8px" }, h("label", { for: id }, t("Status")), select);
}

// What to find in a list, asked of the server (its words, status, order and flags), the list
// read again as they change: `finder(spec, changed)` gives the bar and `bar.query()` the params.
// spec: {statuses: [[value, text]], status, words: "placeholder", flags: [[param, label]], sort: true}
function finder(spec, changed) {
  const state = { status: spec.status || "", q: "", sort: spec.sort ? "newest" : "", flags: new Set() };
  const uid = Math.random().toString(36).slice(2);
  const parts = [];
  if (spec.words) {
    const input = h("input", { id: "q-" + uid, type: "search", maxlength: 100, placeholder: t(spec.words), autocomplete: "off" });
    let timer;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { state.q = input.value.trim(); changed(); }, 250);
    });
    parts.push(h("div", { class: "field words" }, h("label", { for: "q-" + uid }, t("Find")), input));
  }
  if (spec.statuses) {
    const field = statusFilter(spec.statuses, (v) => { state.status = v; changed(); }, state.status);
    field.style.marginBottom = "0";
    parts.push(field);
  }
  if (spec.sort) {
    const select = h("select", { id: "sort-" + uid, onchange: () => { state.sort = select.value; changed(); } },
      [["newest", "Newest first"], ["oldest", "Oldest first"]].map(([v, text]) => h("option", { value: v }, t(text))));
    parts.push(h("div", { class: "field", style: "max-width:180px" }, h("label", { for: "sort-" + uid }, t("Sort")), select));
  }
  for (const [param, label] of spec.flags || []) {
    const box = h("input", { type: "checkbox", id: param + "-" + uid });
    box.addEventListener("change", () => { if (box.checked) state.flags.add(param); else state.flags.delete(param); changed(); });
    parts.push(h("label", { class: "flag", for: param + "-" + uid }, box, " " + t(label)));
  }
  const bar = h("div", { class: "finder" }, parts);
  bar.query = () => {
    const q = {};
    if (state.q) q.q = state.q;
    if (state.status) q.status = state.status;
    if (state.sort) q.sort = state.sort;
    for (const f of state.flags) q[f] = "true";
    return q;
  };
  return bar;
}

const lineText = (l) => l.quantity + " × " + (l.title || "SKU #" + l.sku_id);
const buyerText = (o) => (o.buyer_name ? o.buyer_name + " (#" + o.buyer_id + ")" : "Buyer #" + o.buyer_id);

function ordersPage(main, arg) {
  const m = merchantId();
  const detail = h("div", {});
  const find = finder({ words: "Order number, buyer or item", sort: true, status: "paid", statuses: [["paid", "Paid: to ship"], ["shipped", "Shipped"], ["delivered", "Delivered"],
    ["pending_payment", "Awaiting payment"], ["cancelled", "Cancelled"], ["expired", "Expired"], ["", "All"]] }, () => orders.reload());
  const orders = list({
    path: `/v1/merchants/${m}/orders`, query: () => find.query(),
    columns: [
      ["Order", (o) => h("a", { href: "#/orders/" + o.order_id }, "#" + o.order_id)],
      ["Buyer", (o) => buyerText(o)],
      ["Lines", (o) => o.lines.map(lineText).join(", ")],
      ["Total", (o) => money(o.total, o.currency), "num"],
      ["Status", (o) => tag(o.status)],
      ["Placed", (o) => when(o.placed_at)],
      ["Parcels", (o) => shipmentsOf(o.order_id)],
    ],
    empty: "No orders match.",
  });
  // Parcels waiting to leave, oldest first, each told against today (the browser's date; a
  // parcel's dispatch date is its warehouse's local date). Ticked parcels leave together; the
  // list follows the store live while nothing is ticked, and again after any refusal.
  const today = new Date().toLocaleDateString("sv-SE");
  const dueFind = finder({ words: "Parcel, order, buyer or item", flags: [["late", "Late only"]] }, () => due.reload());
  const due = list({
    path: `/v1/merchants/${m}/shipments`, query: () => ({ ...dueFind.query(), status: "awaiting_dispatch" }), select: (s) => s.shipment_id,
    columns: [
      ["Parcel", (s) => shipmentLine(s, () => due.refresh())],
      ["Order", (s) => h("a", { href: "#/orders/" + s.order_id }, "#" + s.order_id)],
      ["Due", (s) => (!s.dispatch_date ? "" : s.dispatch_date < today ? tag("late") : s.dispatch_date === today ? tag("today") : "")],
      ["Promised by", (s) => s.promised_by || ""],
    ],
    empty: "Nothing is waiting to leave.",
  });
  const outcome = h("div", { "aria-live": "polite" });
  const dispatchSelected = button("Dispatch selected", async (b) => {
    const picked = due.selected();
    if (!picked.length) { outcome.replaceChildren(h("div", { class: "notice bad" }, t("Tick the parcels to dispatch first."))); return; }
    b.disabled = true;
    const refused = [];
    let sent = 0;
    for (const s of picked) {
      try { await act("dispatch:" + s.shipment_id, "POST", `/v1/shipments/${s.shipment_id}/dispatch`); sent += 1; }
      catch (e) { refused.push("#" + s.shipment_id + ": " + e.message); }
    }
    b.disabled = false;
    outcome.replaceChildren(h("div", { class: refused.length ? "notice bad" : "notice", role: "status" },
      sent + " / " + picked.length + " " + t("parcels dispatched.") + (refused.length ? " " + t("Refused:") + " " + refused.join("; ") : "")));
    due.refresh();
  }, "primary");
  every(LIVE_MS * 3, () => { if (!due.selected().length && due.rows) due.refresh(); });
  const exportButton = button("Export orders (CSV)", async (b) => {
    b.disabled = true;
    try {
      const status = find.query().status || "";
      const response = await fetch(`/v1/merchants/${m}/orders.csv` + (status ? "?status=" + status : ""),
        { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) } });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
      const blob = await response.blob();
      const link = h("a", { href: URL.createObjectURL(blob), download: "orders-" + (status || "all") + ".csv", id: "csv-download" }, "orders-" + (status || "all") + ".csv");
      link.file = blob; // the file as saved, for a reader in the page
      exportSlot.replaceChildren(t("Ready:") + " ", link);
      link.click();
    } finally { b.disabled = false; }
  });
  const exportSlot = h("span", { class: "muted" });
  main.append(h("h2", {}, t("Orders to ship")), detail,
    card("Parcels to dispatch", dueFind, h("div", { class: "actions" }, dispatchSelected), outcome, due),
    card("Orders", find, h("div", { class: "actions" }, exportButton, exportSlot), orders));
  if (arg) orderPage(detail, Number(arg));
}

// One order as its merchant works it: buyer, lines with titles, money, parcels, and what
// happened to it in time order.
async function orderPage(slot, id) {
  let o, parcels, after;
  try {
    [o, parcels, after] = await Promise.all([api("GET", `/v1/orders/${id}`), api("GET", `/v1/orders/${id}/shipments`),
      api("GET", `/v1/orders/${id}/after-sales`)]);
  } catch (e) {
    slot.replaceChildren(card("Order #" + id, h("div", { class: "notice bad", role: "alert" }, e.message)));
    return;
  }
  // [when, step, text]: parcels keep their times to the second, so within one second the steps
  // of an order's life keep their order (placed, booked, dispatched, tracked, delivered).
  const parcel = (s) => t("Parcel") + " #" + s.shipment_id + " ";
  const events = [[o.placed_at, 0, t("Placed by") + " " + buyerText(o) + " · " + money(o.total, o.currency)]];
  for (const s of parcels.items) {
    events.push([s.created_at, 1, parcel(s) + t("booked") + (s.dispatch_date ? " " + t("to leave") + " " + s.dispatch_date : "")]);
    if (s.dispatched_at) events.push([s.dispatched_at, 2, parcel(s) + t("dispatched")]);
    for (const e of s.history) events.push([e.at, 3, parcel(s).trim() + ": " + t(e.kind.replace(/_/g, " ")) + (e.reason ? " (" + t(e.reason.replace(/_/g, " ")) + ")" : "")]);
    if (s.delivered_at) events.push([s.delivered_at, 4, parcel(s) + t("delivered")]);
  }
  for (const r of after.returns) {
    const what = " · " + (r.lines || []).map(lineText).join(", ");
    events.push([r.requested_at, 5, t("Return") + " #" + r.return_id + " " + t("requested") + what + " (" + t(String(r.reason).replace(/_/g, " ")) + ")"]);
    if (r.decided_at) events.push([r.decided_at, 6, t("Return") + " #" + r.return_id + " " + t(r.status === "rejected" ? "rejected" : "approved")]);
    if (r.received_at) events.push([r.received_at, 7, t("Return") + " #" + r.return_id + " " + t("received") + (r.restocked ? " · " + t("back to stock") : "")]);
    if (r.refunded_at) events.push([r.refunded_at, 8, t("Return") + " #" + r.return_id + " " + t("refunded") + " " + money(r.refunded, o.currency)]);
  }
  for (const tk of after.tickets) {
    events.push([tk.opened_at, 5, t("Ticket") + " #" + tk.ticket_id + " " + t("opened") + ": " + tk.subject]);
    for (const m of tk.messages) events.push([m.at, 6, t("Ticket") + " #" + tk.ticket_id + " · " + t(m.from) + ": " + m.body]);
  }
  const second = (ms) => Math.floor(ms / 1000);
  events.sort((a, b) => second(a[0]) - second(b[0]) || a[1] - b[1]);
  const refund = form({
    title: "Refund lines", submit: "Refund", path: `/v1/orders/${id}/refunds`, reset: true,
    fields: [
      { name: "sku_id", label: "Item", options: o.lines.map((l) => [l.sku_id, lineText(l)]) },
      { name: "quantity", label: "Units", type: "number", min: 1, max: 10000, value: 1, required: true },
      { name: "restock", label: "Back to stock", options: [["false", "No"], ["true", "Yes"]], value: "false" },
    ],
    body: (v) => ({ lines: [{ sku_id: Number(v.sku_id), quantity: v.quantity }], restock: v.restock === "true" }),
    after: () => orderPage(slot, id),
  });
  slot.replaceChildren(card(t("Order") + " #" + id + " · " + t(o.status.replace(/_/g, " ")),
    h("div", { class: "figures" }, textFig("Buyer", buyerText(o)),
      textFig("Ships to", o.ships_to || [...new Set(parcels.items.map((s) => s.destination_region).filter(Boolean))].join(", ") || "–"),
      fig("Total", money(o.total, o.currency)),
      fig("Shipping", money(o.shipping, o.currency)), fig("Refunded", money(o.refunded, o.currency)),
      fig("Discounts", money(o.discounts.reduce((a, d) => a + d.amount, 0), o.currency))),
    h("div", { class: "table" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, t("Item")), h("th", { class: "num" }, t("Units")), h("th", { class: "num" }, t("Unit price")), h("th", {}, t("Flash sale")))),
      h("tbody", {}, o.lines.map((l) => h("tr", {}, h("td", { "data-label": t("Item") }, l.title || "SKU #" + l.sku_id),
        h("td", { class: "num", "data-label": t("Units") }, l.quantity), h("td", { class: "num", "data-label": t("Unit price") }, money(l.unit_price, o.currency)),
        h("td", { "data-label": t("Flash sale") }, l.campaign_id ? "#" + l.campaign_id : "")))))),
    h("h3", { style: "margin-top:12px" }, t("Parcels")),
    parcels.items.length ? parcels.items.map((s) => shipmentLine(s, () => orderPage(slot, id))) : h("div", { class: "muted" }, t("No parcel yet.")),
    after.tickets.length ? [h("h3", { style: "margin-top:12px" }, t("Service tickets")),
      h("ul", {}, after.tickets.map((tk) => h("li", {}, h("a", { href: "#/tickets/" + tk.ticket_id }, "#" + tk.ticket_id), " ", tag(tk.status),
        overdue(tk) ? [" ", tag("overdue")] : "", " ", tk.subject)))] : "",
    after.returns.length ? [h("h3", { style: "margin-top:12px" }, t("Returns")),
      h("ul", {}, after.returns.map((r) => h("li", {}, "#" + r.return_id, " ", tag(r.status), " ", (r.lines || []).map(lineText).join(", "))))] : "",
    h("h3", { style: "margin-top:12px" }, t("Notes")),
    h("ul", { class: "notes" }, (after.notes || []).map((n) => h("li", {}, h("span", { class: "muted" }, when(n.at) + " · " + t(n.by)), " ", n.body))),
    form({
      title: "Add a note", submit: "Keep note", path: `/v1/orders/${id}/notes`,
      fields: [{ name: "body", label: "A note for the store's people (the buyer never sees it)", type: "textarea", maxlength: 1000, required: true, wide: true }],
      body: (v) => ({ body: v.body }),
      after: () => orderPage(slot, id),
    }),
    h("h3", { style: "margin-top:12px" }, t("Timeline")),
    h("ol", { class: "timeline" }, events.map(([at, , text]) => h("li", {}, h("time", {}, when(at)), " ", text))),
    o.status === "paid" || o.status === "shipped" || o.status === "delivered" ? refund : ""));
}
function shipmentsOf(order) {
  const slot = h("div", {}, h("span", { class: "muted" }, "…"));
  api("GET", `/v1/orders/${order}/shipments`).then((j) => {
    slot.replaceChildren(...(j.items.length ? j.items.map((s) => shipmentLine(s)) : [h("span", { class: "muted" }, t("no parcel yet"))]));
  }, (e) => slot.replaceChildren(h("span", { class: "err" }, e.message)));
  return slot;
}
// A parcel with its dispatch button; a refusal (someone else got there first, say) is shown
// and the list it is in read again (`refresh`), so the row never stays as it was.
function shipmentLine(s, refresh) {
  const line = h("div", { class: "actions" }, "#" + s.shipment_id + " ", tag(s.status), s.dispatch_date ? " " + t("leaves") + " " + s.dispatch_date : "");
  if (s.status === "awaiting_dispatch") {
    const b = h("button", { type: "button", class: "primary" }, t("Dispatch"));
    b.addEventListener("click", async () => {
      try {
        const out = await act("dispatch:" + s.shipment_id, "POST", `/v1/shipments/${s.shipment_id}/dispatch`, undefined, b);
        line.replaceWith(shipmentLine(Object.assign({}, s, { status: out.status || "dispatched" }), refresh));
        if (refresh) refresh();
      } catch (e) {
        alertIn(b, e.message);
        if (refresh) setTimeout(refresh, 1500);
      }
    });
    line.append(b);
  }
  line.append(h("a", { href: "#/shipments/" + s.shipment_id }, t("tracking")));
  return line;
}

function shipmentsPage(main, arg) {
  const m = merchantId();
  const detail = h("div", {});
  const find = finder({ words: "Parcel, order, buyer or item", sort: true, flags: [["late", "Late only"]],
    statuses: [["", "All"], ["awaiting_dispatch", "To dispatch"], ["dispatched", "Dispatched"], ["delivered", "Delivered"], ["cancelled", "Cancelled"]] },
  () => shipments.reload());
  const shipments = list({
    path: `/v1/merchants/${m}/shipments`, query: () => find.query(),
    columns: [
      ["Shipment", (s) => h("a", { href: "#/shipments/" + s.shipment_id }, "#" + s.shipment_id)],
      ["Order", (s) => h("a", { href: "#/orders/" + s.order_id }, "#" + s.order_id)],
      ["Status", (s) => tag(s.status)],
      ["Tracking", (s) => (s.tracking_status || "").replace(/_/g, " ")],
      ["Leaves", (s) => s.dispatch_date || ""],
      ["Promised by", (s) => s.promised_by || ""],
    ],
    empty: "No shipments match.",
  });
  main.append(h("h2", {}, t("Shipments")), detail, card(null, find, shipments));
  if (arg) showShipment(detail, Number(arg));
}
async function showShipment(slot, id) {
  let s;
  try { s = await api("GET", `/v1/shipments/${id}`); } catch (e) { slot.replaceChildren(card("Shipment #" + id, h("div", { class: "notice bad", role: "alert" }, e.message))); return; }
  const history = s.history.map((e) => h("tr", {}, h("td", {}, when(e.at)), h("td", {}, e.kind.replace(/_/g, " ") + (e.reason ? " (" + e.reason.replace(/_/g, " ") + ")" : ""))));
  const actions = h("div", { class: "actions" });
  if (s.status !== "dispatched" && s.status !== "delivered" && s.status !== "cancelled") {
    actions.append(button("Dispatch", async (b) => { await act("dispatch:" + id, "POST", `/v1/shipments/${id}/dispatch`, undefined, b); showShipment(slot, id); }, "primary"));
  }
  slot.replaceChildren(card("Shipment #" + id + " · order #" + s.order_id,
    h("div", { class: "actions" }, tag(s.status), s.tracking_status ? tag(s.tracking_status) : "",
      s.dispatch_date ? t("leaves") + " " + s.dispatch_date : "", s.promised_by ? " · " + t("promised by") + " " + s.promised_by : ""),
    actions,
    h("h3", { style: "margin-top:12px" }, t("Tracking")),
    h("div", { class: "table" }, h("table", { class: "tracking" }, h("thead", {}, h("tr", {}, h("th", {}, t("When")), h("th", {}, t("Event")))),
      h("tbody", {}, history.length ? history : h("tr", {}, h("td", { colspan: 2, class: "muted" }, t("No carrier event yet.")))))),
    form({
      title: "Record a tracking event", submit: "Record event", path: "/v1/tracking-events",
      fields: [{ name: "status", label: "Event", options: ["pre_transit", "in_transit", "out_for_delivery", "attempt_fail",
        "available_for_pickup", "delivered", "return_to_sender", "exception"].map((x) => [x, x.replace(/_/g, " ")]), value: "in_transit" }],
      body: (v) => ({ events: [{ shipment_id: id, event_id: newKey(), status: v.status, occurred_at: Date.now() }] }),
      after: () => showShipment(slot, id),
    })));
}

function returnsPage(main) {
  const m = merchantId();
  const find = finder({ words: "Return, order, buyer or item", sort: true, status: "requested", statuses: [["requested", "To decide"], ["approved", "Approved"], ["received", "Received"],
    ["refunded", "Refunded"], ["rejected", "Rejected"], ["", "All"]] }, () => returns.reload());
  const returns = list({
    path: `/v1/merchants/${m}/returns`, query: () => find.query(),
    columns: [
      ["Return", (r) => "#" + r.return_id],
      ["Order", (r) => h("a", { href: "#/orders/" + r.order_id }, "#" + r.order_id)],
      ["Lines", (r) => (r.lines || []).map(lineText).join(", ")],
      ["Reason", (r) => String(r.reason).replace(/_/g, " ")],
      ["Status", (r) => tag(r.status)],
      ["", (r, reload) => {
        const go = (verb, body) => async (b) => { await act(verb + ":" + r.return_id, "POST", `/v1/returns/${r.return_id}/${verb}`, body, b); reload(); };
        if (r.status === "requested") return h("div", { class: "actions" }, button("Accept", go("approve"), "primary"), button("Reject", go("reject")));
        if (r.status === "approved") return button("Received", go("receive", { restock: true }));
        if (r.status === "received") return button("Refund", go("refund", { shipping: 0 }), "primary");
        return "";
      }],
    ],
    empty: "No returns match.",
  });
  main.append(h("h2", {}, t("Returns")), card(null, find, returns));
}

// A ticket is overdue while the store has not answered it by its deadline.
const overdue = (t) => !t.first_response_at && t.first_response_due < Date.now();

function ticketsPage(main, arg) {
  const m = merchantId();
  const detail = h("div", {});
  const find = finder({ words: "Ticket, order, buyer or subject", sort: true, status: "new", flags: [["overdue", "Overdue only"]],
    statuses: [["new", "New: to answer"], ["open", "Open"], ["pending", "Pending"], ["resolved", "Resolved"], ["closed", "Closed"], ["", "All"]] },
  () => tickets.reload());
  const tickets = list({
    path: `/v1/merchants/${m}/tickets`, query: () => find.query(),
    columns: [
      ["Ticket", (t) => h("a", { href: "#/tickets/" + t.ticket_id }, "#" + t.ticket_id)],
      ["Order", (t) => h("a", { href: "#/orders/" + t.order_id }, "#" + t.order_id)],
      ["Kind", (t) => String(t.kind).replace(/_/g, " ")],
      ["Subject", (t) => t.subject],
      ["Status", (t) => h("span", {}, tag(t.status), overdue(t) ? [" ", tag("overdue")] : "")],
      ["Answer due", (x) => (x.first_response_at ? t("answered") : when(x.first_response_due))],
      ["Messages", (t) => t.messages.length, "num"],
    ],
    empty: "No tickets match.",
  });
  main.append(h("h2", {}, t("Service tickets")), detail, card(null, find, tickets));
  if (arg) ticketPage(detail, Number(arg), () => tickets.refresh());
}

// One ticket: its subject and conversation, a reply box, and its status moves.
async function ticketPage(slot, id, changed) {
  let tk;
  try { tk = await api("GET", `/v1/tickets/${id}`); } catch (e) {
    slot.replaceChildren(card("Ticket #" + id, h("div", { class: "notice bad", role: "alert" }, e.message)));
    return;
  }
  const again = () => { ticketPage(slot, id, changed); changed(); };
  const messages = [{ from: tk.kind === "buyer" ? "buyer" : "platform", at: tk.opened_at, body: tk.subject }, ...tk.messages];
  slot.replaceChildren(card("Ticket #" + id + " · order #" + tk.order_id,
    h("div", { class: "actions" }, tag(tk.status), overdue(tk) ? tag("overdue") : "",
      tk.first_response_at ? t("answered") + " " + when(tk.first_response_at) : t("answer due") + " " + when(tk.first_response_due)),
    h("ol", { class: "conversation" }, messages.map((x) => h("li", { class: x.from }, h("div", { class: "muted" }, x.from + " · " + when(x.at)), h("div", {}, x.body)))),
    tk.status === "closed" ? h("div", { class: "muted" }, t("Closed: it takes no more messages.")) : form({
      title: "Reply", submit: "Send reply", path: `/v1/tickets/${id}/replies`,
      fields: [{ name: "body", label: "Reply to the buyer", type: "textarea", maxlength: 2000, required: true, wide: true }],
      body: (v) => ({ body: v.body }),
      after: again,
    }),
    h("div", { class: "actions", style: "margin-top:8px" }, ["pending", "resolved", "closed"].filter((x) => x !== tk.status).map((x) =>
      button("Mark " + x, async (b) => { await act("ticket:" + id + ":" + x, "POST", `/v1/tickets/${id}/status`, { status: x }, b); again(); })))));
}

// ---- operator pages ----
function merchantsPage(main) {
  const find = finder({ words: "Store name" }, () => merchants.reload());
  const merchants = list({ path: "/v1/merchants", query: () => find.query(), columns: [
    ["Merchant", (x) => "#" + x.merchant_id], ["Name", (x) => x.name], ["Commission", (x) => percent(x.commission_bps), "num"],
    ["", (x) => button("Work as this store", () => {
      sessionStorage.setItem(AS, JSON.stringify({ merchant_id: x.merchant_id, name: x.name }));
      go("#/store");
    })]] });
  main.append(h("h2", {}, t("Merchants")), card("Merchants", find, merchants), card("New merchant", form({
    submit: "Create merchant", path: "/v1/merchants",
    fields: [{ name: "name", label: "Name", required: true, maxlength: 200 },
      { name: "commission_bps", label: "Commission (basis points; default the server's)", type: "number", min: 0, max: 10000 }],
    body: (v) => ({ name: v.name, commission_bps: v.commission_bps }),
    after: () => merchants.refresh(),
  })));
}
// Suggestions for a picker by name (buyers, stores, carriers): those whose names hold the words
// typed, asked of the API's list (operators).
const named = (path, id) => async (q) => (await api("GET", path + "?" + new URLSearchParams({ q, limit: 8 }))).items.map((x) => [x[id], x.name]);
const buyerSuggestions = named("/v1/buyers", "buyer_id");
function buyersPage(main) {
  const find = finder({ words: "Buyer name" }, () => buyers.reload());
  const buyers = list({ path: "/v1/buyers", query: () => find.query(), columns: [["Buyer", (x) => "#" + x.buyer_id], ["Name", (x) => x.name]] });
  main.append(h("h2", {}, t("Buyers")), card("Buyers", find, buyers), card("New buyer", form({
    submit: "Create buyer", path: "/v1/buyers",
    fields: [{ name: "name", label: "Name", required: true, maxlength: 200 }],
    body: (v) => ({ name: v.name }), after: () => buyers.refresh(),
  })), card("Top up a wallet", form({
    submit: "Top up", path: (v) => `/v1/buyers/${v.buyer_id}/top-ups`,
    fields: [{ name: "buyer_id", label: "Buyer", picker: buyerSuggestions, required: true },
      { name: "amount", label: "Amount", money: true, required: true }, currencyField()],
    body: (v) => ({ amount: v.amount, currency: v.currency }),
    done: (t) => h("div", { class: "notice" }, "Balance now " + money(t.balance, t.currency)),
  })));
}
function keysPage(main) {
  const keys = list({ path: "/v1/api-keys", columns: [
    ["Key", (k) => "#" + k.api_key_id],
    ["Label", (k) => k.label],
    ["Role", (k) => k.role],
    ["Acts for", (k) => (k.merchant_id ? "merchant #" + k.merchant_id : k.buyer_id ? "buyer #" + k.buyer_id : k.carrier_id ? "carrier #" + k.carrier_id : "")],
    ["Status", (k) => tag(k.revoked ? "revoked" : "active")],
    ["Last used", (k) => (k.last_used_at ? when(k.last_used_at) : h("span", { class: "muted" }, t("not since the server started")))],
    ["", (k, reload) => (k.revoked ? "" : button("Revoke", async (b) => {
      if (!confirm("Revoke key #" + k.api_key_id + "? Its next request will be refused.")) return;
      await act("revoke:" + k.api_key_id, "DELETE", `/v1/api-keys/${k.api_key_id}`, undefined, b); reload();
    }))],
  ] });
  // A merchant key's store is picked by name (the first 100 stores; past them, by number).
  const slot = h("div", {}, h("span", { class: "muted" }, "…"));
  api("GET", "/v1/merchants?limit=100").then((j) => j.items, () => []).then((stores) => slot.replaceChildren(keyForm(stores, keys)));
  main.append(h("h2", {}, t("API keys")), card("New key", slot), card("Keys", keys));
}
function keyForm(stores, keys) {
  const store = stores.length && stores.length < 100
    ? { name: "merchant_id", label: "Store (merchant keys)", options: [["", "–"], ...stores.map((x) => [x.merchant_id, x.name + " (#" + x.merchant_id + ")"])], value: "" }
    : { name: "merchant_id", label: "Store (merchant keys)", picker: named("/v1/merchants", "merchant_id") };
  return form({
    submit: "Create key", path: "/v1/api-keys",
    fields: [
      { name: "label", label: "Label", maxlength: 200, placeholder: "storefront, Hangzhou" },
      { name: "role", label: "Role", options: ["merchant", "buyer", "carrier", "service", "viewer", "admin"].map((r) => [r, r]), value: "merchant" },
      store,
      { name: "buyer_id", label: "Buyer (buyer keys)", picker: buyerSuggestions },
      { name: "carrier_id", label: "Carrier (carrier keys)", picker: named("/v1/carriers", "carrier_id") },
    ],
    body: (v) => ({ label: v.label, role: v.role, merchant_id: v.merchant_id ? Number(v.merchant_id) : undefined, buyer_id: v.buyer_id, carrier_id: v.carrier_id }),
    done: (k) => h("div", { class: "notice" }, "Key #" + k.api_key_id + " (" + k.role + "). Its secret, shown this once: ",
      h("div", { class: "secret", "data-secret": "" }, k.key)),
    after: () => keys.refresh(),
  });
}
function admissionPage(main) {
  const figures = h("div", { class: "figures" });
  every(LIVE_MS, async () => {
    try {
      const s = await api("GET", "/v1/admission");
      const shed = (c) => Object.values(s[c].shed).reduce((a, b) => a + b, 0);
      const cls = (title, c) => fig(title + " admitted", s[c].admitted, shed(c) + " shed");
      figures.replaceChildren(fig("Adaptive limit", s.limit, "in flight at most"), fig("In flight", s.in_flight),
        fig("Waiting room", s.waiting_room_tickets_waiting, "tickets waiting"),
        cls("Orders", "order"), cls("Payments", "pay"), cls("Reads", "read"), cls("Operator", "operator"));
    } catch (e) { figures.replaceChildren(h("div", { class: "notice bad" }, e.message)); }
  });
  // The rules an operator turns during a spike, as a form; every rule as JSON under "Advanced".
  // Either sends the whole rules, the form's fields over the rules as they were read.
  let current = null;
  const fields = [
    ["buyer_per_s", "Orders per buyer per second (empty: no limit)", (r) => r.buyer_quota?.per_s, (r, v) => { r.buyer_quota = v === "" ? null : { per_s: Number(v), burst: Math.max(Number(v), r.buyer_quota?.burst || 1) }; }],
    ["sku_per_s", "Orders per SKU per second (the hot-item limit; empty: none)", (r) => r.sku_quota?.per_s, (r, v) => { r.sku_quota = v === "" ? null : { per_s: Number(v), burst: Math.max(Number(v), r.sku_quota?.burst || 1) }; }],
    ["read_share_pct", "Reads admitted up to this share of the limit (%)", (r) => r.read_share_pct, (r, v) => { r.read_share_pct = Number(v); }],
    ["latency_target_ms", "Latency the limit steers to (ms)", (r) => r.adaptive.latency_target_ms, (r, v) => { r.adaptive.latency_target_ms = Number(v); }],
    ["room_admit_per_s", "Waiting room: tickets called per second", (r) => r.waiting_room.admit_per_s, (r, v) => { r.waiting_room.admit_per_s = Number(v); }],
    ["room_capacity", "Waiting room: tickets at most", (r) => r.waiting_room.capacity, (r, v) => { r.waiting_room.capacity = Number(v); }],
  ];
  const inputs = {};
  const rulesForm = h("form", { class: "f", "aria-label": "Admission rules", novalidate: true },
    fields.map(([name, label]) => {
      const id = "rule-" + name;
      inputs[name] = h("input", { id, name, type: "number", min: 0, inputmode: "numeric" });
      return h("div", { class: "field" }, h("label", { for: id }, label), inputs[name]);
    }));
  const rules = h("textarea", { rows: 14, id: "rules", "aria-label": "Admission rules (JSON)" });
  const err = h("div", { class: "err", role: "alert" });
  const show = (r) => {
    current = r;
    rules.value = JSON.stringify(r, null, 2);
    for (const [name, , get] of fields) inputs[name].value = get(r) ?? "";
  };
  api("GET", "/v1/admission/rules").then(show, (e) => { err.textContent = e.message; });
  const put = async (b, body) => {
    err.textContent = "";
    b.disabled = true;
    try { show(await api("PUT", "/v1/admission/rules", body)); err.textContent = t("Saved: in force now."); }
    catch (e) { err.textContent = e.message; } finally { b.disabled = false; }
  };
  const saveForm = button("Save rules", async (b) => {
    if (!current) return;
    const next = JSON.parse(JSON.stringify(current));
    for (const [name, , , set] of fields) set(next, inputs[name].value.trim());
    await put(b, next);
  }, "primary");
  const saveJson = button("Replace rules (JSON)", async (b) => {
    let body;
    try { body = JSON.parse(rules.value); } catch (e) { err.textContent = "not JSON: " + e.message; return; }
    await put(b, body);
  });
  main.append(h("h2", {}, t("Admission")), card("Live", figures),
    card("Rules", rulesForm, err, h("div", { class: "actions", style: "margin-top:8px" }, saveForm),
      h("details", { style: "margin-top:12px" }, h("summary", {}, "Advanced: every rule as JSON"), rules, h("div", { class: "actions", style: "margin-top:8px" }, saveJson))));
}
function platformPage(main) {
  main.append(h("h2", {}, t("Platform accounts")), card("Commission account", walletCard("/v1/platform/wallet")));
}
function auditPage(main) {
  const out = h("div", {});
  const run = button("Run the audit", async (b) => {
    b.disabled = true;
    try {
      const a = await api("GET", "/v1/audit");
      out.replaceChildren(h("p", {}, "Digest ", h("code", {}, a.digest), " after " + a.applied + " commands"),
        h("div", { class: "table" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Check"), h("th", {}, "Result"), h("th", {}, "Detail"))),
          h("tbody", {}, a.checks.map((c) => h("tr", {}, h("td", {}, c.name), h("td", {}, tag(c.ok ? "ok" : "bad")), h("td", {}, c.detail)))))));
    } finally { b.disabled = false; }
  }, "primary");
  main.append(h("h2", {}, t("Audit")), card("Every invariant, recomputed", h("div", { class: "actions" }, run), out));
}
function experimentsPage(main) {
  const results = h("div", {});
  const experiments = list({ path: "/v1/experiments", columns: [
    ["Experiment", (x) => "#" + x.experiment_id], ["Name", (x) => x.name],
    ["Variants", (x) => x.variants.map((v) => v.name + " (" + v.weight + ")").join(", ")],
    ["Runs", (x) => when(x.starts_at) + " – " + when(x.ends_at)],
    ["", (x) => button("Results", async () => {
      const r = await api("GET", `/v1/experiments/${x.experiment_id}/results`);
      results.replaceChildren(card("Results of " + r.name, h("div", { class: "table" }, h("table", {},
        h("thead", {}, h("tr", {}, [["Variant"], ["Buyers", "num"], ["Converted", "num"], ["Conversion", "num"], ["AOV", "num"], ["Verdict"]]
          .map(([t, cls]) => h("th", { class: cls, scope: "col" }, t)))),
        h("tbody", {}, r.variants.map((v) => h("tr", {}, h("td", {}, v.name), h("td", { class: "num" }, v.buyers), h("td", { class: "num" }, v.converted),
          h("td", { class: "num" }, (v.conversion * 100).toFixed(2) + "%"), h("td", { class: "num" }, money(Math.round(v.aov))),
          h("td", {}, v.verdict || "the control"))))))));
    })],
  ] });
  main.append(h("h2", {}, t("A/B experiments")), results, card("Experiments", experiments), card("New experiment", form({
    submit: "Create experiment", path: "/v1/experiments",
    fields: [{ name: "name", label: "Name", required: true, maxlength: 200 },
      { name: "variants", label: "Variants (name:weight, the first is the control)", required: true, value: "control:50,treatment:50", wide: true },
      { name: "days", label: "Runs for (days)", type: "number", min: 1, max: 90, value: 7, required: true }],
    body: (v) => {
      const variants = v.variants.split(",").map((p) => { const [name, w] = p.split(":"); return { name: (name || "").trim(), weight: Number(w) }; });
      if (variants.some((x) => !x.name || !(x.weight > 0))) throw invalid("variants", "each variant is name:weight, weight above 0");
      return { name: v.name, variants, starts_at: Date.now(), ends_at: Date.now() + v.days * 86400000 };
    },
    after: () => experiments.refresh(),
  })));
}
// An event in a sentence: money in its currency's units, the ids it names.
function describe(e) {
  const d = e.data || {};
  const cur = d.currency || "";
  const units = (lines) => (lines || []).map((l) => l.quantity + " × SKU #" + l.sku).join(", ");
  switch (e.type) {
    case "order.placed": return "Order #" + d.order + " placed: " + units(d.lines) + " · " + money(d.total, cur);
    case "order.paid": return "Order #" + d.order + " paid: " + money(d.total, cur) + " (commission " + money(d.commission, cur) + ")";
    case "order.refunded": return "Order #" + d.order + " refunded " + money(d.amount, cur);
    case "order.cancelled": case "order.expired": return "Order #" + d.order + " " + e.type.split(".")[1];
    case "stock.changed": return "SKU #" + d.sku + ": " + d.available + " available";
    case "campaign.created": case "campaign.updated": return "Sale " + (d.name ? "“" + d.name + "”" : "#" + d.campaign) + " on SKU #" + d.sku + ": " + d.quantity + " units" + (d.status ? " · " + d.status : "");
    case "red_packet.claimed": return "Red packet #" + d.red_packet + " share claimed: " + money(d.amount);
    case "shipment.dispatched": case "shipment.created": return "Parcel #" + d.shipment + " of order #" + d.order + " " + e.type.split(".")[1];
    case "ticket.opened": case "ticket.updated": case "ticket.replied": return "Ticket #" + d.ticket + " on order #" + d.order + (d.status ? " · " + d.status : "");
    default: return "";
  }
}

function eventsPage(main) {
  const events = list({
    path: "/v1/events", items: (j) => j.events, next: (j) => (j.next < j.head ? j.next : null), limit: 20,
    columns: [["Position", (e) => e.position, "num"], ["Type", (e) => e.type.replace(/[._]/g, " ")], ["At", (e) => when(e.at)],
      ["What", (e) => describe(e)], ["Data", (e) => h("details", {}, h("summary", {}, "JSON"), h("code", {}, JSON.stringify(e.data)))]],
    empty: "No events yet.",
  });
  const deliveries = h("div", {});
  const hooks = list({ path: "/v1/webhooks", items: (j) => (Array.isArray(j) ? j : []), next: () => null, limitParam: null, columns: [
    ["Webhook", (w) => "#" + w.webhook_id], ["URL", (w) => w.url], ["Types", (w) => (w.types || []).join(", ") || "all"],
    ["Status", (w) => tag(w.enabled ? "enabled" : "disabled")], ["Cursor", (w) => w.cursor, "num"], ["Failures", (w) => w.failures, "num"],
    ["", (w) => button("Deliveries", async () => {
      const d = await api("GET", `/v1/webhooks/${w.webhook_id}/deliveries`);
      const rows = (Array.isArray(d) ? d : d.deliveries || []).slice().reverse();
      deliveries.replaceChildren(card("Deliveries of webhook #" + w.webhook_id, h("div", { class: "table" }, h("table", {},
        h("thead", {}, h("tr", {}, ["At", "Attempt", "Events", "Status", "ms", "Error"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.length ? rows.map((x) => h("tr", {}, h("td", {}, when(x.at)), h("td", { class: "num" }, x.attempt),
          h("td", {}, x.first_position + "–" + x.last_position), h("td", {}, tag(x.ok ? "ok" : "bad"), " ", x.status || ""),
          h("td", { class: "num" }, x.duration_ms), h("td", {}, x.error || "")))
          : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No attempt yet.")))))));
    })],
  ] });
  main.append(h("h2", {}, t("Events and webhooks")), card("Webhooks", hooks), deliveries, card("Event feed (oldest first, pages by position)", events));
}

// ---- shell ----
function signIn(message) {
  timers.forEach(clearInterval); timers = [];
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, "aria-describedby": "key-err" });
  const err = h("div", { class: "err", id: "key-err", role: "alert" }, message || "");
  const submit = h("button", { class: "primary", type: "submit" }, t("Sign in"));
  const f = h("form", { onsubmit: async (ev) => {
    ev.preventDefault();
    if (!input.value.trim()) { err.textContent = "Paste an API key."; input.focus(); return; }
    submit.disabled = true;
    sessionStorage.setItem(KEY, input.value.trim());
    sessionStorage.removeItem(AS);
    try { me = await api("GET", "/v1/me"); start(); }
    catch (e) { sessionStorage.removeItem(KEY); err.textContent = e.message; input.setAttribute("aria-invalid", "true"); input.focus(); }
    finally { submit.disabled = false; }
  } }, h("div", { class: "field" }, h("label", { for: "key" }, t("API key")), input, err), h("div", { class: "actions", style: "margin-top:10px" }, submit));
  app.replaceChildren(h("main", { id: "main" }, h("section", { class: "card", id: "signin" }, h("h2", {}, t("elevens console")),
    h("p", { class: "muted" }, t("Sign in with a merchant or operator key. It is kept in this tab only and never put in the address.")), h("div", { class: "field" }, languageSwitch()), f)));
  input.focus();
}
// English or Chinese, kept in this browser; the page is drawn again in the chosen one.
function languageSwitch() {
  const select = h("select", { id: "lang", "aria-label": t("Language"), onchange: () => {
    LANG = select.value;
    localStorage.setItem(LANG_KEY, LANG);
    document.documentElement.lang = LANG;
    if (me) render(); else signIn();
  } }, [["en", "English"], ["zh-CN", "中文"]].map(([v, text]) => h("option", { value: v, selected: v === LANG }, text)));
  return select;
}
function render() {
  timers.forEach(clearInterval); timers = [];
  const pages = pagesOf(me.role);
  const [, route, arg] = (location.hash || "").split("/");
  const page = pages.find(([id]) => id === route) || pages[0];
  const main = h("main", { id: "main", tabindex: "-1" });
  const acting = actingFor();
  const header = h("header", {}, h("h1", {}, "elevens"),
    h("span", { class: "who", "data-role": me.role }, me.role + (me.name ? " · " + me.name : "") + (me.merchant_id ? " #" + me.merchant_id : "")
      + (acting ? " · working as " + acting.name + " #" + acting.merchant_id : "")),
    acting ? h("button", { type: "button", onclick: () => { sessionStorage.removeItem(AS); go("#/merchants"); } }, "Back to operator") : "",
    languageSwitch(),
    h("button", { type: "button", onclick: () => { sessionStorage.removeItem(KEY); sessionStorage.removeItem(AS); me = null; location.hash = ""; signIn(); } }, t("Sign out")));
  if (!page) {
    main.append(h("div", { class: "notice bad", role: "alert" }, "A " + me.role + " key has no console pages: use a merchant or admin key."));
    app.replaceChildren(header, main);
    return;
  }
  const nav = h("nav", { "aria-label": "Pages" }, pages.map(([id, title]) =>
    h("a", { href: "#/" + id, "aria-current": id === page[0] ? "page" : null }, t(title))));
  app.replaceChildren(header, h("div", { class: "shell" }, nav, main));
  // On a phone the nav is one scrolling row: keep the current page's link in sight.
  nav.querySelector('[aria-current="page"]').scrollIntoView({ block: "nearest", inline: "nearest" });
  // A new page takes the focus, so a keyboard or a screen reader starts at its content.
  main.focus({ preventScroll: true });
  loadStoreZone().then(() => page[2](main, arg));
}
function start() {
  window.onhashchange = render;
  render();
}
// A key revoked or replaced while signed in: back to the sign-in form, saying why.
window.addEventListener("unhandledrejection", (ev) => {
  if (ev.reason instanceof ApiError && ev.reason.status === 401) signIn(ev.reason.message);
});

(async () => {
  if (!sessionStorage.getItem(KEY)) return signIn();
  try { me = await api("GET", "/v1/me"); start(); } catch (e) { sessionStorage.removeItem(KEY); signIn(e.message); }
})();
