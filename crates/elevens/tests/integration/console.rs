//! The console in a real browser (headless Chromium over WebDriver): a merchant signs in, opens a
//! warehouse, creates a SKU and a flash sale (and is told beside the field what the API refuses),
//! a buyer orders through the API, the merchant sees the order, dispatches it and sees its
//! tracking; another merchant's key is refused that shipment and the page says so; an operator
//! creates a key (its secret shown once), revokes it, and the key's next request fails. Every
//! page is measured and saved at 1440×900 and 390×844 (`$CARGO_TARGET_TMPDIR/console-*.png`):
//! no sideways scrolling, every field labelled, nothing that moves when the live figures update.

use crate::browser::{screenshot, Browser};
use crate::harness::{now_ms, sku, Server};
use serde_json::{json, Value};

/// Measured in the page: sideways overflow, fields without a label, controls that are not
/// reachable by keyboard, and where each card is (to compare across a live update).
const MEASURE: &str = r##"
const root = document.documentElement;
const out = { vw: innerWidth, vh: innerHeight, scroll_w: root.scrollWidth, unlabelled: [], unreachable: [], cards: [] };
for (const el of document.querySelectorAll("input, select, textarea")) {
  const label = el.id && document.querySelector(`label[for="${el.id}"]`);
  if (!label && !el.getAttribute("aria-label")) out.unlabelled.push(el.name || el.outerHTML.slice(0, 60));
}
for (const el of document.querySelectorAll("[onclick], div[role=button], span[role=button]"))
  out.unreachable.push(el.outerHTML.slice(0, 60));
for (const el of document.querySelectorAll("main *"))
  if (el.getBoundingClientRect().right > innerWidth + 1 && !el.closest(".table")) { out.wide = el.outerHTML.slice(0, 80); break; }
for (const c of document.querySelectorAll("main section.card")) { const r = c.getBoundingClientRect(); out.cards.push([r.top, r.height]); }
out.errors = [...document.querySelectorAll("main .notice.bad, main .err")].map((e) => e.textContent).filter((t) => t);
out.title = (document.querySelector("main h2") || {}).textContent;
out.address = location.href;
return out;
"##;

fn check(layout: &Value, page: &str) {
    assert!(layout["scroll_w"].as_i64() <= layout["vw"].as_i64(), "{page} scrolls sideways: {layout}");
    assert!(layout.get("wide").is_none(), "{page}: something wider than the screen: {layout}");
    assert_eq!(layout["unlabelled"], json!([]), "{page}: fields without a label: {layout}");
    assert_eq!(
        layout["unreachable"],
        json!([]),
        "{page}: clickable things a keyboard cannot reach: {layout}"
    );
    assert_eq!(layout["errors"], json!([]), "{page} shows an error on its own key's page: {layout}");
    let address = layout["address"].as_str().unwrap_or("");
    assert!(!address.contains("ek_") && !address.contains("key="), "the key is in the address: {address}");
}

/// Opens each page at both sizes, measures it, and saves it as `console-<role>-<page>-<w>.png`.
async fn tour(browser: &Browser, base: &str, role: &str, pages: &[&str]) {
    for (w, h) in [(1440, 900), (390, 844)] {
        browser.viewport(w, h).await;
        for page in pages {
            browser.goto(&format!("{base}/console#/{page}")).await;
            let route = page.split('/').next().unwrap_or(page);
            browser.until(&format!("return document.querySelector('nav a[aria-current=page]')?.getAttribute('href') === '#/{route}' && document.querySelector('main h2')")).await;
            // The lists answer after the heading is drawn: wait for them.
            browser
                .until("return [...document.querySelectorAll('main .table')].every(t => t.children.length)")
                .await;
            let layout = browser.run(MEASURE).await;
            eprintln!("console {role} {page} at {w}x{h}: {layout}");
            check(&layout, page);
            screenshot(browser, &format!("console-{role}-{}-{w}.png", page.replace('/', "-"))).await;
        }
    }
    browser.viewport(1440, 900).await;
}

async fn sign_in(browser: &Browser, base: &str, key: &str) {
    signed_out(browser, base).await;
    browser.fill("#key", key).await;
    browser.click("#signin button[type=submit]").await;
    browser.until("return document.querySelector('header .who')?.textContent").await;
}

/// Clicks the button of the page (not the header) that says `label`, once it is there.
async fn press(browser: &Browser, label: &str) {
    browser
        .until(&format!(
            "const b = [...document.querySelectorAll('main button')].find(b => b.textContent === '{label}'); return b && (b.click(), true)"
        ))
        .await;
}

/// The text beside the field `name` of the form whose submit button says `submit`.
fn field_error(submit: &str, name: &str) -> String {
    format!(
        "const f = [...document.querySelectorAll('form')].find(f => f.querySelector('button[type=submit]').textContent === '{submit}');
         const i = f && f.querySelector('[name={name}]');
         return i && document.getElementById(i.getAttribute('aria-describedby')).textContent;"
    )
}

fn submit_button(label: &str) -> String {
    format!("return [...document.querySelectorAll('form button[type=submit]')].find(b => b.textContent === '{label}').click()")
}

