//! The OpenAPI document: what `#[utoipa::path]` declares, completed with what holds for whole
//! classes of operations, so no handler can forget it:
//!
//! - every `{placeholder}` of a path is a declared, required path parameter (ids are integers
//!   from 1, a waiting-room ticket is 16 hex digits);
//! - every write that takes an `Idempotency-Key` declares it, required, with its bounds;
//! - every operation behind the API key may answer 401, and every operation may answer 429 or
//!   503 with `Retry-After` (admission control, the gateway's bounds, the sequencer's queue);
//! - the routes that need no key (`/healthz`, the document itself) say so.
//!
//! The integration test `openapi` checks the document against the router and the declared
//! keys against the handlers; CI validates it and runs schemathesis against a real server.

use serde_json::{json, Value};

/// Writes that take no `Idempotency-Key` header: the batches carry one per command, the others
/// change no journaled state (a waiting-room ticket, admission rules, storefront views).
pub const KEYLESS_WRITES: &[(&str, &str)] = &[
    ("post", "/v1/batch"),
    ("post", "/v1/batch/binary"),
    ("post", "/v1/waiting-room"),
    ("put", "/v1/admission/rules"),
    ("post", "/v1/events/views"),
];

/// Routes any client may call without a key.
pub const OPEN_ROUTES: &[&str] = &[
    "/healthz",
    "/v1/cluster",
    "/v1/openapi.json",
    "/metrics",
    "/",
    "/screen",
    "/screen/uplot.js",
    "/screen/uplot.css",
    "/screen/screen.js",
    "/screen/screen.css",
    "/console",
    "/console/app.js",
    "/console/zh.js",
    "/console/console.css",
];

/// The document served at `/v1/openapi.json`.
pub fn document(generated: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(generated).unwrap_or_else(|_| json!({}));
    complete(&mut doc);
    doc
}

fn complete(doc: &mut Value) {
    unsigned_formats(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    // The routes served beside the `#[utoipa::path]` handlers (`crate::router`).
    let text = |media: &str| json!({"content": {media: {"schema": {"type": "string"}}}});
    let error = json!({"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    for (path, id, summary, ok) in [
        ("/v1/openapi.json", "openapi", "This document.", json!({"content": {"application/json": {"schema": {"type": "object"}}}})),
        ("/metrics", "metrics", "Prometheus text: the engine's and admission's counters (no key: keep it on an internal network).", text("text/plain")),
        ("/", "screen_root", "The big screen's page (its feed needs a key).", text("text/html")),
        ("/screen", "screen", "The big screen's page (its feed needs a key).", text("text/html")),
        ("/screen/uplot.js", "screen_uplot_js", "uPlot, the big screen's charting library (MIT), embedded in the binary.", text("text/javascript")),
        ("/screen/uplot.css", "screen_uplot_css", "uPlot's style sheet.", text("text/css")),
        ("/screen/screen.js", "screen_js", "The big screen's script, embedded in the binary.", text("text/javascript")),
        ("/screen/screen.css", "screen_css", "The big screen's style sheet.", text("text/css")),
        ("/console", "console", "The console for merchants and operators (it signs in with an API key).", text("text/html")),
        ("/console/app.js", "console_js", "The console's script, embedded in the binary.", text("text/javascript")),
        ("/console/zh.js", "console_zh_js", "The console's words in Simplified Chinese, embedded in the binary.", text("text/javascript")),
        ("/console/console.css", "console_css", "The console's style sheet.", text("text/css")),
        ("/v1/live", "live", "The big screen's feed: a frame of live figures every second, as server-sent events (admin, service or viewer; the key may come as `?key=`, for EventSource).", text("text/event-stream")),
    ] {
        let mut ok = ok;
        ok["description"] = json!(summary);
        let mut operation = json!({"tags": ["ops"], "summary": summary, "operationId": id, "responses": {"200": ok, "4XX": error.clone()}});
        if path == "/v1/live" {
            operation["parameters"] = json!([{"name": "key", "in": "query", "required": false, "schema": {"type": "string"}}]);
        }
        paths.insert(path.into(), json!({ "get": operation }));
    }
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            complete_operation(path, method, operation);
        }
    }
    // The timeline answers an array of seconds (its element type lives in the analytics crate).
    if let Some(ok) =
        doc.pointer_mut("/paths/~1v1~1analytics~1timeline/get/responses/200/content/application~1json")
    {
        ok["schema"] = json!({"type": "array", "items": {"type": "object"}});
    }
    let components = doc.as_object_mut().map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components {
        let responses = components.as_object_mut().map(|c| c.entry("responses").or_insert_with(|| json!({})));
        if let Some(Value::Object(responses)) = responses {
            for (name, description) in [
                ("Unauthorized", "No API key, or an unknown or revoked one."),
                ("TooManyRequests", "Shed by admission control: come back after `Retry-After` seconds."),
                ("Unavailable", "The server is at a bound (connections, the sequencer's queue) or stopping: come back after `Retry-After` seconds."),
            ] {
                responses.insert(name.into(), error_response(description, name != "Unauthorized"));
            }
        }
    }
}

fn error_response(description: &str, retry_after: bool) -> Value {
    let mut response = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    if retry_after {
        response["headers"] = json!({"Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1}
        }});
    }
    response
}

