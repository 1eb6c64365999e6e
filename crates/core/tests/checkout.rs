//! Checkout against a model: random carts and checkouts over three stores (stock that runs out,
//! a flash sale with a per-buyer limit, a store coupon, the platform's cross-store discount
//! with a cap and a budget, wallets that run short), and refunds of single units and of whole
//! orders after. A checkout is all or none: accepted, it placed one paid order per store in
//! it, priced as the model prices it, the cross-store discount apportioned to the fen, and
//! moved exactly their sum out of the wallet; refused, the state's digest is what it was.
//! Money is conserved and the audit (refunds within what was paid, budgets) holds after
//! every step.

use elevens_core::*;
use proptest::prelude::*;

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

const T0: u64 = 1_800_000_000_000;
const SKUS: u64 = 6;

/// SKU `s` belongs to store `1 + (s - 1) % 3`, costs `1_000 * s`, starts with `3 + s` units.
fn store_of(sku: u64) -> u64 {
    1 + (sku - 1) % 3
}

fn world() -> State {
    let mut state = State::new();
    let mut run = |actor, command| {
        let envelope = Envelope { actor, idempotency: None, at: Millis(T0), command };
        state.apply(&envelope).unwrap_or_else(|e| panic!("setting up: {e}"));
    };
    for m in 1..=3 {
        run(
            Actor::Admin,
            Command::CreateMerchant { name: format!("store {m}"), commission_bps: 300 * m as u16 },
        );
    }
    for b in 1..=3u64 {
        run(Actor::Admin, Command::CreateBuyer { name: format!("buyer {b}") });
        let amount = Amount(15_000 * b * b);
        run(Actor::Service, Command::TopUp { buyer: BuyerId(b), amount, currency: cny() });
    }
    for s in 1..=SKUS {
        let sku = NewSku {
            merchant: MerchantId(store_of(s)),
            title: format!("sku {s}"),
            description: String::new(),
            price: Amount(1_000 * s),
            currency: cny(),
            initial_stock: 3 + s,
            warehouse: None,
        };
        run(Actor::Admin, Command::CreateSku(Box::new(sku)));
    }
    // SKU 1 is on a flash sale: 400 a unit, 5 units, 2 per buyer.
    let campaign = NewCampaign {
        sku: SkuId(1),
        flash_price: Amount(400),
        currency: cny(),
        quantity: 5,
        starts_at: Millis(T0),
        ends_at: Millis(T0 + 3_600_000),
        per_buyer_limit: 2,
    };
    run(Actor::Admin, Command::CreateCampaign(campaign));
    // Store 2's coupon: 500 off a spend of 2,000, three uses.
    let coupon = NewCoupon {
        sponsor: Sponsor::Merchant(MerchantId(2)),
        rule: DiscountRule::Fixed { amount: Amount(500) },
        currency: cny(),
        min_spend: Amount(2_000),
        starts_at: Millis(T0),
        ends_at: Millis(T0 + 3_600_000),
        per_buyer_limit: 1,
        budget_amount: None,
        budget_uses: Some(3),
    };
    run(Actor::Admin, Command::CreateCoupon(Box::new(coupon)));
    // The platform's cross-store discount: 300 off every 5,000 across stores, at most 900 a
    // checkout, 5,000 in all.
    let cross = NewCoupon {
        sponsor: Sponsor::Platform,
        rule: DiscountRule::CrossStore {
            every: Amount(5_000),
            off: Amount(300),
            cap: Some(Amount(900)),
            merchants_fund: false,
        },
        currency: cny(),
        min_spend: Amount(0),
        starts_at: Millis(T0),
        ends_at: Millis(T0 + 3_600_000),
        per_buyer_limit: 1_000,
        budget_amount: Some(Amount(5_000)),
        budget_uses: None,
    };
    run(Actor::Admin, Command::CreateCoupon(Box::new(cross)));
    state
}

const CROSS_STORE: CouponId = CouponId(2);

