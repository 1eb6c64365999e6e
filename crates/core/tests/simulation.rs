//! Randomized, seeded simulation of the state machine (proptest): random sequences of valid and
//! invalid commands, repeated and reused idempotency keys, and time jumps. After every step every
//! invariant holds; a refused or repeated command changes nothing; replaying the journaled
//! commands from empty, or from a snapshot, gives the same digest.

use elevens_core::*;
use proptest::prelude::*;

const MERCHANTS: u64 = 2;
const BUYERS: u64 = 4;
const SKUS: u64 = 4;

#[derive(Clone, Debug)]
enum Step {
    Place {
        buyer: u64,
        lines: Vec<(u64, u32)>,
        coupons: Vec<u64>,
        ttl_ms: u64,
        as_other: bool,
    },
    Pay {
        order: u64,
        as_other: bool,
    },
    Cancel {
        order: u64,
    },
    Refund {
        order: u64,
        restock: bool,
        as_merchant: bool,
    },
    TopUp {
        buyer: u64,
        amount: u64,
        currency: bool,
    },
    Restock {
        sku: u64,
        quantity: u64,
    },
    Expire,
    Advance {
        ms: u64,
    },
    GoBack {
        ms: u64,
    },
    RepeatKey {
        back: usize,
    },
    ReuseKey {
        back: usize,
    },
    Campaign {
        sku: u64,
        flash_price: u64,
        quantity: u64,
        starts_in_ms: u64,
        lasts_ms: u64,
        limit: u32,
    },
    /// Changes a sale's quantity, end or price (refused where the sale's state forbids it).
    EditCampaign {
        campaign: u64,
        quantity: Option<u64>,
        ends_in_ms: Option<u64>,
        flash_price: Option<u64>,
        as_merchant: bool,
    },
    /// Ends a running sale or cancels one not started.
    EndCampaign {
        campaign: u64,
    },
    Coupon {
        merchant: Option<u64>,
        percent: bool,
        value: u64,
        min_spend: u64,
        limit: u32,
        uses: Option<u64>,
        money: Option<u64>,
        lasts_ms: u64,
    },
    DisableCoupon {
        coupon: u64,
    },
    RedPacket {
        merchant: Option<u64>,
        amount: u64,
        count: u32,
        lasts_ms: u64,
        seed: u64,
    },
    Claim {
        packet: u64,
        buyer: u64,
    },
    ClosePacket {
        packet: u64,
    },
    /// Hours pass (days end: roll-overs, missed deliveries), then a tick.
    Hours {
        hours: u64,
    },
    Dispatch {
        shipment: u64,
    },
    CancelShipment {
        shipment: u64,
    },
    Track {
        events: Vec<(u64, usize, u64, u64)>,
        as_merchant: bool,
    },
    RefundLines {
        order: u64,
        quantity: u32,
        shipping: u64,
        restock: bool,
    },
    Return {
        order: u64,
        quantity: u32,
    },
    DecideReturn {
        ret: u64,
        approve: bool,
    },
    ReceiveReturn {
        ret: u64,
        restock: bool,
    },
    RefundReturn {
        ret: u64,
        shipping: u64,
    },
    Ticket {
        order: u64,
    },
    UpdateTicket {
        ticket: u64,
        status: usize,
        as_buyer: bool,
    },
    /// A message in a ticket's conversation, by its store or its buyer (a stranger is refused).
    ReplyTicket {
        ticket: u64,
        who: u8,
    },
    /// A store's note on an order, by its merchant, its buyer (refused) or another store.
    NoteOrder {
        order: u64,
        who: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1..=BUYERS + 1, prop_oneof![3 => prop::collection::vec((1..=SKUS, 1u32..3), 1..2), 1 => prop::collection::vec((0..=SKUS + 1, 0u32..6), 0..4)], prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(1u64..5, 1..3)], 500u64..120_000, prop::bool::weighted(0.1))
            .prop_map(|(buyer, lines, coupons, ttl_ms, as_other)| Step::Place { buyer, lines, coupons, ttl_ms, as_other }),
        1 => (prop::option::of(1..=MERCHANTS), any::<bool>(), 1u64..3_000, 0u64..3_000, 1u32..3, prop::option::of(1u64..6), prop::option::of(1u64..5_000), prop_oneof![1_000u64..600_000, 1_000u64..200_000_000])
            .prop_map(|(merchant, percent, value, min_spend, limit, uses, money, lasts_ms)| Step::Coupon { merchant, percent, value, min_spend, limit, uses, money, lasts_ms }),
        1 => (0u64..5).prop_map(|coupon| Step::DisableCoupon { coupon }),
        1 => (prop::option::of(1..=MERCHANTS), 0u64..5_000, 0u32..8, prop_oneof![1_000u64..100_000, 1_000u64..200_000_000], any::<u64>())
            .prop_map(|(merchant, amount, count, lasts_ms, seed)| Step::RedPacket { merchant, amount, count, lasts_ms, seed }),
        3 => (0u64..5, 0..=BUYERS + 1).prop_map(|(packet, buyer)| Step::Claim { packet, buyer }),
        1 => (0u64..5).prop_map(|packet| Step::ClosePacket { packet }),
        5 => (0u64..40, prop::bool::weighted(0.1)).prop_map(|(order, as_other)| Step::Pay { order, as_other }),
        2 => (0u64..40).prop_map(|order| Step::Cancel { order }),
        2 => (0u64..40, any::<bool>(), any::<bool>()).prop_map(|(order, restock, as_merchant)| Step::Refund { order, restock, as_merchant }),
        3 => (1..=BUYERS + 1, prop_oneof![Just(0u64), 1u64..100_000, Just(u64::MAX), Just(limits::AMOUNT_MAX + 1)], prop::bool::weighted(0.9))
            .prop_map(|(buyer, amount, currency)| Step::TopUp { buyer, amount, currency }),
        3 => (0..=SKUS + 1, prop_oneof![0u64..20, Just(u64::MAX)]).prop_map(|(sku, quantity)| Step::Restock { sku, quantity }),
        2 => Just(Step::Expire),
        3 => (0u64..30_000).prop_map(|ms| Step::Advance { ms }),
        1 => (0u64..10_000).prop_map(|ms| Step::GoBack { ms }),
        2 => (0usize..20).prop_map(|back| Step::RepeatKey { back }),
        1 => (0usize..20).prop_map(|back| Step::ReuseKey { back }),
        1 => (1..=SKUS, 1u64..1_500, 1u64..10, 0u64..20_000, 1u64..60_000, 1u32..4)
            .prop_map(|(sku, flash_price, quantity, starts_in_ms, lasts_ms, limit)| Step::Campaign { sku, flash_price, quantity, starts_in_ms, lasts_ms, limit }),
        1 => (0u64..6, prop::option::of(0u64..12), prop::option::of(0u64..80_000), prop::option::of(1u64..1_500), prop::bool::weighted(0.9))
            .prop_map(|(campaign, quantity, ends_in_ms, flash_price, as_merchant)| Step::EditCampaign { campaign, quantity, ends_in_ms, flash_price, as_merchant }),
        1 => (0u64..6).prop_map(|campaign| Step::EndCampaign { campaign }),
        1 => (1u64..40).prop_map(|hours| Step::Hours { hours }),
        3 => (0u64..12).prop_map(|shipment| Step::Dispatch { shipment }),
        1 => (0u64..12).prop_map(|shipment| Step::CancelShipment { shipment }),
        4 => (prop::collection::vec((0u64..12, prop_oneof![3 => Just(1usize), 2 => Just(5usize), 4 => 0usize..9], 0u64..40, 0u64..200_000), 1..3), prop::bool::weighted(0.3))
            .prop_map(|(events, as_merchant)| Step::Track { events, as_merchant }),
        2 => (0u64..40, 0u32..3, prop_oneof![Just(0u64), 1u64..600], any::<bool>())
            .prop_map(|(order, quantity, shipping, restock)| Step::RefundLines { order, quantity, shipping, restock }),
        2 => (0u64..40, 0u32..3).prop_map(|(order, quantity)| Step::Return { order, quantity }),
        1 => (0u64..5, prop::bool::weighted(0.7)).prop_map(|(ret, approve)| Step::DecideReturn { ret, approve }),
        1 => (0u64..5, any::<bool>()).prop_map(|(ret, restock)| Step::ReceiveReturn { ret, restock }),
        1 => (0u64..5, prop_oneof![Just(0u64), 1u64..600]).prop_map(|(ret, shipping)| Step::RefundReturn { ret, shipping }),
        1 => (0u64..40).prop_map(|order| Step::Ticket { order }),
        1 => (0u64..6, 0usize..5, any::<bool>()).prop_map(|(ticket, status, as_buyer)| Step::UpdateTicket { ticket, status, as_buyer }),
        1 => (0u64..6, 0u8..3).prop_map(|(ticket, who)| Step::ReplyTicket { ticket, who }),
        1 => (0u64..40, 0u8..3).prop_map(|(order, who)| Step::NoteOrder { order, who }),
    ]
}

