//! elevens-sim: a deterministic simulation of the engine's durability under faults, driven by one
//! seed (after TigerBeetle's VOPR and FoundationDB's simulator).
//!
//! The real state machine (`elevens-core`) and the real journal and its recovery
//! (`elevens-journal`, over [`disk::SimDisk`]) run the sequencer's protocol: commands are applied
//! in batches, each batch's changes are appended and fsync'd as one group commit, and only then
//! are its answers given. The disk tears writes, loses what was not fsync'd at a crash, fails
//! reads and rots bytes at rest; crashes land between any two disk operations (inside an append,
//! between the write and the fsync, between the fsync and the answers); the clock jumps both
//! ways; restarts come from empty or from a snapshot. After every restart:
//!
//! - recovery refuses damage to acknowledged records by name, and never fails otherwise (a failed
//!   read is retried);
//! - every acknowledged command is there: its key answers its first outcome;
//! - the recovered state is, bit for bit, the replay of the journal's prefix it kept (digest);
//! - every invariant of the audit holds.
//!
//! A failure names its seed and step; `elevens-sim --seed S` replays it exactly. Nothing here
//! reads a clock or the real disk: the same seed gives the same run.

pub mod disk;

use disk::{FaultRates, SimDisk};
use elevens_core::*;
use elevens_journal::{Journal, JournalError, JournalOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MERCHANTS: u64 = 2;
const BUYERS: u64 = 6;
const SKUS: u64 = 5;
/// The most commands the simulated sequencer puts in one group commit.
const BATCH_COMMANDS_MAX: usize = 24;
/// Acknowledged commands re-sent after each restart, to check that they answer their first
/// outcome (the newest, and as many drawn at random).
const RECHECKED_PER_RESTART: usize = 64;
/// Small segments, so recovery crosses many of them.
const SEGMENT_BYTES_MAX: u64 = 2_048;

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Commands to send, repeats and refusals included.
    pub commands: u64,
    pub rates: FaultRates,
    /// After a restart, the chance in a million that a synced byte of an earlier segment rots.
    pub rot_ppm: u32,
}

