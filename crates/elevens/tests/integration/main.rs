//! Integration tests against the real `elevens` binary, over HTTP on loopback.

mod admission;
mod analytics;
mod bad_input;
#[cfg(feature = "bench")]
mod bench_smoke;
mod binary_batch;
mod browser;
mod checkout;
mod console;
mod crash;
mod demo;
mod events;
mod hardening;
mod harness;
mod lists;
mod logistics;
mod observability;
mod openapi;
mod oversell;
mod packaging;
mod position;
mod products;
mod promotions;
mod regressions;
mod replicated;
mod roles;
mod schemathesis;
mod walkthrough;