struct Sim {
    state: State,
    now: u64,
    next_key: u128,
    /// Every envelope sent with a key, for repeats.
    sent: Vec<Envelope>,
    /// The envelopes that changed state, in order: what the journal would hold.
    journal: Vec<Envelope>,
    /// The first outcome of each idempotency key, which every repeat must return unchanged.
    first_outcomes: std::collections::HashMap<u128, Outcome>,
}

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

impl Sim {
    fn new() -> Sim {
        let mut sim = Sim {
            state: State::new(),
            now: 1_000_000,
            next_key: 1,
            sent: Vec::new(),
            journal: Vec::new(),
            first_outcomes: Default::default(),
        };
        for m in 0..MERCHANTS {
            sim.must(
                Actor::Admin,
                Command::CreateMerchant { name: format!("m{m}"), commission_bps: 250 * m as u16 },
            );
        }
        for b in 0..BUYERS {
            sim.must(Actor::Admin, Command::CreateBuyer { name: format!("b{b}") });
        }
        for s in 0..SKUS {
            sim.must(
                Actor::Admin,
                Command::CreateSku(Box::new(NewSku {
                    merchant: MerchantId(s % MERCHANTS + 1),
                    title: format!("sku {s}"),
                    description: String::new(),
                    price: Amount(1_000 + 333 * s),
                    currency: cny(),
                    initial_stock: 5 + s,
                    warehouse: None,
                })),
            );
        }
        // Merchant 1 ships from two small warehouses (SKU 3 from the second), merchant 2 has
        // none; buyers 1 and 2 have addresses a carrier serves, 3 and 4 none.
        let m1 = Actor::Merchant(MerchantId(1));
        for (name, capacity) in [("east", 2), ("west", 1)] {
            sim.must(
                m1,
                Command::CreateWarehouse(Box::new(NewWarehouse {
                    merchant: MerchantId(1),
                    name: name.into(),
                    region: "CN-ZJ".into(),
                    capacity_per_day: capacity,
                    cutoff_minute: 16 * 60,
                    utc_offset_minutes: 480,
                    closed_weekdays: 1 << 6,
                    closed_days: vec![],
                })),
            );
        }
        sim.must(m1, Command::SetSkuWarehouse { sku: SkuId(3), warehouse: WarehouseId(2) });
        sim.must(m1, Command::SetShippingFee { merchant: MerchantId(1), currency: cny(), fee: Amount(500) });
        sim.must(m1, Command::SetStoreZone { merchant: MerchantId(1), utc_offset_minutes: 480 });
        sim.must(
            Actor::Admin,
            Command::CreateCarrier(Box::new(NewCarrier {
                name: "SF".into(),
                lanes: vec![NewLane { from: "CN-ZJ".into(), to: "CN-BJ".into(), p50_days: 1, p90_days: 2 }],
            })),
        );
        for b in 1..=2 {
            sim.must(
                Actor::Service,
                Command::SetAddress { buyer: BuyerId(b), region: "CN-BJ".into(), text: format!("road {b}") },
            );
        }
        sim
    }

    fn shipment_count(&self) -> u64 {
        self.state.shipments().len() as u64
    }

    /// An id among the newest shipments, as `recent` picks them.
    fn pick_shipment(&self, pick: u64) -> ShipmentId {
        ShipmentId(recent(self.shipment_count(), pick))
    }