impl Options {
    pub fn new(seed: u64, commands: u64) -> Options {
        Options {
            seed,
            commands,
            rates: FaultRates { crash_ppm: 3_000, read_error_ppm: 20_000 },
            rot_ppm: 200_000,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub seed: u64,
    pub commands: u64,
    pub batches: u64,
    pub journaled: u64,
    pub acknowledged: u64,
    pub crashes: u64,
    pub clean_stops: u64,
    pub restarts_from_snapshot: u64,
    pub torn_bytes_cut: u64,
    pub unsynced_bytes_lost: u64,
    pub read_errors: u64,
    pub rot_refused: u64,
    pub repeats_checked: u64,
    pub clock_jumps_back: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("seed {seed}, command {command}: {why}")]
pub struct Failure {
    pub seed: u64,
    pub command: u64,
    pub why: String,
}

fn cny() -> Currency {
    Currency::parse("CNY").expect("CNY is an ISO 4217 code")
}

/// An acknowledged command and its answer.
#[derive(Clone, Debug)]
struct Acked {
    envelope: Envelope,
    outcome: Outcome,
}

struct Sim {
    rng: StdRng,
    disk: SimDisk,
    journal: Option<Journal>,
    state: State,
    /// Every envelope appended (or being appended), in record order: the journal's truth.
    journaled: Vec<Envelope>,
    /// The last record whose batch was acknowledged.
    acked_seq: u64,
    acked: Vec<Acked>,
    /// Snapshots of durable states: (the last record in it, the encoded state).
    snapshots: Vec<(u64, Vec<u8>)>,
    /// At the last crash or stop: the records appended and the digest of the state in memory.
    before_crash: Option<(u64, String)>,
    now: u64,
    next_key: u128,
    stats: Stats,
    options: Options,
}

pub fn run(options: Options) -> Result<Stats, Failure> {
    let disk = SimDisk::new(options.seed ^ 0x5EED_D15C, options.rates);
    let mut sim = Sim {
        rng: StdRng::seed_from_u64(options.seed),
        disk,
        journal: None,
        state: State::new(),
        journaled: Vec::new(),
        acked_seq: 0,
        acked: Vec::new(),
        snapshots: Vec::new(),
        before_crash: None,
        now: 1_800_000_000_000,
        next_key: 1,
        stats: Stats { seed: options.seed, ..Stats::default() },
        options,
    };
    sim.restart()?;
    sim.set_up()?;
    while sim.stats.commands < sim.options.commands {
        sim.batch()?;
    }
    sim.crash_and_restart()?;
    sim.check_replay_from_empty()?;
    Ok(sim.stats)
}

/// How far back a repeat looks for its first acknowledgement (repeats pick among the newest 50).
const ACKED_SCAN: usize = 10_000;

impl Sim {
    fn fail(&self, why: impl Into<String>) -> Failure {
        Failure { seed: self.options.seed, command: self.stats.commands, why: why.into() }
    }

    /// The market every run starts from, in batches like any other (crashes included).
    fn set_up(&mut self) -> Result<(), Failure> {
        let mut setup: Vec<(Actor, Command)> = Vec::new();
        for m in 0..MERCHANTS {
            setup
                .push((Actor::Admin, Command::CreateMerchant { name: format!("m{m}"), commission_bps: 250 }));
        }
        for b in 0..BUYERS {
            setup.push((Actor::Admin, Command::CreateBuyer { name: format!("b{b}") }));
        }
        for s in 0..SKUS {
            setup.push((
                Actor::Admin,
                Command::CreateSku(Box::new(NewSku {
                    merchant: MerchantId(s % MERCHANTS + 1),
                    title: format!("sku {s}"),
                    description: String::new(),
                    price: Amount(1_000 + 333 * s),
                    currency: cny(),
                    initial_stock: 20 + s,
                    warehouse: None,
                })),
            ));
        }
        for b in 1..=BUYERS {
            setup.push((
                Actor::Service,
                Command::TopUp { buyer: BuyerId(b), amount: Amount(50_000), currency: cny() },
            ));
        }
        // Merchant 1 ships from a small warehouse (days fill, parcels roll over), merchant 2
        // has none; half the buyers have an address the carrier serves.
        setup.push((
            Actor::Admin,
            Command::CreateWarehouse(Box::new(NewWarehouse {
                merchant: MerchantId(1),
                name: "w".into(),
                region: "CN-ZJ".into(),
                capacity_per_day: 3,
                cutoff_minute: 16 * 60,
                utc_offset_minutes: 480,
                closed_weekdays: 1 << 6,
                closed_days: vec![],
            })),
        ));
        let lanes = vec![NewLane { from: "CN-ZJ".into(), to: "CN-BJ".into(), p50_days: 1, p90_days: 2 }];
        setup.push((Actor::Admin, Command::CreateCarrier(Box::new(NewCarrier { name: "c".into(), lanes }))));
        setup.push((
            Actor::Admin,
            Command::SetShippingFee { merchant: MerchantId(1), currency: cny(), fee: Amount(300) },
        ));
        for b in (1..=BUYERS).step_by(2) {
            let address =
                Command::SetAddress { buyer: BuyerId(b), region: "CN-BJ".into(), text: format!("road {b}") };
            setup.push((Actor::Service, address));
        }
        // Until every set-up command is acknowledged (a crash may take some), send what is missing.
        while let Some(missing) = self.missing_setup(&setup) {
            let commands =
                setup[missing..].iter().map(|(a, c)| (*a, c.clone(), Some(self.key_of(c)))).collect();
            self.commit(commands)?;
        }
        Ok(())
    }

    /// The set-up commands are keyed by their position, so a resend is a repeat.
    fn key_of(&self, command: &Command) -> Idempotency {
        let text = format!("{command:?}");
        Idempotency { key: u128::from(fnv(text.as_bytes())) << 64 | 0xA11, fingerprint: fnv(text.as_bytes()) }
    }

    fn missing_setup(&self, setup: &[(Actor, Command)]) -> Option<usize> {
        let done = |c: &Command| self.acked.iter().any(|a| a.envelope.idempotency == Some(self.key_of(c)));
        setup.iter().position(|(_, c)| !done(c))
    }

    /// One batch of random commands.
    fn batch(&mut self) -> Result<(), Failure> {
        // The clock: forward mostly, sometimes back (the sequencer never lets it go back).
        if self.rng.random_ratio(1, 20) {
            self.now = self.now.saturating_sub(self.rng.random_range(0..5_000));
            self.stats.clock_jumps_back += 1;
        } else if self.rng.random_ratio(1, 100) {
            // Hours pass: days end, parcels roll over, promised dates are missed.
            self.now += self.rng.random_range(3_600_000..30 * 3_600_000);
        } else {
            self.now += self.rng.random_range(0..3_000);
        }
        let n = self.rng.random_range(1..=BATCH_COMMANDS_MAX);
        let commands = (0..n).map(|_| self.random_command()).collect();
        self.commit(commands)
    }

    fn random_command(&mut self) -> (Actor, Command, Option<Idempotency>) {
        let rng = &mut self.rng;
        // A repeat of an acknowledged command, now and then.
        if !self.acked.is_empty() && rng.random_ratio(1, 15) {
            let pick = self.acked.len() - 1 - rng.random_range(0..self.acked.len().min(50));
            let first = &self.acked[pick].envelope;
            return (first.actor, first.command.clone(), first.idempotency);
        }
        let buyer = BuyerId(rng.random_range(1..=BUYERS));
        let orders = (1..).find(|&id| self.state.order(OrderId(id)).is_err()).unwrap_or(1) - 1;
        let order = OrderId(orders.saturating_sub(rng.random_range(0..8)).max(1));
        let owner = self.state.order(order).map(|o| (o.buyer(), o.merchant())).ok();
        let shipments = self.state.shipments().len() as u64;
        let shipment = ShipmentId(shipments.saturating_sub(rng.random_range(0..8)).max(1));
        let shipper = self
            .state
            .shipment(shipment)
            .ok()
            .and_then(|s| self.state.order(s.order()).ok())
            .map(|o| o.merchant());
        let returns = self.state.returns().len() as u64;
        let ret = ReturnId(returns.saturating_sub(rng.random_range(0..4)).max(1));
        let returner = self
            .state
            .return_request(ret)
            .ok()
            .and_then(|r| self.state.order(r.order).ok())
            .map(|o| o.merchant());
        let first_line = self.state.order(order).ok().and_then(|o| o.lines.first().map(|l| l.sku));
        let line = |q: u32| first_line.map(|sku| vec![LineRequest { sku, quantity: q }]).unwrap_or_default();
        let (actor, command) = match rng.random_range(0..132) {
            0..=34 => {
                let lines = (0..rng.random_range(1..=2))
                    .map(|_| LineRequest {
                        sku: SkuId(rng.random_range(1..=SKUS)),
                        quantity: rng.random_range(1..=3),
                    })
                    .collect();
                let coupons =
                    if rng.random_ratio(1, 5) { vec![CouponId(rng.random_range(1..=3))] } else { vec![] };
                let ttl = rng.random_range(1_000..120_000);
                (Actor::Buyer(buyer), Command::PlaceOrder { buyer, lines, coupons, reservation_ttl_ms: ttl })
            }
            35..=54 => (Actor::Buyer(owner.map_or(buyer, |o| o.0)), Command::PayOrder { order }),
            55..=61 => (Actor::Buyer(owner.map_or(buyer, |o| o.0)), Command::CancelOrder { order }),
            62..=67 => {
                let actor = owner.map_or(Actor::Admin, |o| Actor::Merchant(o.1));
                (actor, Command::RefundOrder { order, restock: rng.random_bool(0.5) })
            }
            68..=75 => (
                Actor::Service,
                Command::TopUp { buyer, amount: Amount(rng.random_range(1..20_000)), currency: cny() },
            ),
            76..=79 => (
                Actor::Admin,
                Command::Restock {
                    sku: SkuId(rng.random_range(1..=SKUS)),
                    quantity: rng.random_range(1..10),
                },
            ),
            80..=82 => (
                Actor::Admin,
                Command::CreateCoupon(Box::new(NewCoupon {
                    sponsor: Sponsor::Platform,
                    rule: DiscountRule::Fixed { amount: Amount(rng.random_range(1..300)) },
                    currency: cny(),
                    min_spend: Amount(rng.random_range(0..2_000)),
                    starts_at: Millis(self.now.saturating_sub(1_000)),
                    ends_at: Millis(self.now + rng.random_range(1_000..600_000)),
                    per_buyer_limit: rng.random_range(1..3),
                    budget_amount: Some(Amount(rng.random_range(1..5_000))),
                    budget_uses: None,
                })),
            ),
            83..=85 => (
                Actor::Admin,
                Command::CreateRedPacket(NewRedPacket {
                    sponsor: Sponsor::Platform,
                    amount: Amount(rng.random_range(10..5_000)),
                    count: rng.random_range(1..8),
                    currency: cny(),
                    starts_at: Millis(self.now),
                    ends_at: Millis(self.now + rng.random_range(1_000..100_000)),
                    seed: rng.random(),
                }),
            ),
            86..=93 => (
                Actor::Service,
                Command::ClaimRedPacket { packet: RedPacketId(rng.random_range(1..=4)), buyer },
            ),
            94..=96 => {
                (Actor::Admin, Command::CloseRedPacket { packet: RedPacketId(rng.random_range(1..=4)) })
            }
            100..=104 => (
                shipper.map_or(Actor::Admin, Actor::Merchant),
                if rng.random_ratio(1, 8) {
                    Command::CancelShipment { shipment }
                } else {
                    Command::DispatchShipment { shipment }
                },
            ),
            105..=110 => {
                let events = (0..rng.random_range(1..=3))
                    .map(|_| NewTrackingEvent {
                        shipment,
                        key: rng.random_range(0..12),
                        status: logistics::TrackingStatus::ALL[rng.random_range(0..9)],
                        occurred_at: Millis(self.now.saturating_sub(rng.random_range(0..100_000))),
                    })
                    .collect();
                (Actor::Carrier(CarrierId(1)), Command::RecordTracking { events })
            }
            111..=113 => (
                owner.map_or(Actor::Admin, |o| Actor::Merchant(o.1)),
                Command::RefundLines {
                    order,
                    lines: line(rng.random_range(0..3)),
                    shipping: Amount(rng.random_range(0..400)),
                    restock: rng.random_bool(0.5),
                },
            ),
            114..=115 => (
                Actor::Buyer(owner.map_or(buyer, |o| o.0)),
                Command::RequestReturn {
                    order,
                    lines: line(rng.random_range(1..3)),
                    reason: logistics::ReturnReason::Damaged,
                },
            ),
            116..=118 => {
                let actor = returner.map_or(Actor::Admin, Actor::Merchant);
                let command = match rng.random_range(0..3) {
                    0 => Command::DecideReturn { ret, approve: rng.random_bool(0.8) },
                    1 => Command::ReceiveReturn { ret, restock: rng.random_bool(0.5) },
                    _ => Command::RefundReturn { ret, shipping: Amount(rng.random_range(0..300)) },
                };
                (actor, command)
            }
            119..=120 => (
                Actor::Buyer(owner.map_or(buyer, |o| o.0)),
                Command::OpenTicket { order, subject: "where is it".into() },
            ),
            121 => {
                let tickets = self.state.tickets().len() as u64;
                let ticket = TicketId(tickets.saturating_sub(rng.random_range(0..4)).max(1));
                let merchant = self.state.ticket(ticket).map_or(MerchantId(1), |t| t.merchant);
                let status = logistics::TicketStatus::ALL[rng.random_range(1..5)];
                (Actor::Merchant(merchant), Command::UpdateTicket { ticket, status })
            }
            122..=123 => {
                // Its merchant mostly, another merchant now and then (refused); a price below a
                // live campaign's flash price now and then (refused).
                let sku = SkuId(rng.random_range(1..=SKUS));
                let owner = self.state.sku(sku).map_or(MerchantId(1), |s| s.merchant());
                let merchant =
                    if rng.random_ratio(3, 4) { owner } else { MerchantId(rng.random_range(1..=MERCHANTS)) };
                let edit = SkuEdit {
                    sku,
                    title: rng.random_bool(0.5).then(|| format!("edited {}", rng.random::<u16>())),
                    description: None,
                    price: rng.random_bool(0.7).then(|| Amount(rng.random_range(1..2_000))),
                };
                (Actor::Merchant(merchant), Command::UpdateSku(Box::new(edit)))
            }
            124..=127 => {
                let (sku, quantity) = (SkuId(rng.random_range(1..=SKUS)), rng.random_range(0..=3));
                (Actor::Buyer(buyer), Command::SetCartLine { buyer, sku, quantity })
            }
            128..=130 => {
                // The cart mostly, lines of several stores now and then; a coupon (a store's,
                // the platform's, or the cross-store discount) now and then.
                let lines = if rng.random_ratio(2, 3) {
                    vec![]
                } else {
                    (1..=SKUS)
                        .filter_map(|s| {
                            let quantity = rng.random_range(0..=2);
                            (quantity > 0).then_some(LineRequest { sku: SkuId(s), quantity })
                        })
                        .collect()
                };
                let coupons =
                    if rng.random_ratio(1, 3) { vec![CouponId(rng.random_range(1..=4))] } else { vec![] };
                (Actor::Buyer(buyer), Command::Checkout { buyer, lines, coupons })
            }
            131 => (
                Actor::Admin,
                Command::CreateCoupon(Box::new(NewCoupon {
                    sponsor: Sponsor::Platform,
                    rule: DiscountRule::CrossStore {
                        every: Amount(rng.random_range(100..2_000)),
                        off: Amount(rng.random_range(1..300)),
                        cap: rng.random_bool(0.5).then(|| Amount(rng.random_range(1..900))),
                        merchants_fund: rng.random_bool(0.5),
                    },
                    currency: cny(),
                    min_spend: Amount(rng.random_range(0..2_000)),
                    starts_at: Millis(self.now.saturating_sub(1_000)),
                    ends_at: Millis(self.now + rng.random_range(1_000..600_000)),
                    per_buyer_limit: rng.random_range(1..10),
                    budget_amount: Some(Amount(rng.random_range(1..5_000))),
                    budget_uses: None,
                })),
            ),
            _ => {
                let starts_at = Millis(self.now + rng.random_range(0..20_000));
                let campaign = NewCampaign {
                    sku: SkuId(rng.random_range(1..=SKUS)),
                    flash_price: Amount(rng.random_range(1..1_000)),
                    currency: cny(),
                    quantity: rng.random_range(1..10),
                    starts_at,
                    ends_at: Millis(starts_at.0 + rng.random_range(1..60_000)),
                    per_buyer_limit: rng.random_range(1..4),
                };
                (Actor::Admin, Command::CreateCampaign(campaign))
            }
        };
        let key = self.next_key;
        self.next_key += 1;
        let fingerprint = fnv(format!("{command:?}").as_bytes());
        (actor, command, Some(Idempotency { key, fingerprint }))
    }

    /// The sequencer's protocol for one batch: apply each command, append the changes and fsync
    /// them as one group commit, then answer; a crash anywhere in it is a crash of the engine.
    fn commit(&mut self, commands: Vec<(Actor, Command, Option<Idempotency>)>) -> Result<(), Failure> {
        let at = Millis(self.now.max(self.state.clock().0));
        let mut items: Vec<(Envelope, Result<Applied, CoreError>)> = Vec::new();
        // Time-driven work first, as the sequencer injects it.
        let due = self.state.next_due().is_some_and(|d| d <= at);
        let tick = due.then_some((Actor::Admin, Command::Tick, None));
        for (actor, command, idempotency) in tick.into_iter().chain(commands) {
            // The read-only role, sent the same command now and then: refused, whatever it is.
            // (Without the key: the gateway scopes keys to their actor, so a viewer never shares one.)
            if self.rng.random_ratio(1, 8) {
                let viewer =
                    Envelope { actor: Actor::Viewer, idempotency: None, at, command: command.clone() };
                if let Ok(applied) = self.state.apply(&viewer) {
                    return Err(
                        self.fail(format!("a viewer's {:?} was applied: {applied:?}", viewer.command))
                    );
                }
            }
            let envelope = Envelope { actor, idempotency, at, command };
            let result = self.state.apply(&envelope);
            // Another merchant's key never edits a SKU.
            if let (Command::UpdateSku(edit), Actor::Merchant(m), Ok(Applied::Changed(_))) =
                (&envelope.command, actor, &result)
            {
                if self.state.sku(edit.sku).is_ok_and(|s| s.merchant() != m) {
                    return Err(self.fail(format!("merchant {m:?} edited another's SKU: {edit:?}")));
                }
            }
            if envelope.idempotency.is_some() {
                self.stats.commands += 1;
            }
            items.push((envelope, result));
        }
        let changes: Vec<&Envelope> =
            items.iter().filter(|(_, r)| matches!(r, Ok(Applied::Changed(_)))).map(|(e, _)| e).collect();
        let records: Vec<Vec<u8>> =
            changes.iter().map(|e| postcard::to_stdvec(e).unwrap_or_default()).collect();
        self.journaled.extend(changes.into_iter().cloned());
        self.stats.batches += 1;
        let journal = self.journal.as_mut().ok_or_else(|| Failure {
            seed: self.options.seed,
            command: self.stats.commands,
            why: "no journal".into(),
        })?;
        match journal.append_batch(records.iter().map(Vec::as_slice)) {
            Ok(last) => {
                if last != self.journaled.len() as u64 {
                    return Err(self.fail(format!(
                        "the journal says record {last}, {} were appended",
                        self.journaled.len()
                    )));
                }
                // A crash between the fsync and the answers: durable, not acknowledged.
                if self.rng.random_ratio(1, 400) {
                    return self.crash_and_restart();
                }
                self.acked_seq = last;
                for (envelope, result) in items {
                    match result {
                        Ok(Applied::Changed(outcome)) if envelope.idempotency.is_some() => {
                            self.acked.push(Acked { envelope, outcome });
                        }
                        // A repeat of an acknowledged command is remembered from its first
                        // time, which is what the retention counts from; one first applied
                        // before a crash, unanswered, is acknowledged now.
                        Ok(Applied::Repeated(outcome))
                            if !self
                                .acked
                                .iter()
                                .rev()
                                .take(ACKED_SCAN)
                                .any(|a| a.envelope.idempotency == envelope.idempotency) =>
                        {
                            self.acked.push(Acked { envelope, outcome });
                        }
                        _ => {}
                    }
                }
                self.stats.acknowledged = self.acked.len() as u64;
                self.stats.journaled = last;
                if self.rng.random_ratio(1, 60) {
                    self.snapshots.push((last, self.state.encode()));
                    if self.snapshots.len() > 3 {
                        self.snapshots.remove(0);
                    }
                }
                if self.rng.random_ratio(1, 300) {
                    return self.clean_stop_and_restart();
                }
                Ok(())
            }
            Err(_) if self.disk.has_crashed() => self.crash_and_restart(),
            Err(error) => Err(self.fail(format!("an append failed without a crash: {error}"))),
        }
    }

    fn clean_stop_and_restart(&mut self) -> Result<(), Failure> {
        self.before_crash = Some((self.journaled.len() as u64, self.state.digest()));
        if let Some(journal) = self.journal.take() {
            if journal.close_clean().is_err() {
                // The crash landed in the clean stop itself.
                return self.crash_and_restart();
            }
        }
        self.stats.clean_stops += 1;
        self.disk.restart();
        self.recover()
    }

    fn crash_and_restart(&mut self) -> Result<(), Failure> {
        // What the engine had in memory: every record appended so far applied.
        self.before_crash = Some((self.journaled.len() as u64, self.state.digest()));
        self.disk.crash();
        self.journal = None;
        self.stats.crashes += 1;
        self.stats.unsynced_bytes_lost += self.disk.restart();
        self.recover()
    }

    fn restart(&mut self) -> Result<(), Failure> {
        self.journal = None;
        self.recover()
    }

    /// Recovers as a start does, rots a byte now and then to see it refused, and checks.
    fn recover(&mut self) -> Result<(), Failure> {
        let rot = self.maybe_rot();
        let (state, journal, torn) = loop {
            // A rotted byte may sit in a segment a snapshot covers, which a start does not read.
            let from_snapshot = rot.is_none() && self.rng.random_bool(0.5);
            match self.open(from_snapshot) {
                Ok(opened) => {
                    if rot.is_some() {
                        return Err(self.fail(format!("a rotted byte was not refused: {rot:?}")));
                    }
                    break opened;
                }
                Err(JournalError::Io { .. }) if self.disk.has_crashed() => {
                    // A crash during recovery itself (it cuts a torn tail, creates a segment).
                    self.stats.crashes += 1;
                    self.stats.unsynced_bytes_lost += self.disk.restart();
                }
                Err(JournalError::Io { .. }) => {} // a latent read error: read again
                Err(JournalError::Corrupt { .. }) if rot.is_some() => {
                    self.stats.rot_refused += 1;
                    self.disk.repair(rot.as_ref().unwrap_or(&(String::new(), 0, 0)));
                    return self.recover_after_repair();
                }
                Err(error) => return Err(self.fail(format!("recovery failed: {error}"))),
            }
        };
        self.stats.torn_bytes_cut += torn;
        self.stats.read_errors = self.disk.read_errors();
        self.state = state;
        self.journal = Some(journal);
        self.check()
    }

    fn recover_after_repair(&mut self) -> Result<(), Failure> {
        // The repaired disk recovers like any other; no second rot on the way.
        let rot_ppm = std::mem::replace(&mut self.options.rot_ppm, 0);
        let recovered = self.recover();
        self.options.rot_ppm = rot_ppm;
        recovered
    }

    /// Flips a synced byte of a segment before the last one (every byte there is durable, and
    /// a later batch follows it: damage there is corruption by the journal's own rule).
    fn maybe_rot(&mut self) -> Option<(String, usize, u8)> {
        if self.options.rot_ppm == 0 || !self.rng.random_ratio(self.options.rot_ppm, 1_000_000) {
            return None;
        }
        let segments = self.disk.segments();
        let earlier = segments.len().checked_sub(1).filter(|&n| n > 0)?;
        let name = segments[self.rng.random_range(0..earlier)].clone();
        self.disk.rot(&name)
    }

    fn open(&mut self, from_snapshot: bool) -> Result<(State, Journal, u64), JournalError> {
        let mut state = State::new();
        let snapshot = if from_snapshot { self.snapshots.last() } else { None };
        if let Some((seq, bytes)) = snapshot {
            state =
                State::decode(bytes).map_err(|e| JournalError::Replay { seq: *seq, why: e.to_string() })?;
            self.stats.restarts_from_snapshot += 1;
        }
        let options = JournalOptions { segment_bytes_max: SEGMENT_BYTES_MAX };
        let after = state.applied();
        let (journal, recovered) = Journal::open_in(self.disk.storage(), options, after, |seq, payload| {
            let envelope: Envelope = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
            match state.apply(&envelope) {
                Ok(Applied::Changed(_)) if state.applied() == seq => Ok(()),
                other => Err(format!("replay diverged at record {seq}: {other:?}")),
            }
        })?;
        Ok((state, journal, recovered.torn_bytes_cut))
    }

    /// The invariants after a restart.
    fn check(&mut self) -> Result<(), Failure> {
        let kept = self.state.applied();
        if kept < self.acked_seq {
            return Err(
                self.fail(format!("acknowledged records lost: kept {kept}, acknowledged {}", self.acked_seq))
            );
        }
        if kept > self.journaled.len() as u64 {
            return Err(
                self.fail(format!("{kept} records recovered, {} were ever appended", self.journaled.len()))
            );
        }
        // What a crash took was never acknowledged; the journal goes on from what it kept.
        self.journaled.truncate(kept as usize);
        self.snapshots.retain(|(seq, _)| *seq <= kept);
        self.stats.journaled = kept;
        // Bit for bit what the engine had, if it kept every record; else the replay of what it
        // kept, from the newest snapshot below it.
        let expected = match self.before_crash.take() {
            Some((appended, digest)) if appended == kept => digest,
            _ => self.replayed(self.snapshots.last().map(|(seq, bytes)| (*seq, bytes.as_slice())))?.digest(),
        };
        if expected != self.state.digest() {
            return Err(self.fail(format!(
                "the recovered state (record {kept}) differs from the replay of its journal"
            )));
        }
        let audit = self.state.audit();
        if !audit.ok() {
            return Err(self.fail(format!("an invariant broke: {:?}", audit.checks.iter().find(|c| !c.ok))));
        }
        // Acknowledged commands answer their first outcome.
        let n = self.acked.len();
        let mut picks: Vec<usize> = (n.saturating_sub(RECHECKED_PER_RESTART / 2)..n).collect();
        picks.extend((0..RECHECKED_PER_RESTART / 2).filter(|_| n > 0).map(|_| self.rng.random_range(0..n)));
        let later = Millis(self.now.max(self.state.clock().0));
        for i in picks {
            let Acked { envelope, outcome } = &self.acked[i];
            // Forgotten by the second: within a second of the retention it may be gone.
            if later.0.saturating_sub(envelope.at.0) + 2_000 >= limits::IDEMPOTENCY_RETENTION_MS {
                continue;
            }
            let again = Envelope { at: later, ..envelope.clone() };
            match self.state.apply(&again) {
                Ok(Applied::Repeated(first)) if &first == outcome => self.stats.repeats_checked += 1,
                other => {
                    return Err(
                        self.fail(format!("acknowledged {envelope:?} answered {other:?}, first {outcome:?}"))
                    )
                }
            }
        }
        Ok(())
    }
}

impl Sim {
    /// The journal's records replayed onto a snapshot (or from empty).
    fn replayed(&self, snapshot: Option<(u64, &[u8])>) -> Result<State, Failure> {
        let (mut state, from) = match snapshot {
            Some((seq, bytes)) => {
                (State::decode(bytes).map_err(|e| self.fail(format!("a snapshot: {e}")))?, seq)
            }
            None => (State::new(), 0),
        };
        for envelope in &self.journaled[from as usize..] {
            if !matches!(state.apply(envelope), Ok(Applied::Changed(_))) {
                return Err(self.fail("the journal's records do not replay"));
            }
        }
        Ok(state)
    }

    /// At the end of a run: the whole journal from empty gives the state, bit for bit.
    fn check_replay_from_empty(&self) -> Result<(), Failure> {
        if self.replayed(None)?.digest() != self.state.digest() {
            return Err(self.fail("the replay of the whole journal from empty differs from the state"));
        }
        Ok(())
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    // FNV-1a: a fixed, portable hash for the simulation's own keys.
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
