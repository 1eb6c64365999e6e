//! Fuzzing every decoder that takes bytes from outside or from disk, as property tests: journal
//! segments, snapshots, journal records (envelopes), the binary batch, and HTTP requests (path,
//! query string, headers, JSON bodies) through the real router and engine. Inputs are mutations
//! (bit flips, cuts, splices, repeats, random bytes) of valid ones built here and of the
//! committed corpus (`tests/corpus/`). The properties: nothing panics; the disk decoders refuse
//! or accept, never invent; no HTTP answer is a 5xx, and every refusal is JSON with a code.
//!
//! CI runs a bounded number of cases per target; `PROPTEST_CASES=100000 cargo test --release -p
//! elevens-http --test fuzz` runs long.

use axum::body::Body;
use axum::http::Request;
use elevens_core::*;
use elevens_http::api::AppState;
use elevens_http::config::Config;
use elevens_http::engine::Engine;
use elevens_http::gate::Gate;
use elevens_http::seam::Commands;
use elevens_journal::{Journal, JournalOptions};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

/// A small, valid world as commands: what the decoders' valid inputs are made of.
fn commands() -> Vec<(Actor, Command)> {
    let mut commands = vec![
        (Actor::Admin, Command::CreateMerchant { name: "m".into(), commission_bps: 200 }),
        (Actor::Admin, Command::CreateBuyer { name: "b".into() }),
        (
            Actor::Admin,
            Command::CreateSku(Box::new(NewSku {
                merchant: MerchantId(1),
                title: "phone".into(),
                description: "a phone".into(),
                price: Amount(1_000),
                currency: cny(),
                initial_stock: 10,
                warehouse: None,
            })),
        ),
        (Actor::Service, Command::TopUp { buyer: BuyerId(1), amount: Amount(100_000), currency: cny() }),
    ];
    for _ in 0..3 {
        let lines = vec![LineRequest { sku: SkuId(1), quantity: 1 }];
        commands.push((
            Actor::Buyer(BuyerId(1)),
            Command::PlaceOrder { buyer: BuyerId(1), lines, coupons: vec![], reservation_ttl_ms: 60_000 },
        ));
    }
    commands.push((Actor::Buyer(BuyerId(1)), Command::PayOrder { order: OrderId(1) }));
    commands
}

fn envelopes() -> Vec<Envelope> {
    commands()
        .into_iter()
        .enumerate()
        .map(|(i, (actor, command))| Envelope {
            actor,
            idempotency: Some(Idempotency { key: i as u128 + 1, fingerprint: i as u64 }),
            at: Millis(1_800_000_000_000 + i as u64),
            command,
        })
        .collect()
}

/// A valid journal segment holding the world, in batches of three.
fn segment() -> &'static [u8] {
    static SEGMENT: OnceLock<Vec<u8>> = OnceLock::new();
    SEGMENT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) =
            Journal::open(dir.path(), JournalOptions::default(), 0, |_, _| Ok(())).unwrap();
        let records: Vec<Vec<u8>> = envelopes().iter().map(|e| postcard::to_stdvec(e).unwrap()).collect();
        for batch in records.chunks(3) {
            journal.append_batch(batch.iter().map(Vec::as_slice)).unwrap();
        }
        std::fs::read(dir.path().join(format!("{:020}.journal", 1))).unwrap()
    })
}

fn snapshot() -> &'static [u8] {
    static SNAPSHOT: OnceLock<Vec<u8>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut state = State::new();
        for envelope in envelopes() {
            state.apply(&envelope).unwrap();
        }
        state.encode()
    })
}