#[derive(Clone, Debug)]
enum Step {
    Cart {
        buyer: u64,
        sku: u64,
        quantity: u32,
    },
    /// From the cart (`lines` empty) or these lines.
    Checkout {
        buyer: u64,
        lines: Vec<(u64, u32)>,
        coupon: bool,
        cross: bool,
    },
    /// The operator refunds one unit of an order's first line, or the rest of the order.
    Refund {
        pick: usize,
        unit: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let line = (1..=SKUS, 1u32..=3);
    prop_oneof![
        3 => (1u64..=3, 1..=SKUS, 0u32..=3).prop_map(|(buyer, sku, quantity)| Step::Cart { buyer, sku, quantity }),
        2 => (1u64..=3, proptest::collection::vec(line, 0..4), any::<bool>(), any::<bool>())
            .prop_map(|(buyer, lines, coupon, cross)| Step::Checkout { buyer, lines, coupon, cross }),
        1 => (0usize..64, any::<bool>()).prop_map(|(pick, unit)| Step::Refund { pick, unit }),
    ]
}

/// What the model says an accepted checkout moves: each store's lines at their price (the flash
/// price for SKU 1), less store 2's coupon where it applies, summed over the stores.
fn model_total(lines: &[(u64, u32)], coupon: bool) -> u64 {
    let mut by_store = [0u64; 4];
    for &(sku, quantity) in lines {
        let unit = if sku == 1 { 400 } else { 1_000 * sku };
        by_store[store_of(sku) as usize] += unit * u64::from(quantity);
    }
    if coupon && by_store[2] >= 2_000 {
        by_store[2] -= 500;
    }
    by_store.iter().sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_checkout_places_and_pays_every_stores_order_or_changes_nothing(steps in proptest::collection::vec(step(), 1..40)) {
        let mut state = world();
        let external_before = state.ledger().balance(Owner::External, cny());
        for (i, step) in steps.into_iter().enumerate() {
            let at = Millis(T0 + 1_000 + i as u64);
            let (buyer, command, expected) = match &step {
                Step::Cart { buyer, sku, quantity } => {
                    let command = Command::SetCartLine { buyer: BuyerId(*buyer), sku: SkuId(*sku), quantity: *quantity };
                    (*buyer, command, None)
                }
                Step::Refund { pick, unit } => {
                    let orders = state.orders().len() as u64;
                    if orders == 0 {
                        continue;
                    }
                    let order = OrderId(1 + *pick as u64 % orders);
                    let o = state.order(order).unwrap();
                    let command = if *unit {
                        let lines = vec![LineRequest { sku: o.lines[0].sku, quantity: 1 }];
                        Command::RefundLines { order, lines, shipping: Amount::ZERO, restock: true }
                    } else {
                        Command::RefundOrder { order, restock: false }
                    };
                    let envelope = Envelope { actor: Actor::Admin, idempotency: None, at, command };
                    let before = state.digest();
                    if state.apply(&envelope).is_err() {
                        prop_assert_eq!(state.digest(), before, "a refused refund changed the state");
                    }
                    let report = state.audit();
                    prop_assert!(report.checks.iter().all(|c| c.ok), "{:?}", report.checks.iter().find(|c| !c.ok));
                    continue;
                }
                Step::Checkout { buyer, lines, coupon, cross } => {
                    let lines: Vec<(u64, u32)> = if lines.is_empty() {
                        state.cart(BuyerId(*buyer), at).iter().map(|l| (l.sku.0, l.quantity)).collect()
                    } else {
                        lines.clone()
                    };
                    let has_store_2 = lines.iter().any(|&(s, _)| store_of(s) == 2);
                    let mut coupons = if *coupon && has_store_2 { vec![CouponId(1)] } else { vec![] };
                    let spend = model_total(&lines, !coupons.is_empty());
                    // The cross-store discount: 300 per 5,000, at most 900, within what is left.
                    let left = 5_000 - state.coupon(CROSS_STORE).unwrap().used_amount.0;
                    let off = if *cross { (spend / 5_000 * 300).min(900).min(left) } else { 0 };
                    if *cross {
                        coupons.push(CROSS_STORE);
                    }
                    let expected = (spend - off, off);
                    let requested = match &step {
                        Step::Checkout { lines, .. } => lines.iter().map(|&(s, q)| LineRequest { sku: SkuId(s), quantity: q }).collect(),
                        _ => vec![],
                    };
                    let command = Command::Checkout { buyer: BuyerId(*buyer), lines: requested, coupons };
                    (*buyer, command, Some((lines, expected)))
                }
            };
            let before = state.digest();
            let wallet = state.ledger().balance(Owner::Buyer(BuyerId(buyer)), cny());
            let orders_before = state.orders().len() as u64;
            let envelope = Envelope { actor: Actor::Buyer(BuyerId(buyer)), idempotency: None, at, command };
            match state.apply(&envelope) {
                Err(_) => prop_assert_eq!(state.digest(), before, "a refused command changed the state"),
                Ok(applied) => {
                    if let (Outcome::CheckedOut { first, orders, total }, Some((lines, expected))) = (applied.outcome(), &expected) {
                        let stores: std::collections::BTreeSet<u64> = lines.iter().map(|&(s, _)| store_of(s)).collect();
                        prop_assert_eq!(*orders as usize, stores.len(), "one order per store");
                        prop_assert_eq!(first.0, orders_before + 1);
                        let (expected_total, expected_off) = *expected;
                        prop_assert_eq!(total.0, expected_total, "priced as the model prices it");
                        let paid = state.ledger().balance(Owner::Buyer(BuyerId(buyer)), cny());
                        prop_assert_eq!(wallet - paid, expected_total as i64, "the wallet paid exactly the sum");
                        let mut shares = 0;
                        for id in first.0..first.0 + u64::from(*orders) {
                            prop_assert_eq!(state.order(OrderId(id)).unwrap().status, OrderStatus::Paid);
                            let discounts = state.order_discounts(OrderId(id));
                            shares += discounts.iter().filter(|d| d.coupon == CROSS_STORE).map(|d| d.amount.0).sum::<u64>();
                        }
                        prop_assert_eq!(shares, expected_off, "the shares add up to the discount, to the fen");
                    }
                }
            }
            let report = state.audit();
            prop_assert!(report.checks.iter().all(|c| c.ok), "{:?}", report.checks.iter().find(|c| !c.ok));
            // Money comes in from outside only by the top-ups of the set-up and the platform's share
            // of discounts (less what refunds gave back of it).
            let subsidies: i64 = state.ledger().transfers().map(|t| match t.kind {
                TransferKind::CouponSubsidy => t.amount.0 as i64,
                TransferKind::CouponSubsidyRefund => -(t.amount.0 as i64),
                _ => 0,
            }).sum();
            prop_assert_eq!(external_before - state.ledger().balance(Owner::External, cny()), subsidies, "money came from nowhere");
        }
    }
}

/// A checkout from the cart empties it; a repeat of the same idempotency key answers the same
/// orders and total; the orders show in the buyer's ledger under one total.
#[test]
fn a_cart_checked_out_is_emptied_and_a_repeat_answers_the_same_orders() {
    let mut state = world();
    let b = BuyerId(3);
    let at = Millis(T0 + 10);
    let apply = |state: &mut State, key: Option<u128>, command: Command| {
        let idempotency = key.map(|key| Idempotency { key, fingerprint: 7 });
        state.apply(&Envelope { actor: Actor::Buyer(b), idempotency, at, command })
    };
    for (sku, quantity) in [(2, 1), (3, 2), (4, 1)] {
        apply(&mut state, None, Command::SetCartLine { buyer: b, sku: SkuId(sku), quantity }).unwrap();
    }
    assert_eq!(state.cart(b, at).len(), 3);
    let checkout = Command::Checkout { buyer: b, lines: vec![], coupons: vec![CouponId(1)] };
    let first = apply(&mut state, Some(42), checkout.clone()).unwrap();
    let Outcome::CheckedOut { first: order, orders, total } = first.outcome().clone() else {
        panic!("{first:?}")
    };
    // Store 1: SKU 4 (4,000); store 2: SKU 2 (2,000 less the coupon's 500); store 3: 2 x SKU 3.
    assert_eq!((order, orders, total), (OrderId(1), 3, Amount(4_000 + 1_500 + 6_000)));
    assert!(state.cart(b, at).is_empty(), "the cart is emptied");
    let again = apply(&mut state, Some(42), checkout).unwrap();
    assert!(!again.changed());
    assert_eq!(again.outcome(), first.outcome());
    // An emptied cart has nothing to check out.
    let empty = apply(&mut state, None, Command::Checkout { buyer: b, lines: vec![], coupons: vec![] });
    assert!(matches!(empty, Err(CoreError::OutOfBounds { .. })), "{empty:?}");
}

/// Carts are bounded in lines and dropped by the tick once untouched for their time.
#[test]
fn carts_are_bounded_and_expire() {
    let mut state = world();
    let b = BuyerId(1);
    let at = Millis(T0 + 10);
    let set = |state: &mut State, sku: u64, at: Millis| {
        let command = Command::SetCartLine { buyer: b, sku: SkuId(sku), quantity: 1 };
        state.apply(&Envelope { actor: Actor::Buyer(b), idempotency: None, at, command })
    };
    set(&mut state, 1, at).unwrap();
    assert!(state.next_due().is_some_and(|due| due <= Millis(at.0 + limits::CART_TTL_MS)));
    let later = Millis(at.0 + limits::CART_TTL_MS);
    assert!(state.cart(b, later).is_empty(), "expired at its time");
    // Changed after it expired and before the tick dropped it: the old lines do not come back.
    let mut resurrected = state.clone();
    resurrected
        .apply(&Envelope {
            actor: Actor::Buyer(b),
            idempotency: None,
            at: later,
            command: Command::SetCartLine { buyer: b, sku: SkuId(2), quantity: 1 },
        })
        .unwrap();
    let lines: Vec<u64> = resurrected.cart(b, later).iter().map(|l| l.sku.0).collect();
    assert_eq!(lines, [2], "an expired cart's line came back");
    assert!(resurrected.audit().checks.iter().all(|c| c.ok));
    state
        .apply(&Envelope { actor: Actor::Admin, idempotency: None, at: later, command: Command::Tick })
        .unwrap();
    assert_eq!(state.audit().checks.iter().find(|c| c.name == "cart_bounds").map(|c| c.ok), Some(true));
    assert!(state.cart(b, later).is_empty());
    let other = BuyerId(2);
    let refused = state.apply(&Envelope {
        actor: Actor::Buyer(b),
        idempotency: None,
        at: later,
        command: Command::SetCartLine { buyer: other, sku: SkuId(1), quantity: 1 },
    });
    assert!(matches!(refused, Err(CoreError::Forbidden(_))), "{refused:?}");
}