fn complete_operation(path: &str, method: &str, operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else { return };
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    let Some(parameters) = parameters.as_array_mut() else { return };
    for name in placeholders(path) {
        let declared = parameters.iter().any(|p| p["name"] == name && p["in"] == "path");
        if !declared {
            let schema = if name == "ticket" {
                json!({"type": "string", "pattern": "^[0-9a-fA-F]{16}$"})
            } else {
                json!({"type": "integer", "format": "uint64", "minimum": 1, "maximum": u64::MAX})
            };
            parameters.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    let write = matches!(method, "post" | "put" | "delete" | "patch");
    if write && !KEYLESS_WRITES.contains(&(method, path)) {
        parameters.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": true,
            "description": "Sent again with the same request, it returns the first answer and changes nothing; \
                with another request, it is refused (409 idempotency_key_reused).",
            "schema": {"type": "string", "minLength": 1, "maxLength": crate::api::IDEMPOTENCY_KEY_BYTES_MAX, "pattern": "^[!-~]+$"}
        }));
    }
    if parameters.is_empty() {
        operation.remove("parameters");
    }
    let open = OPEN_ROUTES.contains(&path);
    if open {
        operation.insert("security".into(), json!([]));
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    if let Some(responses) = responses.as_object_mut() {
        if !open {
            responses.entry("401").or_insert_with(|| json!({"$ref": "#/components/responses/Unauthorized"}));
        }
        responses.entry("429").or_insert_with(|| json!({"$ref": "#/components/responses/TooManyRequests"}));
        responses.entry("503").or_insert_with(|| json!({"$ref": "#/components/responses/Unavailable"}));
    }
}

/// utoipa writes Rust's unsigned integers as `int64`/`int32`/... with `minimum: 0`; the server
/// takes the whole unsigned range (an id past 2^63 is a valid id that does not exist). Said so,
/// with its maximum, a generated client and a fuzzer see the range the server parses.
fn unsigned_formats(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let unsigned = object.get("minimum").and_then(Value::as_f64).is_some_and(|min| min >= 0.0);
            let max = match object.get("format").and_then(Value::as_str) {
                Some("int64") => Some(("uint64", u64::MAX)),
                Some("int32") => Some(("uint32", u64::from(u32::MAX))),
                Some("int16") => Some(("uint16", u64::from(u16::MAX))),
                Some("int8") => Some(("uint8", u64::from(u8::MAX))),
                _ => None,
            };
            if let (true, Some((format, max))) = (unsigned, max) {
                object.insert("format".into(), json!(format));
                object.entry("maximum").or_insert(json!(max));
            }
            object.values_mut().for_each(unsigned_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_formats),
        _ => {}
    }
}

/// The `{name}`s of a path template.
fn placeholders(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schemas' bounds are literals (utoipa takes no constants): they must say what the
    /// state machine enforces.
    #[test]
    fn the_documented_bounds_are_the_cores() {
        use elevens_core::limits::*;
        let doc = document(&crate::routes::routes().split_for_parts().1);
        let field = |schema: &str, field: &str, bound: &str| {
            doc["components"]["schemas"][schema]["properties"][field][bound].as_u64()
        };
        assert_eq!(field("TopUpRequest", "amount", "maximum"), Some(TOP_UP_AMOUNT_MAX));
        assert_eq!(field("CreateSkuRequest", "price", "maximum"), Some(AMOUNT_MAX));
        assert_eq!(field("CreateSkuRequest", "stock", "maximum"), Some(STOCK_QUANTITY_MAX));
        assert_eq!(field("RestockRequest", "quantity", "maximum"), Some(STOCK_QUANTITY_MAX));
        assert_eq!(field("NewCampaignRequest", "flash_price", "maximum"), Some(AMOUNT_MAX));
        assert_eq!(field("UpdateCampaignRequest", "flash_price", "maximum"), Some(AMOUNT_MAX));
        assert_eq!(field("UpdateCampaignRequest", "quantity", "maximum"), Some(STOCK_QUANTITY_MAX));
        assert_eq!(field("CreateRedPacketRequest", "amount", "maximum"), Some(AMOUNT_MAX));
        assert_eq!(
            field("CreateRedPacketRequest", "count", "maximum"),
            Some(u64::from(RED_PACKET_SHARES_MAX))
        );
        assert_eq!(field("LineRequestBody", "quantity", "maximum"), Some(u64::from(LINE_QUANTITY_MAX)));
        for schema in ["CreateMerchantRequest", "CreateBuyerRequest"] {
            assert_eq!(field(schema, "name", "maxLength"), Some(NAME_BYTES_MAX as u64), "{schema}");
        }
        assert_eq!(field("CreateSkuRequest", "title", "maxLength"), Some(NAME_BYTES_MAX as u64));
    }

    #[test]
    fn every_placeholder_becomes_a_path_parameter_and_writes_declare_their_key() {
        let mut doc = json!({"paths": {
            "/v1/orders/{id}/pay": {"post": {"responses": {"200": {"description": "ok"}}}},
            "/v1/batch": {"post": {"parameters": [{"name": "Batch-Class", "in": "header"}], "responses": {}}},
            "/healthz": {"get": {"responses": {}}}
        }});
        complete(&mut doc);
        let pay = &doc["paths"]["/v1/orders/{id}/pay"]["post"];
        let names: Vec<&str> =
            pay["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["id", "Idempotency-Key"]);
        assert_eq!(pay["parameters"][0]["required"], true);
        for status in ["401", "429", "503"] {
            assert!(pay["responses"][status].is_object(), "{status}");
        }
        let batch = &doc["paths"]["/v1/batch"]["post"];
        assert_eq!(batch["parameters"].as_array().unwrap().len(), 1, "batches carry their keys per command");
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
        assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
        assert!(doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object());
    }
}