/// Mutations of a valid input: what a damaged disk or a hostile client sends.
fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let flips =
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8).prop_map(move |flips| {
            let mut bytes = base.to_vec();
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            bytes
        });
    let cut = any::<prop::sample::Index>().prop_map(move |at| base[..at.index(base.len() + 1)].to_vec());
    let splice = (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(
        move |(at, junk)| {
            let i = at.index(base.len() + 1);
            [&base[..i], &junk[..], &base[i..]].concat()
        },
    );
    let doubled = Just(()).prop_map(move |()| [base, base].concat());
    prop_oneof![4 => flips, 2 => cut, 2 => splice, 1 => doubled, 1 => prop::collection::vec(any::<u8>(), 0..512)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// A damaged segment is cut (torn tail) or refused by name; what is replayed decodes.
    #[test]
    fn fuzz_journal_segment(bytes in mutated(segment())) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{:020}.journal", 1)), &bytes).unwrap();
        let mut replayed = 0u64;
        let opened = Journal::open(dir.path(), JournalOptions::default(), 0, |seq, payload| {
            replayed += 1;
            if seq != replayed {
                return Err(format!("record {seq} handed on as the {replayed}th"));
            }
            postcard::from_bytes::<Envelope>(payload).map(drop).map_err(|e| e.to_string())
        });
        if let Ok((_, recovered)) = opened {
            prop_assert_eq!(recovered.last_seq, replayed);
            prop_assert!(replayed <= envelopes().len() as u64 * 2);
        }
    }

    /// A damaged snapshot is refused, or decodes to a state whose audit runs.
    #[test]
    fn fuzz_snapshot(bytes in mutated(snapshot())) {
        if let Ok(state) = State::decode(&bytes) {
            let _ = state.audit();
            let _ = state.digest();
        }
    }

    /// Any record payload that decodes is a command the state machine answers without panicking.
    #[test]
    fn fuzz_record(index in 0usize..9, flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4)) {
        let envelopes = envelopes();
        let mut bytes = postcard::to_stdvec(&envelopes[index % envelopes.len()]).unwrap();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        if let Ok(envelope) = postcard::from_bytes::<Envelope>(&bytes) {
            let mut state = State::new();
            for e in &envelopes[..4] {
                state.apply(e).unwrap();
            }
            let before = state.digest();
            match state.apply(&envelope) {
                Ok(Applied::Changed(_)) => prop_assert!(state.audit().ok()),
                _ => prop_assert_eq!(state.digest(), before),
            }
        }
    }
}

/// One engine and router for every HTTP case (a fresh data directory, kept for the process).
fn app() -> &'static (tokio::runtime::Runtime, axum::Router, String) {
    static APP: OnceLock<(tokio::runtime::Runtime, axum::Router, String)> = OnceLock::new();
    APP.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let config = Config::new(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
        let (engine, _) = Engine::start(&config).unwrap();
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let secret = "ek_fuzz_admin".to_owned();
        let handle = engine.handle.clone();
        let item = elevens_http::engine::Item::Write {
            actor: Actor::Admin,
            idempotency: None,
            command: Command::CreateApiKey {
                acts_as: Actor::Admin,
                secret_sha256: elevens_http::auth::hash_secret(&secret),
            },
            reply: elevens_http::engine::ReplyWith::Outcome,
        };
        let rx = handle.submit(vec![item]).map_err(|_| "overloaded").unwrap();
        runtime.block_on(rx).unwrap();
        std::mem::forget(engine); // lives as long as the test process
        let gate = Arc::new(Gate::new(config.admission.clone()));
        let webhooks = runtime
            .block_on(async {
                elevens_http::webhooks::Webhooks::start(
                    &config.data_dir,
                    handle.feed.clone(),
                    Default::default(),
                )
            })
            .unwrap();
        let app = AppState {
            commands: Arc::new(handle.clone()),
            engine: handle,
            config: Arc::new(config),
            metrics: None,
            gate,
            webhooks,
            screen: Arc::new(elevens_http::live::Screen::new(elevens_http::engine::now_ms())),
        };
        let router = elevens_http::router(app);
        let setup = runtime.block_on(async {
            let mut out = Vec::new();
            for (path, body) in [
                ("/v1/merchants", r#"{"name": "m"}"#),
                ("/v1/buyers", r#"{"name": "b"}"#),
                (
                    "/v1/skus",
                    r#"{"merchant_id": 1, "title": "phone", "price": 1000, "currency": "CNY", "stock": 5}"#,
                ),
            ] {
                let response =
                    router.clone().oneshot(request("POST", path, body, &secret, path)).await.unwrap();
                out.push(response.status().as_u16());
            }
            out
        });
        assert!(setup.iter().all(|&s| s == 201), "{setup:?}");
        (runtime, router, secret)
    })
}

fn request(method: &str, uri: &str, body: &str, key: &str, idem: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("idempotency-key", idem)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap_or_else(|_| Request::new(Body::empty()))
}

