//! The binary batch, `POST /v1/batch/binary`: the JSON batch's commands, and their outcomes, in
//! [postcard](https://postcard.jamesmunns.com/wire-format) (varint integers, length-prefixed
//! strings and lists, enums by variant index, struct fields in order with no names).
//!
//! For storefront backends that send thousands of commands a second: the JSON batch spends
//! most of its gateway time parsing field names and rendering views (RESULTS.md, "Where the
//! time goes"); here a command decodes with no allocation beyond its own strings, and a write
//! is answered with its [`Outcome`] (the order's id, total and expiry; a payment's total and
//! commission), not a rendered view — a `GET` shows the rest.
//!
//! Request body (`Content-Type: application/octet-stream`): a [`BinaryBatch`]. A 200 answer's
//! body: a [`BinaryAnswer`], one result per command, in order. A refusal of the whole request
//! (authentication, an undecodable body, too many commands, overload) is the usual JSON error.
//!
//! The variant order of [`BatchOp`], [`Outcome`] and the field order of every type here are
//! the wire format: new variants and types are appended, never inserted (a test pins the bytes).
//!
//! ## The layout, for a client in another language
//!
//! An unsigned integer is a LEB128 varint (a signed one zigzag-encoded first); a string or a
//! list is its length as a varint, then its bytes or items; an `Option` is a byte 0 (none) or 1
//! and the value; a `Result` is 0 (`Ok`) or 1 (`Err`) and the value; an enum is its variant's
//! index as a varint, then the variant's fields; a struct is its fields in order; a `bool` is a
//! byte. The request is `[commands: [idempotency_key, op]]`; the answer is `[results: [status,
//! outcome: Result<Outcome, {code, message, retry_after_ms: Option}>]]`.
//!
//! | `BatchOp` index | op | fields |
//! |---|---|---|
//! | 0 | create_buyer | name |
//! | 1 | create_sku | merchant_id, title, description, price, currency (a string: `"CNY"`), stock |
//! | 2 | restock | sku_id, quantity |
//! | 3 | top_up | buyer_id, amount, currency |
//! | 4 | create_campaign | sku_id, flash_price, currency, quantity, starts_at, ends_at, per_buyer_limit |
//! | 5 | place_order | buyer_id, lines: [sku_id, quantity], coupons: [coupon_id] |
//! | 6 | pay_order | order_id |
//! | 7 | cancel_order | order_id |
//! | 8 | refund_order | order_id, restock |
//! | 9 | claim_red_packet | red_packet_id, buyer_id |
//! | 10 | checkout | buyer_id, lines: [sku_id, quantity], coupons: [coupon_id] |
//!
//! The outcomes these commands answer with, by [`Outcome`] index: 3 buyer created (buyer), 4 SKU
//! created (sku, initial_stock), 5 restocked (sku, received), 6 topped up (transfer, balance,
//! signed), 7 campaign created (campaign), 8 order placed (order, total, expires_at), 9 order
//! paid (order, total, commission), 10 order cancelled (order), 11 order refunded (order,
//! amount, restocked), 17 red packet claimed (packet, amount, transfer), 41 checked out (first
//! order, orders, total).

use crate::batch::{ClaimParams, OrderParams, RefundParams, RestockParams, TopUpParams};
use crate::catalogue::CreateSkuRequest;
use crate::checkout::CheckoutRequest;
use crate::ledger::CreateBuyerRequest;
use crate::orders::PlaceOrderRequest;
use crate::promotions::CreateCampaignRequest;
use elevens_core::Outcome;
use serde::{Deserialize, Serialize};

/// The request: commands applied in order and made durable together.
#[derive(Debug, Serialize, Deserialize)]
pub struct BinaryBatch<'a> {
    #[serde(borrow)]
    pub commands: Vec<BinaryCommand<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BinaryCommand<'a> {
    /// The same rules as the `Idempotency-Key` header: 1 to 200 visible ASCII characters.
    pub idempotency_key: &'a str,
    pub op: BatchOp,
}

/// A batch command, with the fields of its single endpoint's body and the id that endpoint
/// takes from its path. The JSON batch's `op` names are these in snake case.
#[derive(Debug, Serialize, Deserialize)]
pub enum BatchOp {
    CreateBuyer(CreateBuyerRequest),
    CreateSku(CreateSkuRequest),
    Restock(RestockParams),
    TopUp(TopUpParams),
    CreateCampaign(CreateCampaignRequest),
    PlaceOrder(PlaceOrderRequest),
    PayOrder(OrderParams),
    CancelOrder(OrderParams),
    RefundOrder(RefundParams),
    ClaimRedPacket(ClaimParams),
    Checkout(CheckoutRequest),
}