    fn merchant_of(&self, order: u64) -> Actor {
        self.state.order(OrderId(order)).map(|o| Actor::Merchant(o.merchant())).unwrap_or(Actor::Admin)
    }

    fn must(&mut self, actor: Actor, command: Command) {
        let result = self.send(actor, command);
        assert!(matches!(result, Ok(Applied::Changed(_))), "setup failed: {result:?}");
    }

    fn send(&mut self, actor: Actor, command: Command) -> Result<Applied, CoreError> {
        let key = self.next_key;
        self.next_key += 1;
        let fingerprint = key as u64 ^ command.name().len() as u64;
        let envelope = Envelope {
            actor,
            idempotency: Some(Idempotency { key, fingerprint }),
            at: Millis(self.now),
            command,
        };
        self.sent.push(envelope.clone());
        self.deliver(envelope)
    }

    fn deliver(&mut self, envelope: Envelope) -> Result<Applied, CoreError> {
        let before = self.state.digest();
        let result = self.state.apply(&envelope);
        match &result {
            Ok(Applied::Changed(outcome)) => {
                if let Some(idem) = envelope.idempotency {
                    self.first_outcomes.insert(idem.key, outcome.clone());
                }
                self.journal.push(envelope)
            }
            // Invariants 3 and 6: a repeat or a refusal changes nothing.
            _ => assert_eq!(before, self.state.digest(), "{:?} changed state: {result:?}", envelope.command),
        }
        result
    }

    fn order_count(&self) -> u64 {
        (1..).find(|&id| self.state.order(OrderId(id)).is_err()).unwrap_or(1) - 1
    }

    /// Picks an order relative to the newest, so the simulation keeps reaching live orders;
    /// 0 and 39 pick ids that do not exist.
    fn pick_order(&self, pick: u64) -> u64 {
        match pick {
            0 => 0,
            39 => self.order_count() + 1,
            back => self.order_count().saturating_sub(back - 1),
        }
    }

