//! The figures are exact: after a random workload (orders in and out of a campaign, payments,
//! cancels, refunds whole and of some units, refusals), GMV equals what the ledger's payment and commission transfers
//! minus its refund transfers say, the paid and refunded counts equal the orders' statuses, and rebuilding from
//! the state gives what folding the events gave.

use elevens_analytics::Analytics;
use elevens_core::*;
use proptest::prelude::*;

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

fn admin(state: &mut State, at: u64, command: Command, analytics: &mut Analytics) -> Option<Outcome> {
    let envelope = Envelope { actor: Actor::Admin, idempotency: None, at: Millis(at), command };
    match state.apply(&envelope) {
        Ok(Applied::Changed(outcome)) => {
            let mut events = Vec::new();
            elevens_feed::derive(state, &envelope, &outcome, &mut events);
            events.iter().for_each(|event| analytics.fold(event));
            Some(outcome)
        }
        _ => None,
    }
}

#[derive(Clone, Debug)]
enum Step {
    Place {
        buyer: u64,
        sku: u64,
        quantity: u32,
    },
    Pay(usize),
    Cancel(usize),
    Refund(usize),
    /// One unit of the order's SKU: a partial refund lowers the figures too.
    RefundUnit(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u64..=5, 1u64..=4, 1u32..=3).prop_map(|(buyer, sku, quantity)| Step::Place { buyer, sku, quantity }),
        4 => (0usize..64).prop_map(Step::Pay),
        1 => (0usize..64).prop_map(Step::Cancel),
        1 => (0usize..64).prop_map(Step::Refund),
        2 => (0usize..64).prop_map(Step::RefundUnit),
    ]
}

proptest! {
    #[test]
    fn figures_equal_the_ledger(steps in proptest::collection::vec(step(), 1..120)) {
        let mut state = State::new();
        let mut analytics = Analytics::default();
        let a = &mut analytics;
        let t0 = 1_800_000_000_000u64;
        admin(&mut state, t0, Command::CreateMerchant { name: "m1".into(), commission_bps: 200 }, a);
        admin(&mut state, t0, Command::CreateMerchant { name: "m2".into(), commission_bps: 500 }, a);
        for s in 1..=4u64 {
            let sku = NewSku {
                merchant: MerchantId(1 + s % 2),
                title: format!("sku {s}"),
                description: String::new(),
                price: Amount(1_000 * s + 99),
                currency: cny(),
                initial_stock: 20,
                warehouse: None,
            };
            admin(&mut state, t0, Command::CreateSku(Box::new(sku)), a);
        }
        let campaign = NewCampaign {
            sku: SkuId(1),
            flash_price: Amount(500),
            currency: cny(),
            quantity: 10,
            starts_at: Millis(t0),
            ends_at: Millis(t0 + 3_600_000),
            per_buyer_limit: 3,
        };
        admin(&mut state, t0, Command::CreateCampaign(campaign), a);
        for b in 1..=5u64 {
            admin(&mut state, t0, Command::CreateBuyer { name: format!("b{b}") }, a);
            admin(&mut state, t0, Command::TopUp { buyer: BuyerId(b), amount: Amount(30_000), currency: cny() }, a);
        }
        let mut orders = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let at = t0 + 1_000 + i as u64 * 250;
            let pick = |n: &usize| orders.get(n % orders.len().max(1)).copied();
            let command = match step {
                Step::Place { buyer, sku, quantity } => Some(Command::PlaceOrder {
                    buyer: BuyerId(*buyer),
                    lines: vec![LineRequest { sku: SkuId(*sku), quantity: *quantity }],
                    coupons: vec![],
                    reservation_ttl_ms: 60_000,
                }),
                Step::Pay(n) => pick(n).map(|order| Command::PayOrder { order }),
                Step::Cancel(n) => pick(n).map(|order| Command::CancelOrder { order }),
                Step::Refund(n) => pick(n).map(|order| Command::RefundOrder { order, restock: n % 2 == 0 }),
                Step::RefundUnit(n) => pick(n).and_then(|order| {
                    let sku = state.order(order).ok()?.lines[0].sku;
                    let lines = vec![LineRequest { sku, quantity: 1 }];
                    Some(Command::RefundLines { order, lines, shipping: Amount::ZERO, restock: n % 2 == 1 })
                }),
            };
            if let Some(Outcome::OrderPlaced { order, .. }) = command.and_then(|c| admin(&mut state, at, c, a)) {
                orders.push(order);
            }
        }

        let (mut payments, mut refunds) = (0i128, 0i128);
        for t in state.ledger().transfers() {
            // What the buyer paid goes to the merchant (net) and the platform (commission).
            match t.kind {
                TransferKind::Payment | TransferKind::Commission => payments += i128::from(t.amount.0),
                TransferKind::Refund | TransferKind::CommissionRefund => refunds += i128::from(t.amount.0),
                _ => {}
            }
        }
        let statuses = |s: OrderStatus| state.orders().filter(|(_, o)| o.status == s).count() as u64;
        let summary = analytics.summary(Millis(t0));
        prop_assert_eq!(summary.gmv, payments - refunds);
        prop_assert_eq!(summary.refunds as i128, refunds);
        prop_assert_eq!(summary.paid_orders, statuses(OrderStatus::Paid) + statuses(OrderStatus::Refunded));
        prop_assert_eq!(summary.refunded_orders, statuses(OrderStatus::Refunded));
        prop_assert_eq!(summary.placed_orders, state.orders().len() as u64);
        let merchants: i128 = analytics.top_merchants(10).iter().map(|r| r.gmv).sum();
        prop_assert_eq!(merchants, payments - refunds);

        // Rebuilt from the state: the same cumulative figures.
        let rebuilt = Analytics::from_state(&state);
        let again = rebuilt.summary(Millis(t0));
        prop_assert_eq!(
            (again.gmv, again.paid_orders, again.refunds, again.refunded_orders),
            (summary.gmv, summary.paid_orders, summary.refunds, summary.refunded_orders)
        );
        prop_assert_eq!(format!("{:?}", rebuilt.top_skus(10)), format!("{:?}", analytics.top_skus(10)));
        prop_assert_eq!(rebuilt.funnels(), analytics.funnels());
        prop_assert_eq!(rebuilt.featured_campaign(Millis(t0 - 1)).map(|c| c.campaign_id), Some(1));

        // Rebuilt in parts, as a restart does on two cores: the same again.
        let n = state.orders().len();
        let mut parts = Analytics::catalogue_of(&state);
        parts.absorb(Analytics::of_orders(&state, n / 3..n));
        parts.absorb(Analytics::of_orders(&state, 0..n / 3));
        let again = parts.summary(Millis(t0));
        prop_assert_eq!(
            (again.gmv, again.paid_orders, again.refunds, again.refunded_orders, again.placed_orders),
            (summary.gmv, summary.paid_orders, summary.refunds, summary.refunded_orders, summary.placed_orders)
        );
        prop_assert_eq!(format!("{:?}", parts.top_skus(10)), format!("{:?}", analytics.top_skus(10)));
        prop_assert_eq!(format!("{:?}", parts.top_merchants(10)), format!("{:?}", analytics.top_merchants(10)));
        prop_assert_eq!(parts.funnels(), analytics.funnels());
        prop_assert_eq!(parts.featured_campaign(Millis(t0 - 1)).map(|c| c.campaign_id), Some(1));
    }
}