#[tokio::test]
async fn a_merchant_sells_and_ships_from_the_console_and_an_operator_revokes_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let Some(browser) = Browser::start().await else { return };
    let (merchant, service) = server.marketplace(1, 1_000_000).await;
    let admin = server.admin.clone();
    let base = server.base.clone();
    let (s, _) = server.post("/v1/merchants", &admin, "rival", json!({"name": "Rival Store"})).await;
    assert_eq!(s, 201);
    let rival = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
    let address = json!({"region": "CN-BJ", "address": "1 Chang'an Avenue"});
    let lanes = json!({"name": "SF Express", "lanes": [{"from": "CN-ZJ", "to": "CN-BJ", "p50_days": 2, "p90_days": 3}]});
    assert_eq!(server.post("/v1/carriers", &admin, "carrier", lanes).await.0, 201);
    let (s, body) = server.put("/v1/buyers/1/address", &service, "addr", address).await;
    assert_eq!(s, 200, "{body}");

    // A key that is not one: the sign-in form says why, beside the field.
    browser.viewport(1440, 900).await;
    sign_in_refused(&browser, &base, "ek_not_a_key").await;

    // The merchant signs in and sees its store.
    sign_in(&browser, &base, &merchant).await;
    let who = browser.text("header .who").await;
    assert!(who.contains("merchant") && who.contains("Flagship"), "{who}");

    // A warehouse, then a SKU; the form first refuses what the API would.
    browser.goto(&format!("{base}/console#/warehouses")).await;
    browser.fill("form [name=name]", "Hangzhou DC").await;
    browser.fill("form [name=region]", "CN-ZJ").await;
    browser.run(&submit_button("Create warehouse")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent.includes('Hangzhou DC'))").await;

    browser.goto(&format!("{base}/console#/catalogue")).await;
    // The warehouse a SKU ships from is picked by its name, not its number.
    browser.until("return [...document.querySelectorAll('form [name=warehouse_id] option')].some(o => o.textContent === 'Hangzhou DC (CN-ZJ)')").await;
    browser.fill("form [name=title]", "West Lake Longjing 250 g").await;
    browser.fill("form [name=price]", "12.3.4").await;
    browser.run(&submit_button("Create SKU")).await;
    let refused = browser.until(&field_error("Create SKU", "price")).await;
    assert_eq!(refused, "an amount such as 12.34", "the price's own message, beside it");
    browser.fill("form [name=price]", "88.00").await;
    browser.fill("form [name=stock]", "100").await;
    browser.run(&submit_button("Create SKU")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'West Lake Longjing 250 g')").await;
    let (_, sku) = server.get("/v1/skus/1", &merchant).await;
    assert_eq!((sku["price"].as_u64(), sku["available"].as_u64()), (Some(8800), Some(100)), "{sku}");

    // Edit it: the new title is the SKU's, in the API and on the page.
    press(&browser, "Edit").await;
    browser.fill("form[aria-label='Edit SKU 1'] [name=title]", "West Lake Longjing 250 g (2026)").await;
    browser
        .run("document.querySelector(\"form[aria-label='Edit SKU 1'] button[type=submit]\").click()")
        .await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'West Lake Longjing 250 g (2026)')").await;
    assert_eq!(server.get("/v1/skus/1", &merchant).await.1["title"], "West Lake Longjing 250 g (2026)");

    // A catalogue from CSV: a file with bad rows is refused whole, each error by line and
    // field; the corrected file creates its SKUs.
    let choose_file = |text: &str| {
        format!("const i = document.getElementById('import-file'); const dt = new DataTransfer(); dt.items.add(new File([{text:?}], 'catalogue.csv', {{ type: 'text/csv' }})); i.files = dt.files; i.dispatchEvent(new Event('change'));")
    };
    browser.run(&choose_file("title,price,currency,stock\nGaiwan,,CNY,5\nTea tray,45.00,yuan,2\n")).await;
    press(&browser, "Import").await;
    let errors = browser.until("const rows = document.querySelectorAll('table.import-errors tbody tr'); return rows.length ? [...rows].map(r => r.innerText.replace(/\\s+/g, ' ')) : null").await;
    assert_eq!(
        errors,
        json!([
            "2 price an amount such as 12.34, not \"\"",
            "3 currency an ISO 4217 code such as CNY, not \"yuan\""
        ]),
        "{errors}"
    );
    assert_eq!(
        server.get("/v1/merchants/1/skus", &merchant).await.1["items"].as_array().map(Vec::len),
        Some(1)
    );
    browser
        .run(&choose_file(
            "title,price,currency,stock\nGaiwan,38.00,CNY,5\n\"Tea tray, bamboo\",45.00,CNY,2\n",
        ))
        .await;
    press(&browser, "Import").await;
    browser
        .until("return document.querySelector('main [role=status]')?.textContent === '2 SKUs created.'")
        .await;
    let (_, listed) = server.get("/v1/merchants/1/skus", &merchant).await;
    let titles: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|s| s["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["West Lake Longjing 250 g (2026)", "Gaiwan", "Tea tray, bamboo"], "{listed}");
    // Found by typing its name; the two new ones repriced together.
    browser.fill("#find-sku", "bamboo").await;
    browser.until("const rows = document.querySelectorAll('main section.card tbody tr'); return rows.length === 1 && rows[0].innerText.includes('Tea tray, bamboo')").await;
    browser.fill("#find-sku", "").await;
    browser.run("document.getElementById('find-sku').dispatchEvent(new Event('input'))").await;
    browser
        .until("return document.querySelectorAll('main section.card tbody tr td.pick').length === 3")
        .await;
    browser.run("[...document.querySelectorAll('main section.card tbody tr')].slice(1).forEach(r => r.querySelector('td.pick input').click())").await;
    browser.fill("#bulk-price", "30.00").await;
    press(&browser, "Set price").await;
    browser.until("return document.querySelector('main [role=status]')?.textContent.startsWith('2 / 2 SKUs changed.')").await;
    for id in [2, 3] {
        assert_eq!(server.get(&format!("/v1/skus/{id}"), &merchant).await.1["price"].as_u64(), Some(3_000));
    }

    // A flash sale: a flash price above the shelf is refused by the API, shown beside its field.
    // The SKU is picked by typing its name: the API's search suggests it.
    browser.goto(&format!("{base}/console#/campaigns")).await;
    browser.fill("form [name=name]", "Longjing launch").await;
    browser.fill("form [name=sku_id]", "Longjing").await;
    let suggestion =
        browser.until("const o = document.querySelector('datalist option'); return o && o.value").await;
    assert_eq!(suggestion, "West Lake Longjing 250 g (2026) (#1)");
    browser.run(&format!("document.querySelector('form [name=sku_id]').value = {suggestion}")).await;
    browser.fill("form [name=flash_price]", "99.00").await;
    browser.fill("form [name=quantity]", "10").await;
    browser.fill("form [name=per_buyer_limit]", "5").await;
    // Starts this minute (a datetime-local field holds minutes).
    browser
        .run("const d = new Date(); d.setSeconds(0, 0); document.querySelector('form [name=starts_at]').value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);")
        .await;
    browser.run(&submit_button("Create flash sale")).await;
    let refused = browser.until(&field_error("Create flash sale", "flash_price")).await;
    assert!(refused.as_str().unwrap().contains("must not exceed the SKU's price"), "{refused}");
    browser.fill("form [name=flash_price]", "66.00").await;
    browser.run(&submit_button("Create flash sale")).await;
    browser
        .until(
            "return document.querySelector('main .notice')?.textContent.startsWith('Flash sale “Longjing launch” created')",
        )
        .await;
    browser
        .until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'open')")
        .await;
    // It runs: its name and units may change, its price may not (the form offers what may).
    press(&browser, "Edit").await;
    browser.until("return document.querySelector(\"form[aria-label='Save changes'] [name=quantity]\")").await;
    let offered = browser.run("return [...document.querySelectorAll(\"form[aria-label='Save changes'] [name]\")].map(i => i.name)").await;
    assert_eq!(offered, json!(["name", "quantity", "ends_at"]), "a running sale's editable terms");
    browser.fill("form[aria-label='Save changes'] [name=name]", "Longjing launch, extended").await;
    browser.fill("form[aria-label='Save changes'] [name=quantity]", "12").await;
    browser.run(&submit_button("Save changes")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'Longjing launch, extended')").await;
    let (_, sale) = server.get("/v1/campaigns/1", &merchant).await;
    assert_eq!(
        (sale["name"].as_str(), sale["quantity"].as_u64()),
        (Some("Longjing launch, extended"), Some(12)),
        "{sale}"
    );

    // The funnel is live and the page does not move when it updates.
    press(&browser, "Funnel").await;
    browser.until("return document.querySelector('main .figures .figure')").await;
    let before = browser.run(MEASURE).await;
    tokio::time::sleep(std::time::Duration::from_millis(4_500)).await;
    let after = browser.run(MEASURE).await;
    assert_eq!(before["cards"], after["cards"], "the page moved on a live update");

    // A buyer orders through the API, at the flash price, and pays.
    let (s, order) = server
        .post(
            "/v1/orders",
            &service,
            "order-1",
            json!({"buyer_id": 1, "lines": [{"sku_id": 1, "quantity": 2}]}),
        )
        .await;
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["total"].as_u64(), Some(13_200), "two at the flash price: {order}");
    let (s, paid) = server.post("/v1/orders/1/pay", &service, "pay-1", json!({})).await;
    assert_eq!(s, 200, "{paid}");
    // Two more orders, for the dispatch of a selection.
    for n in 2..=3 {
        let line = json!({"buyer_id": 1, "lines": [{"sku_id": 1, "quantity": 1}]});
        assert_eq!(server.post("/v1/orders", &service, &format!("order-{n}"), line).await.0, 201);
        assert_eq!(
            server.post(&format!("/v1/orders/{n}/pay"), &service, &format!("pay-{n}"), json!({})).await.0,
            200
        );
    }

    // The merchant sees it to ship, dispatches it (a double click does it once), sees the tracking.
    browser.goto(&format!("{base}/console#/orders")).await;
    browser
        .until("return [...document.querySelectorAll('main td')].some(td => td.textContent === '#1')")
        .await;
    // Its parcel is due to leave: today (paid before the cutoff) or tomorrow, never late.
    let due = browser
        .until("const c = [...document.querySelectorAll('main section.card')].find(c => c.querySelector('h3')?.textContent === 'Parcels to dispatch'); return c && c.querySelector('tbody tr td') && c.innerText")
        .await;
    let due = due.as_str().unwrap();
    assert!(due.contains("#1") && due.contains("awaiting dispatch") && !due.contains("late"), "{due}");
    // Orders name their buyer and their lines' titles.
    let row = browser
        .run("return document.querySelector('main section.card:last-of-type tbody tr').innerText")
        .await;
    assert!(
        row.as_str().unwrap().contains("buyer 1 (#1)")
            && row.as_str().unwrap().contains("× West Lake Longjing"),
        "{row}"
    );
    // One parcel's own button (a double click dispatches it once), then the other two ticked
    // and dispatched together.
    browser
        .until("return [...document.querySelectorAll('main button')].find(b => b.textContent === 'Dispatch')")
        .await;
    browser
        .run("const b = [...document.querySelectorAll('main button')].find(b => b.textContent === 'Dispatch'); b.click(); b.click();")
        .await;
    browser.until("return document.querySelectorAll('main td.pick input').length === 2").await;
    browser.run("document.querySelectorAll('main td.pick input').forEach(i => i.click())").await;
    press(&browser, "Dispatch selected").await;
    browser.until("return document.querySelector('main [role=status]')?.textContent.startsWith('2 / 2 parcels dispatched')").await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'Nothing is waiting to leave.')").await;
    for id in 1..=3 {
        let (_, shipment) = server.get(&format!("/v1/shipments/{id}"), &merchant).await;
        assert_eq!(shipment["status"], "dispatched", "{shipment}");
    }
    // A refusal refreshes the queue: dispatched already (as by someone else), the row goes.
    let (_, events) = server.get("/v1/events?types=shipment.dispatched", &admin).await;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(3), "each dispatched once: {events}");

    // The orders, exported as CSV and read back: a row per line, with names.
    browser.run("document.querySelector('main select').value = ''; document.querySelector('main select').dispatchEvent(new Event('change'))").await;
    press(&browser, "Export orders (CSV)").await;
    let csv = browser
        .until("const a = document.getElementById('csv-download'); if (!a) return null; if (!window.csvRead) window.csvRead = a.file.text().then(t => { window.csvText = t; }); return window.csvText")
        .await;
    let csv = csv.as_str().unwrap_or_else(|| panic!("no CSV read back: {csv}"));
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(reader.headers().unwrap().get(4), Some("buyer_name"), "{csv}");
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(
        (&rows[0][0], &rows[0][4], &rows[0][6], &rows[0][8]),
        ("1", "buyer 1", "West Lake Longjing 250 g (2026)", "66.00"),
        "{csv}"
    );

    // The order's page: its buyer, lines with titles, its parcel and what happened, in order.
    browser.goto(&format!("{base}/console#/orders/1")).await;
    let page = browser.until("const c = document.querySelector('main .timeline'); return c && document.querySelector('main section.card').innerText").await;
    let page = page.as_str().unwrap();
    assert!(page.contains("buyer 1 (#1)") && page.contains("West Lake Longjing 250 g (2026)"), "{page}");
    assert!(
        page.contains("Ships to\n1 Chang'an Avenue, CN-BJ"),
        "the buyer's address on the order's page: {page}"
    );
    assert!(
        page.find("Placed by").unwrap() < page.find("Parcel #1 dispatched").unwrap(),
        "the timeline in time order: {page}"
    );
    // The store's first page moves with the day: today's sales, the running sale, the to-do.
    browser.goto(&format!("{base}/console#/store")).await;
    let today = browser.until("const t = document.getElementById('today'); return t && t.innerText.includes('264.00') && t.innerText").await;
    assert!(today.as_str().unwrap().contains("Paid orders today\n3"), "{today}");
    let sale =
        browser.until("const s = document.querySelector('main .sales .sale'); return s && s.innerText").await;
    assert!(
        sale.as_str().unwrap().contains("Longjing launch, extended")
            && sale.as_str().unwrap().contains("4 ordered · 8 left of 12"),
        "{sale}"
    );
    // The store works in China's time: its day and every time shown are UTC+08:00's, named.
    browser.run("const s = [...document.querySelectorAll('form select[name=utc_offset_minutes]')][0]; s.value = '480'").await;
    browser.run(&submit_button("Set time zone")).await;
    browser
        .until("const t = document.getElementById('today'); return t && t.innerText.includes('UTC+08:00')")
        .await;
    let (_, store) = server.get("/v1/merchants/1", &merchant).await;
    assert_eq!(
        (store["utc_offset_minutes"].as_i64(), store["time_zone"].as_str()),
        (Some(480), Some("UTC+08:00"))
    );
    browser.goto(&format!("{base}/console#/shipments/1")).await;
    browser.until("return document.querySelector('main .tag.dispatched')").await;
    browser.run("document.querySelector('form [name=status]').value = 'in_transit'").await;
    browser.run(&submit_button("Record event")).await;
    browser.until("return [...document.querySelectorAll('table.tracking td')].some(td => td.textContent === 'in transit')").await;
    let (_, shipment) = server.get("/v1/shipments/1", &merchant).await;
    assert_eq!(shipment["tracking_status"], "in_transit", "{shipment}");

    // After-sales: the parcel is delivered, the buyer asks to return a unit and opens a ticket
    // (through the API); the merchant accepts the return and answers the ticket in the console.
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let delivered = json!({"events": [{"shipment_id": 1, "event_id": "d-1", "status": "delivered", "occurred_at": crate::harness::now_ms()}]});
    assert_eq!(server.post("/v1/tracking-events", &merchant, "delivered", delivered).await.0, 200);
    let ret = json!({"lines": [{"sku_id": 1, "quantity": 1}], "reason": "damaged"});
    let (s, ret) = server.post("/v1/orders/1/returns", &buyer, "return-1", ret).await;
    assert_eq!(s, 201, "{ret}");
    let (s, ticket) = server
        .post("/v1/orders/1/tickets", &buyer, "ticket-1", json!({"subject": "the tin is dented"}))
        .await;
    assert_eq!(s, 201, "{ticket}");
    browser.goto(&format!("{base}/console#/returns")).await;
    press(&browser, "Accept").await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'No returns match.')").await;
    assert_eq!(server.get("/v1/returns/1", &merchant).await.1["status"], "approved");
    browser.goto(&format!("{base}/console#/tickets")).await;
    // Its row: new, and the first answer's deadline (24 h on) as a date, not yet "answered".
    let row = browser
        .until("const r = [...document.querySelectorAll('main tbody tr')].find(r => r.innerText.includes('the tin is dented')); return r && [...r.children].map(td => td.textContent)")
        .await;
    let due = ticket["first_response_due"].as_u64().unwrap();
    let due_in_page = browser
        .run(&format!("return new Date({due} + 480 * 60000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC+08:00'"))
        .await;
    assert_eq!((&row[4], &row[5]), (&json!("new"), &due_in_page), "{row}");
    // The merchant answers in the ticket's conversation: its first response, which opens it.
    browser.run("document.querySelector('main tbody a[href=\"#/tickets/1\"]').click()").await;
    browser.until("return document.querySelector(\"form[aria-label='Reply'] [name=body]\")").await;
    browser
        .fill("form[aria-label='Reply'] [name=body]", "Sorry about the tin: a new one leaves today.")
        .await;
    browser.run(&submit_button("Send reply")).await;
    browser.until("return [...document.querySelectorAll('.conversation li.store')].some(li => li.textContent.includes('a new one leaves today'))").await;
    let (_, ticket) = server.get("/v1/tickets/1", &merchant).await;
    assert_eq!(
        (ticket["status"].as_str(), ticket["first_response_at"].is_u64()),
        (Some("open"), true),
        "{ticket}"
    );
    // The buyer answers through the API; the merchant's page shows the conversation in order.
    let reply = json!({"body": "Thank you!"});
    assert_eq!(server.post("/v1/tickets/1/replies", &buyer, "buyer-reply", reply).await.0, 201);
    assert_eq!(
        server.post("/v1/tickets/1/replies", &rival, "rival-reply", json!({"body": "x"})).await.0,
        403
    );
    browser.goto(&format!("{base}/console#/returns")).await;
    browser.goto(&format!("{base}/console#/tickets/1")).await;
    let conversation = browser.until("const c = document.querySelector('.conversation'); return c && c.children.length === 3 && c.innerText").await;
    let conversation = conversation.as_str().unwrap();
    assert!(
        conversation.find("the tin is dented").unwrap() < conversation.find("Thank you!").unwrap(),
        "{conversation}"
    );
    // The order's page tells its whole story: the return and the ticket's messages in its timeline.
    browser.goto(&format!("{base}/console#/orders/1")).await;
    let story = browser
        .until("const c = document.querySelector('main .timeline'); return c && c.innerText.includes('Ticket #1') && c.innerText")
        .await;
    let story = story.as_str().unwrap();
    let at =
        |what: &str| story.find(what).unwrap_or_else(|| panic!("{what} missing from the timeline: {story}"));
    assert!(
        at("Placed by") < at("Return #1 requested") && at("Ticket #1 opened") < at("Thank you!"),
        "{story}"
    );
    // A note for the store's people, kept on the order and shown on its page, never to the buyer.
    browser.fill("form[aria-label='Add a note'] [name=body]", "Replacement tin sent with SF").await;
    browser.run(&submit_button("Keep note")).await;
    browser.until("return [...document.querySelectorAll('main ul.notes li')].some(li => li.textContent.includes('Replacement tin sent with SF'))").await;
    let (_, theirs) = server.get("/v1/orders/1/after-sales", &buyer).await;
    assert!(theirs.get("notes").is_none(), "{theirs}");
    // Found by words, asked of the server: the ticket by a word of its subject, and nothing for
    // words no ticket holds.
    browser.goto(&format!("{base}/console#/tickets")).await;
    browser.until("return document.querySelector('main .finder input[type=search]')").await;
    browser.run("const s = document.querySelector('main .finder select'); s.value = ''; s.dispatchEvent(new Event('change'))").await;
    browser.fill("main .finder input[type=search]", "DENTED").await;
    browser.until("const rows = [...document.querySelectorAll('main tbody tr')]; return rows.length === 1 && rows[0].innerText.includes('the tin is dented')").await;
    browser.fill("main .finder input[type=search]", "no such words").await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'No tickets match.')").await;

    // A coupon with a budget, and a red packet funded from the store's wallet (258.72 CNY after
    // the sales): a pool the wallet cannot fund is refused in the API's words.
    browser.goto(&format!("{base}/console#/coupons")).await;
    browser.until("return document.querySelector('form [name=amount_off]')").await;
    browser.fill("form [name=amount_off]", "5.00").await;
    browser.fill("form [name=min_spend]", "50.00").await;
    browser.fill("form [name=budget_amount]", "100.00").await;
    browser.run(&submit_button("Create coupon")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === '0.00 of 100.00 CNY')").await;
    let (_, coupons) = server.get("/v1/coupons?merchant_id=1", &merchant).await;
    let coupon = &coupons["coupons"][0];
    assert_eq!(
        (coupon["amount_off"].as_u64(), coupon["min_spend"].as_u64(), coupon["budget_amount"].as_u64()),
        (Some(500), Some(5_000), Some(10_000)),
        "{coupons}"
    );
    // A percent coupon: entered in percent, its form without the amount's field.
    browser.run("const k = document.querySelector('form [name=kind]'); k.value = 'percent'; k.dispatchEvent(new Event('change'))").await;
    let hidden =
        browser.run("return document.querySelector('form [name=amount_off]').closest('.field').hidden").await;
    assert_eq!(hidden, true, "a percent coupon's form asks for no amount");
    browser.fill("form [name=percent_bps]", "12.5").await;
    browser.run(&submit_button("Create coupon")).await;
    browser
        .until("return [...document.querySelectorAll('main td')].some(td => td.textContent === '12.5%')")
        .await;
    let (_, coupons) = server.get("/v1/coupons?merchant_id=1", &merchant).await;
    assert_eq!(coupons["coupons"][0]["percent_bps"].as_u64(), Some(1_250), "{coupons}");
    browser.fill("form [name=amount]", "1000.00").await;
    browser.run(&submit_button("Fund red packet")).await;
    let refused = browser
        .until("const f = document.querySelector(\"form[aria-label='Fund red packet'] .formerr\"); return f && f.textContent")
        .await;
    assert_eq!(refused, "not enough money in the wallet", "the API's words");
    browser.fill("form [name=amount]", "10.00").await;
    browser.run(&submit_button("Fund red packet")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === '0 / 10 · 0.00 CNY')").await;
    let (_, wallet) = server.get("/v1/merchants/1/wallet", &merchant).await;
    assert_eq!(
        wallet["accounts"][0]["balance"].as_i64(),
        Some(12_936 + 2 * 6_468 - 1_000),
        "the pool left the wallet: {wallet}"
    );

    tour(
        &browser,
        &base,
        "merchant",
        &[
            "store",
            "catalogue",
            "warehouses",
            "campaigns",
            "coupons",
            "orders",
            "shipments/1",
            "returns",
            "tickets",
            "tickets/1",
        ],
    )
    .await;

    // 中文: chosen in the header, kept; the pages, their dates and amounts in Chinese, at both
    // sizes; then back to English for the rest of the walk.
    let language = |lang: &str| {
        format!("const s = document.getElementById('lang'); s.value = '{lang}'; s.dispatchEvent(new Event('change'));")
    };
    browser.run(&language("zh-CN")).await;
    let nav = browser
        .until("return document.documentElement.lang === 'zh-CN' && document.querySelector('nav').innerText")
        .await;
    assert!(
        nav.as_str().unwrap().contains("订单发货") && nav.as_str().unwrap().contains("客服工单"),
        "{nav}"
    );
    tour(&browser, &base, "merchant-zh", &["store", "campaigns", "orders", "orders/1", "tickets/1"]).await;
    let heading = browser.run("return document.querySelector('main h2').textContent").await;
    assert_eq!(heading, "客服工单");
    browser.run(&language("en")).await;
    browser.until("return document.documentElement.lang === 'en' && document.querySelector('nav').innerText.includes('Orders to ship')").await;

    // Another merchant: its own lists are empty, and the first merchant's shipment is refused,
    // by the API and on the page.
    sign_in(&browser, &base, &rival).await;
    browser.goto(&format!("{base}/console#/orders")).await;
    browser.until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'No orders match.')").await;
    assert_eq!(server.get("/v1/merchants/1/orders", &rival).await.0, 403);
    assert_eq!(server.get("/v1/shipments/1", &rival).await.0, 403);
    browser.goto(&format!("{base}/console#/shipments/1")).await;
    let refusal = browser.until("return document.querySelector('main .notice.bad')?.textContent").await;
    assert!(refusal.as_str().unwrap().contains("may not"), "{refusal}");
    let page = browser.run("return document.querySelector('main').innerText").await;
    assert!(!page.as_str().unwrap().contains("Longjing"), "another merchant's SKU on the page: {page}");

    // The operator creates a key (its secret shown once), revokes it; its next request fails.
    sign_in(&browser, &base, &admin).await;
    browser.goto(&format!("{base}/console#/keys")).await;
    browser.run("document.querySelector('form [name=role]').value = 'merchant'").await;
    browser.fill("form [name=label]", "Rival's storefront").await;
    // The store is picked by its name.
    browser.until("return [...document.querySelectorAll('form [name=merchant_id] option')].some(o => o.textContent === 'Rival Store (#2)')").await;
    browser.run("document.querySelector('form [name=merchant_id]').value = '2'").await;
    browser.run(&submit_button("Create key")).await;
    let secret = browser.until("return document.querySelector('[data-secret]')?.textContent").await;
    let secret = secret.as_str().unwrap().to_owned();
    assert_eq!(server.get("/v1/me", &secret).await.1["merchant_id"], 2);
    let (_, keys) = server.get("/v1/api-keys?limit=100", &admin).await;
    let id = keys["items"].as_array().unwrap().len();
    // Labelled, and used just now (the /v1/me above).
    let new_key = &keys["items"][id - 1];
    assert_eq!(new_key["label"], "Rival's storefront", "{keys}");
    assert!(new_key["last_used_at"].as_u64().is_some_and(|at| at + 60_000 > now_ms()), "{keys}");
    browser.run("window.confirm = () => true").await;
    browser
        .until(&format!(
            "return [...document.querySelectorAll('main td')].some(td => td.textContent === '#{id}')"
        ))
        .await;
    browser
        .run(&format!("const row = [...document.querySelectorAll('main tr')].find(r => r.firstChild.textContent === '#{id}'); row.querySelector('button').click();"))
        .await;
    browser.until(&format!("return [...document.querySelectorAll('main tr')].find(r => r.firstChild.textContent === '#{id}')?.querySelector('.tag.revoked')")).await;
    let (status, body) = server.get("/v1/me", &secret).await;
    assert_eq!(status, 401, "a revoked key still answers: {body}");

    tour(
        &browser,
        &base,
        "admin",
        &["merchants", "buyers", "keys", "admission", "platform", "audit", "experiments", "events"],
    )
    .await;

    // Admission in a form: the hot-item limit turned in a spike, in force at once.
    browser.goto(&format!("{base}/console#/admission")).await;
    browser.until("return document.querySelector('#rule-sku_per_s')?.value").await;
    browser.fill("#rule-sku_per_s", "500").await;
    press(&browser, "Save rules").await;
    browser.until("return document.querySelector('main .err')?.textContent.startsWith('Saved')").await;
    let (_, rules) = server.get("/v1/admission/rules", &admin).await;
    assert_eq!(rules["sku_quota"]["per_s"].as_u64(), Some(500), "{rules}");
    // The feed reads as sentences, money in yuan.
    browser.goto(&format!("{base}/console#/events")).await;
    let feed = browser.until("const t = [...document.querySelectorAll('main td')].find(td => td.textContent.startsWith('Order #1 paid')); return t && t.textContent").await;
    assert_eq!(feed, "Order #1 paid: 132.00 CNY (commission 2.64 CNY)");

    // An experiment made in the console, and its results with a verdict in words.
    browser.goto(&format!("{base}/console#/experiments")).await;
    browser.fill("form [name=name]", "bigger photos").await;
    browser.run(&submit_button("Create experiment")).await;
    press(&browser, "Results").await;
    let rows = browser
        .until("const rows = [...document.querySelectorAll('main section.card')].find(c => c.querySelector('h3')?.textContent === 'Results of bigger photos')?.querySelectorAll('tbody tr'); return rows && rows.length ? [...rows].map(r => r.innerText) : null")
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].as_str().unwrap().contains("the control"), "{rows:?}");
    let (_, results) = server.get("/v1/experiments/1/results", &admin).await;
    let verdict = results["variants"][1]["verdict"].as_str().unwrap();
    assert!(rows[1].as_str().unwrap().contains(verdict), "the API's verdict on the page: {rows:?} {verdict}");
    screenshot(&browser, "console-admin-experiment-results-1440.png").await;

    // The audit, run from its page: every check listed, every one ok.
    browser.goto(&format!("{base}/console#/audit")).await;
    press(&browser, "Run the audit").await;
    let checks = browser
        .until("const rows = document.querySelectorAll('main tbody tr'); return rows.length ? [...rows].map(r => r.children[1].textContent) : null")
        .await;
    let checks = checks.as_array().unwrap_or_else(|| panic!("the audit's table: {checks}"));
    assert!(checks.len() >= 5 && checks.iter().all(|c| c == "ok"), "the audit's checks: {checks:?}");
    screenshot(&browser, "console-admin-audit-run-1440.png").await;

    // A page the API cuts short (as it does when it has looked at its bound of records) is
    // followed to fill the page: the answers are cut in the page, the list still shows both
    // merchants, in one page, with no cursor left.
    browser.goto(&format!("{base}/console#/buyers")).await;
    browser.until("return document.querySelector('main h2')?.textContent === 'Buyers'").await;
    browser
        .run(
            "const real = window.fetch; window.cut = 0;
             window.fetch = async (url, options) => {
               const response = await real(url, options);
               if (!String(url).startsWith('/v1/merchants?')) return response;
               const page = await response.json();
               if (page.items.length > 1) { window.cut++; page.next_after = page.items[0].merchant_id; page.items = page.items.slice(0, 1); }
               return new Response(JSON.stringify(page), { status: response.status, headers: response.headers });
             };
             location.hash = '#/merchants';",
        )
        .await;
    let shown = browser
        .until("const p = document.querySelector('main .pager span'); return p && p.textContent === '2 shown' && [...document.querySelectorAll('main tbody tr')].map(r => r.children[1].textContent)")
        .await;
    assert_eq!(shown, json!(["Flagship", "Rival Store"]));
    assert_eq!(browser.run("return window.cut").await, 1, "the first answer was cut");
    assert_eq!(
        browser.run("return [...document.querySelectorAll('main .pager button')].map(b => b.disabled)").await,
        json!([true, true]),
        "one page, nothing after it"
    );

    // The operator works as the first store: its pages, its shipment, then back.
    browser.goto(&format!("{base}/console#/merchants")).await;
    browser
        .until("const r = [...document.querySelectorAll('main tr')].find(r => r.innerText.includes('Flagship')); const b = r && r.querySelector('button'); return b && (b.click(), true)")
        .await;
    let heading = browser
        .until("return location.hash === '#/store' && document.querySelector('main h2')?.textContent")
        .await;
    assert_eq!(heading, "Store: Flagship");
    assert!(browser.text("header .who").await.contains("working as Flagship #1"));
    for (w, h) in [(390, 844), (1440, 900)] {
        browser.viewport(w, h).await;
        browser.goto(&format!("{base}/console#/shipments/1")).await;
        browser.until("return document.querySelector('main .tag.delivered')").await;
        let layout = browser.run(MEASURE).await;
        check(&layout, "shipments/1 as the operator");
        screenshot(&browser, &format!("console-admin-as-merchant-shipment-{w}.png")).await;
    }
    browser
        .run("[...document.querySelectorAll('header button')].find(b => b.textContent === 'Back to operator').click()")
        .await;
    browser.until("return location.hash === '#/merchants' && document.querySelector('main h2')?.textContent === 'Merchants'").await;

    // The revoked key cannot sign in.
    sign_in_refused(&browser, &base, &secret).await;
    // Every page above rendered within the Content-Security-Policy (no inline style or script).
    let violations = browser.policy_violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
    server.audit().await;
}