/// The answer: one result per command, in the request's order.
#[derive(Debug, Serialize, Deserialize)]
pub struct BinaryAnswer {
    pub results: Vec<BinaryResult>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BinaryResult {
    /// The HTTP status the single endpoint would have answered.
    pub status: u16,
    pub outcome: Result<Outcome, BinaryError>,
}

/// A refused command: the JSON error's stable `code`, its `message`, and for a 429 or 503 when
/// to come back.
#[derive(Debug, Serialize, Deserialize)]
pub struct BinaryError {
    pub code: String,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::LineRequestBody;
    use elevens_core::{Amount, Millis, OrderId};

    /// The bytes a client written against this format sends and reads. If this test fails, the
    /// wire format changed: append variants and fields, never reorder them.
    #[test]
    fn the_wire_format_is_pinned() {
        let batch = BinaryBatch {
            commands: vec![
                BinaryCommand {
                    idempotency_key: "k1",
                    op: BatchOp::PlaceOrder(PlaceOrderRequest {
                        buyer_id: 7,
                        lines: vec![LineRequestBody { sku_id: 300, quantity: 2 }],
                        coupons: vec![],
                    }),
                },
                BinaryCommand { idempotency_key: "k2", op: BatchOp::PayOrder(OrderParams { order_id: 1 }) },
            ],
        };
        let bytes = postcard::to_allocvec(&batch).unwrap();
        #[rustfmt::skip]
        let expected = [
            2, // two commands
            2, b'k', b'1', 5, 7, 1, 0xac, 0x02, 2, 0, // place_order: buyer 7, [(sku 300, 2)], no coupons
            2, b'k', b'2', 6, 1, // pay_order 1
        ];
        assert_eq!(bytes, expected);
        let back: BinaryBatch = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.commands[1].idempotency_key, "k2");

        let answer = BinaryAnswer {
            results: vec![
                BinaryResult {
                    status: 201,
                    outcome: Ok(Outcome::OrderPlaced {
                        order: OrderId(1),
                        total: Amount(500),
                        expires_at: Millis(1_000),
                    }),
                },
                BinaryResult {
                    status: 409,
                    outcome: Err(BinaryError {
                        code: "insufficient_stock".into(),
                        message: String::new(),
                        retry_after_ms: None,
                    }),
                },
            ],
        };
        let bytes = postcard::to_allocvec(&answer).unwrap();
        #[rustfmt::skip]
        let mut expected = vec![
            2,
            0xc9, 0x01, 0, 8, 1, 0xf4, 0x03, 0xe8, 0x07, // 201, Ok, OrderPlaced { 1, 500, 1000 }
            0x99, 0x03, 1, 18, // 409, Err, code of 18 bytes
        ];
        expected.extend_from_slice(b"insufficient_stock");
        expected.extend_from_slice(&[0, 0]); // empty message, no retry_after_ms
        assert_eq!(bytes, expected);
        let back: BinaryAnswer = postcard::from_bytes(&bytes).unwrap();
        assert!(matches!(back.results[0].outcome, Ok(Outcome::OrderPlaced { order: OrderId(1), .. })));
    }

    /// The indices the module's table documents for clients in other languages.
    #[test]
    fn the_documented_variant_indices_are_the_encoded_ones() {
        use elevens_core::{BuyerId, RedPacketId, SkuId, TransferId};
        let index = |bytes: Vec<u8>| bytes[0];
        let op = |op: &BatchOp| index(postcard::to_allocvec(op).unwrap());
        assert_eq!(op(&BatchOp::CreateBuyer(CreateBuyerRequest { name: "b".into() })), 0);
        assert_eq!(op(&BatchOp::Restock(RestockParams { sku_id: 1, quantity: 1 })), 2);
        assert_eq!(op(&BatchOp::PayOrder(OrderParams { order_id: 1 })), 6);
        assert_eq!(op(&BatchOp::CancelOrder(OrderParams { order_id: 1 })), 7);
        assert_eq!(op(&BatchOp::RefundOrder(RefundParams { order_id: 1, restock: true })), 8);
        assert_eq!(op(&BatchOp::ClaimRedPacket(ClaimParams { red_packet_id: 1, buyer_id: 1 })), 9);
        let outcome = |o: &Outcome| index(postcard::to_allocvec(o).unwrap());
        assert_eq!(outcome(&Outcome::BuyerCreated { buyer: BuyerId(1) }), 3);
        assert_eq!(outcome(&Outcome::SkuCreated { sku: SkuId(1), initial_stock: 1 }), 4);
        assert_eq!(outcome(&Outcome::ToppedUp { transfer: TransferId(1), balance: -1 }), 6);
        assert_eq!(
            outcome(&Outcome::OrderPaid { order: OrderId(1), total: Amount(1), commission: Amount(0) }),
            9
        );
        assert_eq!(outcome(&Outcome::OrderCancelled { order: OrderId(1) }), 10);
        let claimed =
            Outcome::RedPacketClaimed { packet: RedPacketId(1), amount: Amount(1), transfer: TransferId(1) };
        assert_eq!(outcome(&claimed), 17);
    }
}