    fn buyer_of(&self, order: u64) -> Actor {
        self.state.order(OrderId(order)).map(|o| Actor::Buyer(o.buyer())).unwrap_or(Actor::Service)
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Place { buyer, lines, coupons, ttl_ms, as_other } => {
                let count = self.state.coupons().count() as u64;
                let coupons: Vec<CouponId> =
                    coupons.into_iter().map(|pick| CouponId(recent(count, pick))).collect();
                let lines = lines
                    .into_iter()
                    .map(|(sku, quantity)| LineRequest { sku: SkuId(sku), quantity })
                    .collect();
                let actor = if as_other {
                    Actor::Buyer(BuyerId(buyer % BUYERS + 1))
                } else {
                    Actor::Buyer(BuyerId(buyer))
                };
                let result = self.send(
                    actor,
                    Command::PlaceOrder { buyer: BuyerId(buyer), lines, coupons, reservation_ttl_ms: ttl_ms },
                );

                if as_other && buyer <= BUYERS && BUYERS > 1 {
                    assert!(matches!(result, Err(CoreError::Forbidden(_))), "{result:?}");
                }
            }
            Step::Pay { order, as_other } => {
                let order = self.pick_order(order);
                let actor = if as_other { Actor::Merchant(MerchantId(1)) } else { self.buyer_of(order) };
                let result = self.send(actor, Command::PayOrder { order: OrderId(order) });
                if as_other && result.is_ok() {
                    panic!("a merchant paid a buyer's order");
                }
            }
            Step::Cancel { order } => {
                let order = self.pick_order(order);
                let actor = self.buyer_of(order);
                let _ = self.send(actor, Command::CancelOrder { order: OrderId(order) });
            }
            Step::Refund { order, restock, as_merchant } => {
                let order = self.pick_order(order);
                let actor = match (as_merchant, self.state.order(OrderId(order))) {
                    (true, Ok(o)) => Actor::Merchant(o.merchant()),
                    (_, _) => Actor::Admin,
                };
                let _ = self.send(actor, Command::RefundOrder { order: OrderId(order), restock });
            }
            Step::TopUp { buyer, amount, currency } => {
                let currency = if currency { cny() } else { Currency::parse("USD").unwrap() };
                let result = self.send(
                    Actor::Service,
                    Command::TopUp { buyer: BuyerId(buyer), amount: Amount(amount), currency },
                );
                if amount == 0 || amount > limits::AMOUNT_MAX || buyer > BUYERS {
                    assert!(result.is_err());
                }
            }
            Step::Restock { sku, quantity } => {
                let _ = self.send(Actor::Admin, Command::Restock { sku: SkuId(sku), quantity });
            }
            Step::Expire => {
                let _ = self.send(Actor::Service, Command::Tick);
                let next = self.state.next_due();
                assert!(
                    next.is_none_or(|at| at.0 > self.now.max(self.state.clock().0)),
                    "a due reservation survived expiry"
                );
            }
            Step::Advance { ms } => self.now += ms,
            Step::GoBack { ms } => self.now = self.now.saturating_sub(ms),
            Step::RepeatKey { back } => {
                if let Some(first) = self.sent.len().checked_sub(back + 1).map(|i| self.sent[i].clone()) {
                    // Remembered: journaled, and not yet forgotten (Hours steps pass days).
                    let retained = self.state.clock().0.saturating_sub(first.at.0)
                        < limits::IDEMPOTENCY_RETENTION_MS - 2_000;
                    let journaled_before = retained && self.journal.iter().any(|e| e == &first);
                    if !retained {
                        // A resend after the retention is a new command: out of the contract.
                        return;
                    }
                    let result = self.deliver(Envelope { at: Millis(self.now), ..first.clone() });
                    if journaled_before {
                        // Exactly the first outcome, whatever happened to the order since.
                        let key = first.idempotency.map(|i| i.key).unwrap_or_default();
                        let expected = self.first_outcomes.get(&key).cloned();
                        assert!(matches!(result, Ok(Applied::Repeated(_))), "a repeat ran again: {result:?}");
                        assert_eq!(
                            result.ok().map(|a| a.outcome().clone()),
                            expected,
                            "a repeat answered differently"
                        );
                    }
                }
            }
            Step::ReuseKey { back } => {
                if let Some(first) = self.sent.len().checked_sub(back + 1).map(|i| self.sent[i].clone()) {
                    // Remembered: journaled, and not yet forgotten (Hours steps pass days).
                    let retained = self.state.clock().0.saturating_sub(first.at.0)
                        < limits::IDEMPOTENCY_RETENTION_MS - 2_000;
                    let journaled_before = retained && self.journal.iter().any(|e| e == &first);
                    let mut idem = first.idempotency.unwrap();
                    idem.fingerprint ^= 0xdead;
                    let result = self.deliver(Envelope {
                        idempotency: Some(idem),
                        at: Millis(self.now),
                        command: Command::Tick,
                        actor: Actor::Admin,
                    });
                    if journaled_before {
                        assert_eq!(result, Err(CoreError::IdempotencyKeyReused));
                    }
                }
            }
            Step::Coupon { merchant, percent, value, min_spend, limit, uses, money, lasts_ms } => {
                let sponsor = merchant.map_or(Sponsor::Platform, |m| Sponsor::Merchant(MerchantId(m)));
                let actor = merchant.map_or(Actor::Admin, |m| Actor::Merchant(MerchantId(m)));
                let rule = if percent {
                    DiscountRule::Percent { bps: (value % 10_000 + 1) as u16, cap: money.map(Amount) }
                } else {
                    DiscountRule::Fixed { amount: Amount(value) }
                };
                let _ = self.send(
                    actor,
                    Command::CreateCoupon(Box::new(NewCoupon {
                        sponsor,
                        rule,
                        currency: cny(),
                        min_spend: Amount(min_spend),
                        starts_at: Millis(self.now),
                        ends_at: Millis(self.now + lasts_ms),
                        per_buyer_limit: limit,
                        budget_amount: money.map(Amount),
                        budget_uses: uses,
                    })),
                );
            }
            Step::DisableCoupon { coupon } => {
                let coupon = recent(self.state.coupons().count() as u64, coupon);
                let actor = match self.state.coupon(CouponId(coupon)).map(|c| c.terms.sponsor) {
                    Ok(Sponsor::Merchant(m)) => Actor::Merchant(m),
                    _ => Actor::Admin,
                };
                let _ = self.send(actor, Command::DisableCoupon { coupon: CouponId(coupon) });
            }
            Step::RedPacket { merchant, amount, count, lasts_ms, seed } => {
                let sponsor = merchant.map_or(Sponsor::Platform, |m| Sponsor::Merchant(MerchantId(m)));
                let actor = merchant.map_or(Actor::Admin, |m| Actor::Merchant(MerchantId(m)));
                let result = self.send(
                    actor,
                    Command::CreateRedPacket(NewRedPacket {
                        sponsor,
                        amount: Amount(amount),
                        count,
                        currency: cny(),
                        starts_at: Millis(self.now),
                        ends_at: Millis(self.now + lasts_ms),
                        seed,
                    }),
                );
                if count == 0 || amount < u64::from(count) {
                    assert!(result.is_err(), "a bad pool was accepted");
                }
            }
            Step::Claim { packet, buyer } => {
                let packet = recent(self.state.red_packets().count() as u64, packet);
                let before = self
                    .state
                    .red_packet(RedPacketId(packet))
                    .map(|p| p.claims.contains_key(&BuyerId(buyer)));
                let result = self.send(
                    Actor::Buyer(BuyerId(buyer)),
                    Command::ClaimRedPacket { packet: RedPacketId(packet), buyer: BuyerId(buyer) },
                );
                if before == Ok(true) {
                    assert!(result.is_err(), "a second share: {result:?}");
                }
            }
            Step::ClosePacket { packet } => {
                let packet = recent(self.state.red_packets().count() as u64, packet);
                let actor = match self.state.red_packet(RedPacketId(packet)).map(|p| p.terms.sponsor) {
                    Ok(Sponsor::Merchant(m)) => Actor::Merchant(m),
                    _ => Actor::Admin,
                };
                let _ = self.send(actor, Command::CloseRedPacket { packet: RedPacketId(packet) });
            }
            Step::Campaign { sku, flash_price, quantity, starts_in_ms, lasts_ms, limit } => {
                let starts_at = Millis(self.now + starts_in_ms);
                let _ = self.send(
                    Actor::Merchant(MerchantId((sku - 1) % MERCHANTS + 1)),
                    Command::CreateCampaign(NewCampaign {
                        sku: SkuId(sku),
                        flash_price: Amount(flash_price),
                        currency: cny(),
                        quantity,
                        starts_at,
                        ends_at: starts_at.saturating_add(lasts_ms),
                        per_buyer_limit: limit,
                    }),
                );
            }
            Step::EditCampaign { campaign, quantity, ends_in_ms, flash_price, as_merchant } => {
                let id = CampaignId(campaign);
                let Ok(c) = self.state.campaign(id) else { return };
                let merchant = (c.sku.0 - 1) % MERCHANTS + 1;
                // The rival store's key must be refused.
                let actor = Actor::Merchant(MerchantId(if as_merchant {
                    merchant
                } else {
                    merchant % MERCHANTS + 1
                }));
                let edit = CampaignEdit {
                    campaign: id,
                    name: Some(format!("sale {campaign}")),
                    flash_price: flash_price.map(Amount),
                    quantity,
                    starts_at: None,
                    ends_at: ends_in_ms.map(|ms| Millis(self.now + ms)),
                    per_buyer_limit: None,
                };
                let result = self.send(actor, Command::UpdateCampaign(Box::new(edit)));
                if !as_merchant && MERCHANTS > 1 {
                    assert!(matches!(result, Err(CoreError::Forbidden(_))), "{result:?}");
                }
            }
            Step::EndCampaign { campaign } => {
                let Ok(c) = self.state.campaign(CampaignId(campaign)) else { return };
                let merchant = MerchantId((c.sku.0 - 1) % MERCHANTS + 1);
                let _ = self
                    .send(Actor::Merchant(merchant), Command::EndCampaign { campaign: CampaignId(campaign) });
            }
            Step::Hours { hours } => {
                self.now += hours * 3_600_000;
                let _ = self.send(Actor::Service, Command::Tick);
            }
            Step::Dispatch { shipment } => {
                let shipment = self.pick_shipment(shipment);
                let actor = self.shipment_merchant(shipment);
                let _ = self.send(actor, Command::DispatchShipment { shipment });
            }
            Step::CancelShipment { shipment } => {
                let shipment = self.pick_shipment(shipment);
                let actor = self.shipment_merchant(shipment);
                let _ = self.send(actor, Command::CancelShipment { shipment });
            }
            Step::Track { events, as_merchant } => {
                let events: Vec<NewTrackingEvent> = events
                    .into_iter()
                    .map(|(pick, status, key, back_ms)| NewTrackingEvent {
                        shipment: self.pick_shipment(pick),
                        key,
                        status: logistics::TrackingStatus::ALL[status],
                        occurred_at: Millis(self.now.saturating_sub(back_ms)),
                    })
                    .collect();
                // The first parcel's carrier (or its merchant): a batch mixing parcels of
                // others is refused whole.
                let carrier = events.first().and_then(|e| self.state.shipment(e.shipment).ok()?.carrier());
                let actor = match (as_merchant, carrier, events.first()) {
                    (false, Some(c), _) => Actor::Carrier(c),
                    (_, _, Some(e)) => self.shipment_merchant(e.shipment),
                    _ => Actor::Carrier(CarrierId(1)),
                };
                let _ = self.send(actor, Command::RecordTracking { events });
            }
            Step::RefundLines { order, quantity, shipping, restock } => {
                let order = self.pick_order(order);
                let lines = self.first_line(order, quantity);
                let actor = self.merchant_of(order);
                let command = Command::RefundLines {
                    order: OrderId(order),
                    lines,
                    shipping: Amount(shipping),
                    restock,
                };
                let _ = self.send(actor, command);
            }
            Step::Return { order, quantity } => {
                let order = self.pick_order(order);
                let lines = self.first_line(order, quantity);
                let reason = logistics::ReturnReason::Damaged;
                let _ = self.send(
                    self.buyer_of(order),
                    Command::RequestReturn { order: OrderId(order), lines, reason },
                );
            }
            Step::DecideReturn { ret, approve } => {
                let ret = ReturnId(recent(self.state.returns().len() as u64, ret));
                let actor = self.return_merchant(ret);
                let _ = self.send(actor, Command::DecideReturn { ret, approve });
            }
            Step::ReceiveReturn { ret, restock } => {
                let ret = ReturnId(recent(self.state.returns().len() as u64, ret));
                let actor = self.return_merchant(ret);
                let _ = self.send(actor, Command::ReceiveReturn { ret, restock });
            }
            Step::RefundReturn { ret, shipping } => {
                let ret = ReturnId(recent(self.state.returns().len() as u64, ret));
                let actor = self.return_merchant(ret);
                let _ = self.send(actor, Command::RefundReturn { ret, shipping: Amount(shipping) });
            }
            Step::Ticket { order } => {
                let order = self.pick_order(order);
                let subject = "where is my parcel".to_string();
                let _ =
                    self.send(self.buyer_of(order), Command::OpenTicket { order: OrderId(order), subject });
            }
            Step::UpdateTicket { ticket, status, as_buyer } => {
                let ticket = TicketId(recent(self.state.tickets().len() as u64, ticket));
                let actor = match self.state.ticket(ticket) {
                    Ok(t) if as_buyer => Actor::Buyer(t.buyer),
                    Ok(t) => Actor::Merchant(t.merchant),
                    Err(_) => Actor::Admin,
                };
                let status = logistics::TicketStatus::ALL[status];
                let _ = self.send(actor, Command::UpdateTicket { ticket, status });
            }
            Step::ReplyTicket { ticket, who } => {
                let ticket = TicketId(recent(self.state.tickets().len() as u64, ticket));
                let Ok(t) = self.state.ticket(ticket) else { return };
                let (buyer, merchant, before) = (t.buyer, t.merchant, t.messages.len());
                let actor = match who {
                    0 => Actor::Buyer(buyer),
                    1 => Actor::Merchant(merchant),
                    _ => Actor::Buyer(BuyerId(buyer.0 % BUYERS + 1)),
                };
                let result = self.send(actor, Command::ReplyTicket { ticket, body: "about my order".into() });
                let t = self.state.ticket(ticket).unwrap();
                match result {
                    Ok(_) => {
                        assert!(who < 2 || BUYERS == 1, "a stranger wrote in a ticket");
                        assert_eq!(t.messages.len(), before + 1);
                        if who == 1 {
                            assert!(
                                t.first_response_at.is_some(),
                                "the store's message is its first response"
                            );
                        }
                    }
                    Err(_) => assert_eq!(t.messages.len(), before),
                }
            }
            Step::NoteOrder { order, who } => {
                let order = self.pick_order(order);
                let before = self.state.order_notes(OrderId(order)).len();
                let actor = match who {
                    0 => self.merchant_of(order),
                    1 => self.buyer_of(order),
                    _ => match self.merchant_of(order) {
                        Actor::Merchant(m) => Actor::Merchant(MerchantId(m.0 % MERCHANTS + 1)),
                        other => other,
                    },
                };
                let result =
                    self.send(actor, Command::NoteOrder { order: OrderId(order), body: "call first".into() });
                let after = self.state.order_notes(OrderId(order)).len();
                match result {
                    Ok(_) => assert!(who == 0 || MERCHANTS == 1, "only its store keeps notes on an order"),
                    Err(_) => assert_eq!(after, before, "a refused note was kept"),
                }
            }
        }
        let report = self.state.audit();
        let broken: Vec<_> = report.checks.iter().filter(|c| !c.ok).collect();
        assert!(broken.is_empty(), "invariant broken: {broken:#?}");
    }
}