/// The committed HTTP corpus: (method, path and query, body).
fn corpus() -> &'static [(String, String, String)] {
    static CORPUS: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/http");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        entries
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
                let (method, uri) = head.trim().split_once(' ').unwrap();
                (method.to_owned(), uri.to_owned(), body.to_owned())
            })
            .collect()
    })
}

const PATHS: &[&str] = &[
    "/v1/merchants",
    "/v1/buyers",
    "/v1/skus",
    "/v1/orders",
    "/v1/campaigns",
    "/v1/coupons",
    "/v1/red-packets",
    "/v1/batch",
    "/v1/waiting-room",
    "/v1/experiments",
    "/v1/buyers/1/top-ups",
    "/v1/orders/1/pay",
    "/v1/orders/1/refund",
    "/v1/skus/1/restock",
    "/v1/search",
    "/v1/buyers/1/wallet",
    "/v1/admission/rules",
    "/v1/analytics/timeline",
    "/v1/experiments/1/variant",
    "/v1/api-keys",
    "/v1/red-packets/1/claims",
];

fn http_case() -> impl Strategy<Value = (String, String, Vec<u8>)> {
    let from_corpus = (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
    )
        .prop_map(|(pick, flips)| {
            let (method, uri, body) = &corpus()[pick.index(corpus().len())];
            let mut body = body.clone().into_bytes();
            for (at, mask) in flips {
                if !body.is_empty() {
                    let i = at.index(body.len());
                    body[i] ^= mask;
                }
            }
            (method.clone(), uri.clone(), body)
        });
    let generated = (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        prop::sample::select(PATHS.to_vec()),
        "[a-z_]{0,12}=[-0-9a-zA-Z:*%._]{0,24}",
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(method, path, query, body)| (method.to_owned(), format!("{path}?{query}"), body));
    prop_oneof![3 => from_corpus, 2 => generated]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// No request gets a 5xx, and every refusal is JSON with a code and a message.
    #[test]
    fn fuzz_http((method, uri, body) in http_case(), n in any::<u64>()) {
        let (runtime, router, key) = app();
        let request = Request::builder()
            .method(method.as_str())
            .uri(uri.as_str())
            .header("authorization", format!("Bearer {key}"))
            .header("idempotency-key", format!("fuzz-{n}"))
            .header("content-type", "application/json")
            .body(Body::from(body));
        let Ok(request) = request else { return Ok(()) }; // not a request hyper would parse
        let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
        let status = response.status().as_u16();
        let bytes = runtime.block_on(axum::body::to_bytes(response.into_body(), 1 << 24)).unwrap();
        prop_assert!(status < 500, "{method} {uri}: {status} {}", String::from_utf8_lossy(&bytes));
        if status >= 400 {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            prop_assert!(json["code"].is_string() && json["message"].is_string(), "{method} {uri}: {status} {json}");
        }
    }

    /// The binary batch's decoder refuses or accepts whatever bytes come; the endpoint answers
    /// them without a 5xx.
    #[test]
    fn fuzz_binary_batch(bytes in mutated(binary_batch())) {
        let _ = postcard::from_bytes::<elevens_http::wire::BinaryBatch>(&bytes);
        let (runtime, router, key) = app();
        let request = Request::builder()
            .method("POST")
            .uri("/v1/batch/binary")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(bytes))
            .unwrap();
        let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
        prop_assert!(response.status().as_u16() < 500);
    }
}

fn binary_batch() -> &'static [u8] {
    static BATCH: OnceLock<Vec<u8>> = OnceLock::new();
    BATCH.get_or_init(|| {
        use elevens_http::batch::OrderParams;
        use elevens_http::orders::{LineRequestBody, PlaceOrderRequest};
        use elevens_http::wire::{BatchOp, BinaryBatch, BinaryCommand};
        let batch = BinaryBatch {
            commands: vec![
                BinaryCommand {
                    idempotency_key: "b1",
                    op: BatchOp::PlaceOrder(PlaceOrderRequest {
                        buyer_id: 1,
                        lines: vec![LineRequestBody { sku_id: 1, quantity: 1 }],
                        coupons: vec![],
                    }),
                },
                BinaryCommand { idempotency_key: "b2", op: BatchOp::PayOrder(OrderParams { order_id: 1 }) },
            ],
        };
        postcard::to_allocvec(&batch).unwrap()
    })
}