async fn sign_in_refused(browser: &Browser, base: &str, key: &str) {
    signed_out(browser, base).await;
    browser.fill("#key", key).await;
    browser.click("#signin button[type=submit]").await;
    let message = browser.until("return document.getElementById('key-err').textContent").await;
    assert!(message.as_str().unwrap().to_lowercase().contains("key"), "{message}");
    assert_eq!(browser.run("return sessionStorage.length").await, 0, "a refused key was kept");
}

/// The console's sign-in form, with nothing in the tab's session storage.
async fn signed_out(browser: &Browser, base: &str) {
    browser.goto(&format!("{base}/console")).await;
    browser.run("sessionStorage.clear()").await;
    browser.goto("about:blank").await;
    browser.goto(&format!("{base}/console")).await;
    browser.until("return document.getElementById('key')").await;
}

/// What the console reads and edits, from the API's side: each list and the SKU edit refuse
/// every key that may not, a list pages with its cursor, a bad page size names its field, an
/// edit under a running campaign's flash price is refused, and a repeated edit is one edit.
#[tokio::test]
async fn the_consoles_lists_and_sku_edit_refuse_every_key_that_may_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (merchant, service) = server.marketplace(1, 1_000_000).await;
    let admin = server.admin.clone();
    assert_eq!(server.post("/v1/merchants", &admin, "rival", json!({"name": "Rival"})).await.0, 201);
    let rival = server.key(json!({"role": "merchant", "merchant_id": 2})).await;
    let viewer = server.key(json!({"role": "viewer"})).await;
    let buyer = server.key(json!({"role": "buyer", "buyer_id": 1})).await;
    let skus: Vec<u64> = [100, 200, 300].into_iter().map(|price| price * 100).collect();
    for &price in &skus {
        sku(&server, &merchant, 10, price).await;
    }

    // Who each key is.
    let (_, me) = server.get("/v1/me", &merchant).await;
    assert_eq!(
        (me["role"].as_str(), me["merchant_id"].as_u64(), me["name"].as_str()),
        (Some("merchant"), Some(1), Some("Flagship")),
        "{me}"
    );
    assert_eq!(server.get("/v1/me", &buyer).await.1["buyer_id"], 1);
    assert_eq!(server.get("/v1/me", "ek_nobody").await.0, 401);

    // The operator's lists: the keys only for the admin, and never a secret.
    for key in [&merchant, &service, &viewer, &buyer] {
        assert_eq!(server.get("/v1/api-keys", key).await.0, 403, "a non-admin listed the keys");
    }
    let (status, keys) = server.get("/v1/api-keys?limit=100", &admin).await;
    assert_eq!(status, 200, "{keys}");
    assert!(
        keys["items"].as_array().unwrap().iter().all(|k| k.get("key").is_none_or(Value::is_null)),
        "a secret in the list: {keys}"
    );
    for path in ["/v1/merchants", "/v1/buyers", "/v1/experiments"] {
        for key in [&merchant, &viewer, &buyer] {
            assert_eq!(server.get(path, key).await.0, 403, "{path} for a merchant, viewer or buyer");
        }
        assert_eq!(server.get(path, &service).await.0, 200, "{path} for the service");
    }

    // A merchant's lists: its own and the admin's, nobody else's; an unknown merchant is 404.
    for list in ["skus", "campaigns", "warehouses"] {
        let path = format!("/v1/merchants/1/{list}");
        assert_eq!(server.get(&path, &merchant).await.0, 200, "{path}");
        assert_eq!(server.get(&path, &admin).await.0, 200, "{path}");
        for key in [&rival, &viewer, &buyer, &service] {
            assert_eq!(server.get(&path, key).await.0, 403, "{path} for another key");
        }
        assert_eq!(server.get(&format!("/v1/merchants/99/{list}"), &admin).await.0, 404);
    }
    assert_eq!(
        server.get("/v1/merchants/2/skus", &rival).await.1["items"],
        json!([]),
        "the rival sees none of merchant 1's SKUs"
    );

    // Pages: two, then the last one, with no cursor after it; a page size out of bounds names it.
    let (_, first) = server.get("/v1/merchants/1/skus?limit=2", &merchant).await;
    let prices = |page: &Value| {
        page["items"].as_array().unwrap().iter().map(|s| s["price"].as_u64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(prices(&first), skus[..2], "{first}");
    let after = first["next_after"].as_u64().expect("a cursor");
    let (_, last) = server.get(&format!("/v1/merchants/1/skus?limit=2&after={after}"), &merchant).await;
    assert_eq!((prices(&last), last["next_after"].clone()), (skus[2..].to_vec(), Value::Null), "{last}");
    for limit in [0, 101] {
        let (status, body) = server.get(&format!("/v1/merchants/1/skus?limit={limit}"), &merchant).await;
        assert_eq!(
            (status, body["code"].as_str(), body["details"]["field"].as_str()),
            (400, Some("out_of_bounds"), Some("limit")),
            "{body}"
        );
    }

    // The SKU edit: the owner and the admin, nobody else.
    let edit = json!({"price": 15_000});
    for (i, key) in [&rival, &viewer, &buyer, &service].into_iter().enumerate() {
        let (status, body) = server.patch("/v1/skus/1", key, &format!("edit-{i}"), edit.clone()).await;
        assert_eq!(status, 403, "another key edited the SKU: {body}");
    }
    let (status, body) = server.patch("/v1/skus/1", &merchant, "edit-empty", json!({})).await;
    assert_eq!((status, body["details"]["field"].as_str()), (400, Some("edit")), "{body}");
    let (status, body) = server.patch("/v1/skus/1", &merchant, "edit-price", edit.clone()).await;
    assert_eq!((status, body["price"].as_u64()), (200, Some(15_000)), "{body}");
    let (status, again) = server.patch("/v1/skus/1", &merchant, "edit-price", edit).await;
    assert_eq!(
        (status, again["price"].as_u64()),
        (200, Some(15_000)),
        "the same key answers the same: {again}"
    );
    let (_, edits) = server.get("/v1/events?types=sku.updated", &admin).await;
    assert_eq!(edits["events"].as_array().map(Vec::len), Some(1), "one edit: {edits}");

    // Under a running flash sale, the price may not drop below the flash price.
    let now = now_ms();
    let campaign = json!({"sku_id": 1, "flash_price": 9_000, "currency": "CNY", "quantity": 5, "per_buyer_limit": 1,
        "starts_at": now, "ends_at": now + 3_600_000});
    assert_eq!(server.post("/v1/campaigns", &merchant, "flash", campaign).await.0, 201);
    let (status, body) = server.patch("/v1/skus/1", &merchant, "edit-under", json!({"price": 8_999})).await;
    assert_eq!((status, body["details"]["field"].as_str()), (400, Some("price")), "{body}");
    let (_, campaigns) = server.get("/v1/merchants/1/campaigns", &merchant).await;
    assert_eq!(campaigns["items"][0]["campaign_id"], 1, "{campaigns}");

    // The wallet pages back through its entries with `before`.
    for i in 1..=3 {
        let order = json!({"buyer_id": 1, "lines": [{"sku_id": 2, "quantity": 1}]});
        let (status, placed) = server.post("/v1/orders", &service, &format!("o-{i}"), order).await;
        assert_eq!(status, 201, "{placed}");
        let id = placed["order_id"].as_u64().unwrap();
        assert_eq!(
            server.post(&format!("/v1/orders/{id}/pay"), &service, &format!("p-{i}"), json!({})).await.0,
            200
        );
    }
    let (_, wallet) = server.get("/v1/merchants/1/wallet?entries=2", &merchant).await;
    let account = &wallet["accounts"][0];
    assert_eq!(
        (account["entries_total"].as_u64(), account["entries"].as_array().map(Vec::len)),
        (Some(3), Some(2)),
        "{wallet}"
    );
    let before = account["next_before"].as_u64().expect("an older page");
    let (_, older) =
        server.get(&format!("/v1/merchants/1/wallet?entries=2&before={before}"), &merchant).await;
    let account = &older["accounts"][0];
    assert_eq!(
        (account["entries"].as_array().map(Vec::len), account["next_before"].clone()),
        (Some(1), Value::Null),
        "{older}"
    );
    assert_eq!(server.get("/v1/merchants/1/wallet", &rival).await.0, 403);
    server.audit().await;
}

/// Selects, in the form whose submit button says `submit`, the option of `name` whose text is
/// `text` (waiting for the form and its options to be drawn).
async fn choose(browser: &Browser, submit: &str, name: &str, text: &str) {
    browser
        .until(&format!(
            "const f = [...document.querySelectorAll('form')].find(f => f.querySelector('button[type=submit]').textContent === '{submit}');
             const s = f && f.querySelector('[name={name}]');
             const o = s && [...s.options].find(o => o.textContent === '{text}');
             return o && (s.value = o.value, true);"
        ))
        .await;
}

/// The catalogue as a merchant and an operator build it in the console: the operator's tree
/// (a department and an aisle under it), a product in the aisle with its attributes and options,
/// two variants from the store's SKUs (a third alike refused beside its field), the grid, and a
/// move; the pages measured at both sizes.
#[tokio::test]
async fn a_merchant_lists_a_product_with_its_variant_grid_in_the_operators_tree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let Some(browser) = Browser::start().await else { return };
    let (merchant, _) = server.marketplace(1, 1).await;
    let base = server.base.clone();
    browser.viewport(1440, 900).await;

    // The operator makes the tree.
    sign_in(&browser, &base, &server.admin).await;
    browser.goto(&format!("{base}/console#/categories")).await;
    browser.until(&submit_button_present("Create category")).await;
    browser.fill("form [name=name]", "Electronics").await;
    browser.run(&submit_button("Create category")).await;
    browser
        .until(
            "return [...document.querySelectorAll('main td')].some(td => td.textContent === 'Electronics')",
        )
        .await;
    browser.fill("form [name=name]", "Phones").await;
    choose(&browser, "Create category", "parent_id", "Electronics").await;
    browser.run(&submit_button("Create category")).await;
    browser
        .until("return [...document.querySelectorAll('main td')].some(td => td.textContent === 'Electronics › Phones')")
        .await;
    assert_eq!(server.get("/v1/categories/2", &merchant).await.1["path"], json!(["Electronics", "Phones"]));
    tour(&browser, &base, "operator", &["categories"]).await;

    // The merchant groups two SKUs into a product.
    let black = sku(&server, &merchant, 10, 399_900).await;
    let white = sku(&server, &merchant, 5, 459_900).await;
    sign_in(&browser, &base, &merchant).await;
    browser.goto(&format!("{base}/console#/products")).await;
    browser.until(&submit_button_present("Create product")).await;
    browser.fill("form [name=title]", "Phone X").await;
    choose(&browser, "Create product", "category_id", "Electronics › Phones").await;
    browser.fill("form [name=options]", "colour").await;
    browser.fill("form [name=attributes]", "brand: Elevens").await;
    browser.run(&submit_button("Create product")).await;
    browser
        .until("return [...document.querySelectorAll('main td a')].some(a => a.textContent === 'Phone X')")
        .await;
    let (_, product) = server.get("/v1/products/1", &merchant).await;
    assert_eq!(product["attributes"], json!([{"name": "brand", "value": "Elevens"}]), "{product}");
    assert_eq!(product["options"], json!(["colour"]));

    browser.goto(&format!("{base}/console#/products/1")).await;
    for (sku_id, colour) in [(black, "black"), (white, "black"), (white, "white")] {
        browser.until(&submit_button_present("Add variant")).await;
        browser
            .run(&format!(
                "document.querySelector('form [name=sku_id]').value = '{sku_id}'; document.querySelector('form [name=o0]').value = '{colour}';"
            ))
            .await;
        browser.run(&submit_button("Add variant")).await;
        if (sku_id, colour) == (white, "black") {
            let refused = browser.until(&field_error("Add variant", "o0")).await;
            assert!(refused.as_str().unwrap().contains("another variant has these values"), "{refused}");
        } else {
            browser
                .until(&format!("return [...document.querySelectorAll('main td')].some(td => td.textContent === '{colour}')"))
                .await;
        }
    }
    let (_, product) = server.get("/v1/products/1", &merchant).await;
    let grid: Vec<(u64, Value)> = product["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["sku_id"].as_u64().unwrap(), v["options"].clone()))
        .collect();
    assert_eq!(grid, [(black, json!(["black"])), (white, json!(["white"]))], "{product}");

    choose(&browser, "Move product", "category_id", "Electronics").await;
    browser.run(&submit_button("Move product")).await;
    browser.until("return document.querySelector('main .where')?.textContent === 'In Electronics.'").await;
    assert_eq!(server.get("/v1/products/1", &merchant).await.1["category_id"], 1);
    tour(&browser, &base, "merchant", &["products", "products/1"]).await;
    server.audit().await;
}

fn submit_button_present(label: &str) -> String {
    format!("return [...document.querySelectorAll('form button[type=submit]')].some(b => b.textContent === '{label}')")
}