impl Sim {
    fn shipment_merchant(&self, shipment: ShipmentId) -> Actor {
        self.state.shipment(shipment).map(|s| self.merchant_of(s.order().0)).unwrap_or(Actor::Admin)
    }

    fn return_merchant(&self, ret: ReturnId) -> Actor {
        self.state.return_request(ret).map(|r| self.merchant_of(r.order.0)).unwrap_or(Actor::Admin)
    }

    /// `quantity` units of the order's first line (none of an order that does not exist).
    fn first_line(&self, order: u64, quantity: u32) -> Vec<LineRequest> {
        let Ok(o) = self.state.order(OrderId(order)) else { return vec![] };
        o.lines.iter().take(1).map(|l| LineRequest { sku: l.sku, quantity }).collect()
    }
}

/// An id among the newest `count`: 1 is the newest, 2 the one before; 0 stays 0 (never valid).
fn recent(count: u64, pick: u64) -> u64 {
    if pick == 0 {
        0
    } else {
        count.saturating_sub(pick - 1)
    }
}

fn replay(journal: &[Envelope]) -> State {
    let mut state = State::new();
    for envelope in journal {
        let result = state.apply(envelope);
        assert!(matches!(result, Ok(Applied::Changed(_))), "replay diverged: {result:?}");
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_replay_is_exact(steps in prop::collection::vec(step(), 1..150)) {
        let mut sim = Sim::new();
        let half = steps.len() / 2;
        let mut snapshot = None;
        for (i, step) in steps.into_iter().enumerate() {
            sim.run(step);
            if i == half {
                snapshot = Some((sim.state.encode(), sim.journal.len()));
            }
        }
        let digest = sim.state.digest();
        // Invariant 5: replay from empty gives the same state, bit for bit.
        prop_assert_eq!(replay(&sim.journal).digest(), digest.clone());
        // And from a snapshot plus the tail of the journal.
        if let Some((bytes, at)) = snapshot {
            let mut state = State::decode(&bytes).unwrap();
            for envelope in &sim.journal[at..] {
                prop_assert!(state.apply(envelope).unwrap().changed());
            }
            prop_assert_eq!(state.digest(), digest);
        }
    }
}

#[test]
fn flash_sale_sells_exactly_its_quantity() {
    let mut sim = Sim::new();
    sim.must(Actor::Admin, Command::Restock { sku: SkuId(1), quantity: 1_000 });
    sim.must(
        Actor::Merchant(MerchantId(1)),
        Command::CreateCampaign(NewCampaign {
            sku: SkuId(1),
            flash_price: Amount(100),
            currency: cny(),
            quantity: 7,
            starts_at: Millis(sim.now + 10),
            ends_at: Millis(sim.now + 100_000),
            per_buyer_limit: 2,
        }),
    );
    let early = sim.send(
        Actor::Service,
        Command::PlaceOrder {
            buyer: BuyerId(1),
            lines: vec![LineRequest { sku: SkuId(1), quantity: 1 }],
            coupons: vec![],
            reservation_ttl_ms: 60_000,
        },
    );
    assert_eq!(early, Err(CoreError::CampaignNotStarted { campaign: CampaignId(1), starts_in_ms: 10 }));
    sim.now += 10;
    let mut placed = 0;
    for round in 0..3 {
        for buyer in 1..=BUYERS {
            let r = sim.send(
                Actor::Service,
                Command::PlaceOrder {
                    buyer: BuyerId(buyer),
                    lines: vec![LineRequest { sku: SkuId(1), quantity: 1 }],
                    coupons: vec![],
                    reservation_ttl_ms: 60_000,
                },
            );
            match r {
                Ok(_) => placed += 1,
                Err(CoreError::CampaignLimitExceeded { .. }) => assert_eq!(round, 2),
                Err(CoreError::CampaignSoldOut { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(placed, 7);
    let campaign = sim.state.campaign(CampaignId(1)).unwrap();
    assert_eq!(campaign.taken, 7);
    assert!(sim.state.audit().ok());
}

#[test]
fn payment_moves_money_and_refund_returns_it() {
    let mut sim = Sim::new();
    sim.must(Actor::Service, Command::TopUp { buyer: BuyerId(1), amount: Amount(10_000), currency: cny() });
    // SKU 2 belongs to merchant 2, whose commission is 2.5%.
    let placed = sim.send(
        Actor::Buyer(BuyerId(1)),
        Command::PlaceOrder {
            buyer: BuyerId(1),
            lines: vec![LineRequest { sku: SkuId(2), quantity: 3 }],
            coupons: vec![],
            reservation_ttl_ms: 60_000,
        },
    );
    assert!(
        matches!(placed, Ok(Applied::Changed(Outcome::OrderPlaced { total: Amount(3_999), .. }))),
        "{placed:?}"
    );
    let paid = sim.send(Actor::Buyer(BuyerId(1)), Command::PayOrder { order: OrderId(1) }).unwrap();
    assert_eq!(
        paid.outcome(),
        &Outcome::OrderPaid { order: OrderId(1), total: Amount(3_999), commission: Amount(99) }
    );
    let ledger = sim.state.ledger();
    assert_eq!(ledger.balance(Owner::Buyer(BuyerId(1)), cny()), 6_001);
    assert_eq!(ledger.balance(Owner::Merchant(MerchantId(2)), cny()), 3_900);
    assert_eq!(ledger.balance(Owner::Platform, cny()), 99);
    assert_eq!(ledger.balance(Owner::External, cny()), -10_000);
    sim.must(Actor::Merchant(MerchantId(2)), Command::RefundOrder { order: OrderId(1), restock: true });
    let ledger = sim.state.ledger();
    assert_eq!(ledger.balance(Owner::Buyer(BuyerId(1)), cny()), 10_000);
    assert_eq!(ledger.balance(Owner::Merchant(MerchantId(2)), cny()), 0);
    assert_eq!(sim.state.sku(SkuId(2)).unwrap().available, 6);
    assert!(sim.state.audit().ok());
}

#[test]
fn an_unpaid_order_expires_and_cannot_be_paid() {
    let mut sim = Sim::new();
    sim.must(Actor::Service, Command::TopUp { buyer: BuyerId(1), amount: Amount(10_000), currency: cny() });
    sim.must(
        Actor::Service,
        Command::PlaceOrder {
            buyer: BuyerId(1),
            lines: vec![LineRequest { sku: SkuId(1), quantity: 5 }],
            coupons: vec![],
            reservation_ttl_ms: 1_000,
        },
    );
    assert_eq!(sim.state.sku(SkuId(1)).unwrap().available, 0);
    sim.now += 1_000;
    let late = sim.send(Actor::Service, Command::PayOrder { order: OrderId(1) });
    assert_eq!(late, Err(CoreError::ReservationExpired { expired_at: Millis(1_001_000) }));
    sim.must(Actor::Service, Command::Tick);
    assert_eq!(sim.state.order(OrderId(1)).unwrap().status, OrderStatus::Expired);
    assert_eq!(sim.state.sku(SkuId(1)).unwrap().available, 5);
}

/// A long seeded run, to show the simulation reaches every order state (a simulation that never
/// pays an order would prove nothing).
#[test]
fn a_long_seeded_run_reaches_every_order_state() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut sim = Sim::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut tracking = std::collections::BTreeSet::new();
    for i in 0..4_000 {
        let step = step().new_tree(&mut runner).unwrap().current();
        // Days pass rarely, so that short-lived coupons and red packets are still used.
        if matches!(step, Step::Hours { .. }) && i % 8 != 0 {
            continue;
        }
        sim.run(step);
        seen.extend(sim.state.orders().map(|(_, o)| o.status.name()));
        tracking.extend(sim.state.shipments().filter_map(|(_, s)| s.tracking.map(|t| t.name())));
    }
    assert_eq!(seen.len(), OrderStatus::ALL.len(), "order states reached: {seen:?}");
    assert!(tracking.contains("delivered"), "tracking states reached: {tracking:?}");
    let l = sim.state.logistics();
    let (c, returns, tickets) = (l.counters(), sim.state.returns().len(), sim.state.tickets().len());
    let reached = l.shipment_count() > 0 && l.tracking_events() > 0;
    assert!(reached && returns > 0 && tickets > 0, "{c:?}, {returns} returns, {tickets} tickets");
    let discounted = (1..)
        .take_while(|&id| sim.state.order(OrderId(id)).is_ok())
        .filter(|&id| !sim.state.order_discounts(OrderId(id)).is_empty())
        .count();
    assert!(discounted > 2, "only {discounted} of {} orders used a coupon", sim.order_count());
    let claims: usize = sim.state.red_packets().map(|(_, p)| p.claims.len()).sum();
    assert!(claims > 10, "only {claims} red-packet shares claimed");
    assert_eq!(replay(&sim.journal).digest(), sim.state.digest());
}

/// The countdown: one millisecond before `starts_at` the sale is refused with the time left; at
/// `starts_at` it opens at the flash price; and a replay of the journal agrees to the millisecond.
#[test]
fn a_campaign_opens_exactly_at_its_start_and_replay_agrees() {
    let mut sim = Sim::new();
    let starts_at = sim.now + 60_000;
    sim.must(
        Actor::Merchant(MerchantId(1)),
        Command::CreateCampaign(NewCampaign {
            sku: SkuId(1),
            flash_price: Amount(10),
            currency: cny(),
            quantity: 2,
            starts_at: Millis(starts_at),
            ends_at: Millis(starts_at + 1_000),
            per_buyer_limit: 1,
        }),
    );
    let order = |buyer| Command::PlaceOrder {
        buyer: BuyerId(buyer),
        lines: vec![LineRequest { sku: SkuId(1), quantity: 1 }],
        coupons: vec![],
        reservation_ttl_ms: 60_000,
    };
    sim.now = starts_at - 1;
    assert_eq!(
        sim.send(Actor::Service, order(1)),
        Err(CoreError::CampaignNotStarted { campaign: CampaignId(1), starts_in_ms: 1 })
    );
    sim.now = starts_at;
    let opened = sim.send(Actor::Service, order(1)).unwrap();
    // The flash price and merchant 1's shipping fee.
    assert!(matches!(opened.outcome(), Outcome::OrderPlaced { total: Amount(510), .. }), "{opened:?}");
    sim.now = starts_at + 1_000;
    let after = sim.send(Actor::Service, order(2)).unwrap();
    assert!(
        matches!(after.outcome(), Outcome::OrderPlaced { total: Amount(1_500), .. }),
        "regular price after the end"
    );
    assert_eq!(replay(&sim.journal).digest(), sim.state.digest());
}

/// A repeat returns exactly the first outcome even when what it names moved on (an order
/// placed, then paid, then refunded with restock; a red-packet share), and so does a repeat
/// against the state restored from its snapshot: remembered outcomes read those fields back.
#[test]
fn repeats_answer_the_first_outcome_after_the_order_moved_on() {
    let mut sim = Sim::new();
    let buyer = BuyerId(1);
    sim.must(Actor::Admin, Command::TopUp { buyer, amount: Amount(1_000_000), currency: cny() });
    // SKU 2 is merchant 2's, whose commission is 2.5%: the payment's commission is not zero.
    let lines = vec![LineRequest { sku: SkuId(2), quantity: 2 }];
    let commands = [
        (Actor::Service, Command::PlaceOrder { buyer, lines, coupons: vec![], reservation_ttl_ms: 60_000 }),
        (Actor::Service, Command::PayOrder { order: OrderId(1) }),
        (Actor::Admin, Command::RefundOrder { order: OrderId(1), restock: true }),
        (
            Actor::Admin,
            Command::CreateRedPacket(NewRedPacket {
                sponsor: Sponsor::Platform,
                amount: Amount(1_000),
                count: 3,
                currency: cny(),
                starts_at: Millis(sim.now),
                ends_at: Millis(sim.now + 60_000),
                seed: 7,
            }),
        ),
        (Actor::Service, Command::ClaimRedPacket { packet: RedPacketId(1), buyer }),
    ];
    let mut firsts = Vec::new();
    for (actor, command) in commands {
        sim.now += 10;
        let outcome = sim.send(actor, command).unwrap();
        assert!(outcome.changed());
        firsts.push((sim.sent.last().unwrap().clone(), outcome.outcome().clone()));
    }
    assert!(matches!(firsts[1].1, Outcome::OrderPaid { commission, .. } if commission.0 > 0));
    let restored = State::decode(&sim.state.encode()).unwrap();
    for (envelope, first) in &firsts {
        for state in [&mut sim.state, &mut restored.clone()] {
            let again = state.apply(&Envelope { at: Millis(sim.now + 1_000), ..envelope.clone() });
            assert_eq!(again, Ok(Applied::Repeated(first.clone())), "{:?}", envelope.command);
        }
    }
}

fn sale(sim: &Sim, quantity: u64, starts_in_ms: u64, lasts_ms: u64) -> Command {
    let starts_at = Millis(sim.now + starts_in_ms);
    Command::CreateNamedCampaign(Box::new(NamedCampaign {
        name: "Midnight phones".into(),
        terms: NewCampaign {
            sku: SkuId(1),
            flash_price: Amount(100),
            currency: cny(),
            quantity,
            starts_at,
            ends_at: starts_at.saturating_add(lasts_ms),
            per_buyer_limit: 2,
        },
    }))
}

fn edit(campaign: u64) -> CampaignEdit {
    CampaignEdit {
        campaign: CampaignId(campaign),
        name: None,
        flash_price: None,
        quantity: None,
        starts_at: None,
        ends_at: None,
        per_buyer_limit: None,
    }
}

fn one_unit(buyer: u64) -> Command {
    Command::PlaceOrder {
        buyer: BuyerId(buyer),
        lines: vec![LineRequest { sku: SkuId(1), quantity: 1 }],
        coupons: vec![],
        reservation_ttl_ms: 60_000,
    }
}

#[test]
fn a_sale_is_edited_freely_before_it_starts_and_only_in_name_quantity_and_end_once_it_runs() {
    let m1 = Actor::Merchant(MerchantId(1));
    let mut sim = Sim::new();
    sim.must(Actor::Admin, Command::Restock { sku: SkuId(1), quantity: 1_000 });
    sim.must(m1, sale(&sim, 5, 1_000, 100_000));
    assert_eq!(sim.state.campaign(CampaignId(1)).unwrap().name, "Midnight phones");
    // Before it starts: any term, by its merchant only.
    let cheaper = CampaignEdit { flash_price: Some(Amount(90)), per_buyer_limit: Some(1), ..edit(1) };
    let rival = sim.send(Actor::Merchant(MerchantId(2)), Command::UpdateCampaign(Box::new(cheaper.clone())));
    assert!(matches!(rival, Err(CoreError::Forbidden(_))), "{rival:?}");
    sim.must(m1, Command::UpdateCampaign(Box::new(cheaper)));
    sim.now += 1_000;
    for buyer in 1..=3 {
        sim.must(Actor::Service, one_unit(buyer));
    }
    // Running: the price, start and per-buyer limit orders were taken under stay.
    for refused in [
        CampaignEdit { flash_price: Some(Amount(80)), ..edit(1) },
        CampaignEdit { starts_at: Some(Millis(sim.now + 5)), ..edit(1) },
        CampaignEdit { per_buyer_limit: Some(3), ..edit(1) },
        CampaignEdit { quantity: Some(2), ..edit(1) },
        CampaignEdit { ends_at: Some(Millis(sim.now)), ..edit(1) },
    ] {
        let r = sim.send(m1, Command::UpdateCampaign(Box::new(refused.clone())));
        assert!(matches!(r, Err(CoreError::OutOfBounds { .. })), "{refused:?}: {r:?}");
    }
    let more = CampaignEdit { name: Some("Midnight phones, more".into()), quantity: Some(3), ..edit(1) };
    sim.must(m1, Command::UpdateCampaign(Box::new(more)));
    let c = sim.state.campaign(CampaignId(1)).unwrap();
    assert_eq!((c.quantity, c.taken, c.name.as_str()), (3, 3, "Midnight phones, more"));
    assert!(matches!(sim.send(Actor::Service, one_unit(4)), Err(CoreError::CampaignSoldOut { .. })));
    assert!(sim.state.audit().ok());
}

#[test]
fn ending_a_running_sale_stops_it_now_and_cancelling_one_frees_its_window() {
    let m1 = Actor::Merchant(MerchantId(1));
    let mut sim = Sim::new();
    sim.must(Actor::Admin, Command::Restock { sku: SkuId(1), quantity: 1_000 });
    sim.must(m1, sale(&sim, 5, 0, 100_000));
    sim.must(Actor::Service, one_unit(1));
    sim.now += 10;
    sim.must(m1, Command::EndCampaign { campaign: CampaignId(1) });
    let c = sim.state.campaign(CampaignId(1)).unwrap();
    assert_eq!((c.ends_at, c.status(Millis(sim.now)), c.taken), (Millis(sim.now), "ended", 1));
    // An ended sale changes no more; the SKU sells at its shelf price again.
    let again = sim.send(m1, Command::EndCampaign { campaign: CampaignId(1) });
    assert_eq!(again, Err(CoreError::CampaignState { status: "ended" }));
    sim.must(Actor::Service, one_unit(2));
    // A sale not started is cancelled: it never opens, and another may take its window.
    sim.must(m1, sale(&sim, 5, 60_000, 60_000));
    sim.must(m1, Command::EndCampaign { campaign: CampaignId(2) });
    assert!(sim.state.campaign(CampaignId(2)).unwrap().cancelled);
    let edit_cancelled = sim.send(m1, Command::UpdateCampaign(Box::new(edit(2))));
    assert_eq!(edit_cancelled, Err(CoreError::CampaignState { status: "cancelled" }));
    sim.must(m1, sale(&sim, 5, 60_000, 60_000));
    sim.now += 60_000;
    sim.must(Actor::Service, one_unit(3));
    let (_, order) = sim.state.orders().last().unwrap();
    assert_eq!(order.lines[0].campaign(), Some(CampaignId(3)));
    assert!(sim.state.audit().ok());
}

#[test]
fn only_the_operator_features_a_sale_and_only_one_that_exists() {
    let mut sim = Sim::new();
    sim.must(Actor::Merchant(MerchantId(1)), sale(&sim, 5, 0, 100_000));
    let by_merchant =
        sim.send(Actor::Merchant(MerchantId(1)), Command::FeatureCampaign { campaign: Some(CampaignId(1)) });
    assert!(matches!(by_merchant, Err(CoreError::Forbidden(_))));
    let unknown = sim.send(Actor::Admin, Command::FeatureCampaign { campaign: Some(CampaignId(9)) });
    assert_eq!(unknown, Err(CoreError::NotFound("campaign")));
    sim.must(Actor::Admin, Command::FeatureCampaign { campaign: Some(CampaignId(1)) });
    assert_eq!(sim.state.featured_campaign(), Some(CampaignId(1)));
    sim.must(Actor::Admin, Command::FeatureCampaign { campaign: None });
    assert_eq!(sim.state.featured_campaign(), None);
}
