//! elevens-admission: the front door in front of the sequencer.
//!
//! Every request is put in a [`Class`] and checked, in this order and all in memory, without
//! touching the state machine:
//!
//! 1. the global in-flight limit ([`adaptive`]): a class may only add work while the commands in
//!    flight are under its threshold — reads under a share of the limit, orders under the limit,
//!    payments (for an order that already exists) only under a hard maximum far above it, so
//!    they are the last thing ever shed;
//! 2. a waiting-room ticket ([`waiting_room`]), if the order carries one: an admitted ticket
//!    replaces the rate limits below;
//! 3. the buyer's rate (GCRA, [`gcra`]) and each hot SKU's rate (Sentinel's hot-parameter limit),
//!    with per-value exceptions.
//!
//! A refusal says why and when to come back. The controller is pure and single-threaded: time
//! comes in as an argument, so tests run on a manual clock; the gateway holds it behind a mutex
//! for the few hundred nanoseconds a check takes.

pub mod adaptive;
pub mod gcra;
pub mod recent;
pub mod waiting_room;

use adaptive::{AdaptiveLimit, AdaptiveRules};
use gcra::{KeyedLimiter, Limited, Quota};
use serde::{Deserialize, Serialize};
use waiting_room::{TicketError, WaitingRoom, WaitingRoomRules};

/// Nanoseconds on the caller's monotonic clock.
pub type Nanos = u64;

/// Priority classes, highest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Acts on an order that already exists: pay, cancel, refund. Shed last.
    Pay,
    /// Creates work: place an order, claim a red packet, and every other change.
    Order,
    /// Reads and searches. Shed first.
    Read,
    /// The operator's own writes (an admin key's: setup, corrections, the clock's tick): shed as
    /// late as payments, so the operator is never locked out under load, and counted apart, so
    /// that setting up a sale does not read as payments admitted.
    Operator,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Pay, Class::Order, Class::Read, Class::Operator];

    pub fn name(self) -> &'static str {
        match self {
            Class::Pay => "pay",
            Class::Order => "order",
            Class::Read => "read",
            Class::Operator => "operator",
        }
    }
}

/// A limit for one key value (a buyer id, a SKU id); `quota: null` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub id: u64,
    pub quota: Option<Quota>,
}

/// Everything an operator can change at runtime. Read from the config file at start, replaced
/// whole through `PUT /v1/admission/rules`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Each buyer's rate of orders and claims; `null`: unlimited.
    pub buyer_quota: Option<Quota>,
    pub buyer_exceptions: Vec<Exception>,
    /// Each SKU's rate of orders (the hot-item limit); `null`: unlimited.
    pub sku_quota: Option<Quota>,
    pub sku_exceptions: Vec<Exception>,
    /// Reads are admitted while the commands in flight are under this share of the limit.
    pub read_share_pct: u8,
    pub adaptive: AdaptiveRules,
    /// Payments (and other acts on existing orders) are admitted while the commands in flight are
    /// under this hard maximum, whatever the adaptive limit says.
    pub in_flight_hard_max: u64,
    pub waiting_room: WaitingRoomRules,
    /// Buyers (and SKUs) whose buckets are remembered at once.
    pub tracked_keys_max: usize,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            buyer_quota: Some(Quota::new(20, 40)),
            buyer_exceptions: Vec::new(),
            sku_quota: Some(Quota::new(200_000, 200_000)),
            sku_exceptions: Vec::new(),
            read_share_pct: 50,
            adaptive: AdaptiveRules::default(),
            in_flight_hard_max: 1 << 20,
            waiting_room: WaitingRoomRules::default(),
            tracked_keys_max: 4_000_000,
        }
    }
}

impl Rules {
    /// Checks the rules before they replace the running ones.
    pub fn check(&self) -> Result<(), String> {
        let quotas = [self.buyer_quota, self.sku_quota].into_iter().flatten();
        let exceptions = self.buyer_exceptions.iter().chain(&self.sku_exceptions).filter_map(|e| e.quota);
        if !quotas.chain(exceptions).all(|q| q.is_valid()) {
            return Err("a quota needs per_s >= 1 and burst >= 1".into());
        }
        if !(1..=100).contains(&self.read_share_pct) {
            return Err("read_share_pct is between 1 and 100".into());
        }
        if self.tracked_keys_max == 0 || self.in_flight_hard_max == 0 {
            return Err("tracked_keys_max and in_flight_hard_max must be positive".into());
        }
        self.adaptive.check()?;
        self.waiting_room.check()
    }
}

/// One request as admission sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub class: Class,
    /// The buyer it is for, when the request names one.
    pub buyer: Option<u64>,
    /// The SKUs an order touches.
    pub skus: &'a [u64],
    /// A waiting-room ticket carried by an order.
    pub ticket: Option<u64>,
    /// The command's scoped idempotency key: a resend of an order already admitted is not
    /// rate-limited again ([`recent::RecentKeys`]).
    pub key: Option<u128>,
}

/// Slots for the keys of admitted orders remembered for resends: 262,144 (2 MiB), a few seconds of
/// an 11.11 peak, longer than a client waits before it resends.
pub const RECENT_KEYS_MAX: usize = 1 << 18;

/// Why a request was not admitted; each has a stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the engine is at its limit; retry after the delay")]
    Overloaded { retry_after: Nanos },
    #[error("this buyer is sending too fast; retry after the delay")]
    RateLimited { retry_after: Nanos },
    #[error(
        "sku {sku} is taking more orders than it can; retry after the delay or take a waiting-room ticket"
    )]
    SkuRateLimited { sku: u64, retry_after: Nanos },
    #[error("waiting-room ticket refused: {0}")]
    Ticket(TicketError),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Overloaded { .. } => "overloaded",
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::SkuRateLimited { .. } => "sku_rate_limited",
            Refusal::Ticket(TicketError::Unknown) => "unknown_ticket",
            Refusal::Ticket(TicketError::NotYours) => "ticket_not_yours",
            Refusal::Ticket(TicketError::NotAdmitted { .. }) => "ticket_not_admitted",
            Refusal::Ticket(TicketError::Used) => "ticket_used",
            Refusal::Ticket(TicketError::WrongOrder) => "ticket_not_for_this_order",
            Refusal::Ticket(TicketError::Full) => "waiting_room_full",
        }
    }

    /// When to come back, if coming back can help.
    pub fn retry_after(&self) -> Option<Nanos> {
        match *self {
            Refusal::Overloaded { retry_after }
            | Refusal::RateLimited { retry_after }
            | Refusal::SkuRateLimited { retry_after, .. } => Some(retry_after),
            Refusal::Ticket(TicketError::NotAdmitted { wait_ms, .. }) => Some(wait_ms.max(1) * 1_000_000),
            Refusal::Ticket(TicketError::Full) => Some(1_000_000_000),
            Refusal::Ticket(_) => None,
        }
    }
}

/// Counts since start, for `/metrics`, `GET /v1/admission` and the bench report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassCounts {
    pub admitted: u64,
    /// Shed, by refusal code.
    pub shed: std::collections::BTreeMap<&'static str, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub limit: u64,
    pub in_flight: u64,
    pub waiting_room_tickets_waiting: usize,
    pub pay: ClassCounts,
    pub order: ClassCounts,
    pub read: ClassCounts,
    pub operator: ClassCounts,
    /// The SKU most recently refused by its rate limit, so a screen can name it.
    pub last_sku_rate_limited: Option<u64>,
}

/// How long an overloaded client is told to wait: long enough for a queue at the target latency
/// to drain, so retries do not arrive as a second wave.
const OVERLOAD_RETRY_MIN: Nanos = 50_000_000;

#[derive(Debug)]
pub struct Admission {
    rules: Rules,
    buyers: KeyedLimiter<u64>,
    skus: KeyedLimiter<u64>,
    limit: AdaptiveLimit,
    in_flight: u64,
    room: WaitingRoom,
    recent: recent::RecentKeys,
    counts: [ClassCounts; 4],
    last_sku_rate_limited: Option<u64>,
}

impl Admission {
    /// `seed` is for ticket numbers (random in production, fixed in tests).
    pub fn new(rules: Rules, now: Nanos, seed: u64) -> Admission {
        let mut admission = Admission {
            buyers: KeyedLimiter::new(None, rules.tracked_keys_max),
            skus: KeyedLimiter::new(None, rules.tracked_keys_max),
            limit: AdaptiveLimit::new(rules.adaptive, now),
            in_flight: 0,
            room: WaitingRoom::new(rules.waiting_room.clone(), seed),
            recent: recent::RecentKeys::new(RECENT_KEYS_MAX),
            counts: Default::default(),
            last_sku_rate_limited: None,
            rules: Rules::default(),
        };
        admission.set_rules(rules);
        admission
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Replaces the rules; buckets, the limit's value and tickets carry over.
    pub fn set_rules(&mut self, rules: Rules) {
        let exceptions = |list: &[Exception]| list.iter().map(|e| (e.id, e.quota)).collect::<Vec<_>>();
        self.buyers.set_rules(rules.buyer_quota, exceptions(&rules.buyer_exceptions));
        self.skus.set_rules(rules.sku_quota, exceptions(&rules.sku_exceptions));
        self.limit.set_rules(rules.adaptive);
        self.room.set_rules(rules.waiting_room.clone());
        self.rules = rules;
    }

    /// Admits one command, or says why not. An admitted command is in flight until
    /// [`Admission::complete`] is called for it.
    pub fn admit(&mut self, request: &Request, now: Nanos) -> Result<(), Refusal> {
        self.admit_in_batch(request, false, now)
    }

    /// Admits one command of a batch; `arrived_idle` says that nothing was in flight when the
    /// batch arrived ([`Admission::in_flight`] was 0). A batch that finds the engine idle is
    /// admitted whole (rate limits aside), however far past the limit its length goes (the
    /// gateway bounds it): cutting it would refuse work an idle engine has room for. Otherwise
    /// each command is checked against the limit as it comes, so under load a batch is cut where
    /// the room ends and the limit is exceeded by nothing.
    pub fn admit_in_batch(
        &mut self,
        request: &Request,
        arrived_idle: bool,
        now: Nanos,
    ) -> Result<(), Refusal> {
        let result = self.check(request, arrived_idle || !self.is_full(request.class), now);
        let counts = &mut self.counts[request.class as usize];
        match &result {
            Ok(()) => {
                counts.admitted += 1;
                self.in_flight += 1;
                self.limit.observe_in_flight(self.in_flight);
            }
            Err(refusal) => {
                *counts.shed.entry(refusal.code()).or_default() += 1;
                if let Refusal::SkuRateLimited { sku, .. } = refusal {
                    self.last_sku_rate_limited = Some(*sku);
                }
            }
        }
        result
    }

    /// The commands in flight at which a command of `class` is shed.
    fn threshold(&self, class: Class) -> u64 {
        let limit = self.limit.limit();
        match class {
            Class::Pay | Class::Operator => self.rules.in_flight_hard_max,
            Class::Order => limit,
            Class::Read => (limit * u64::from(self.rules.read_share_pct) / 100).max(1),
        }
    }

    /// Whether a command of `class` would be shed now for want of room in flight: lets the
    /// gateway refuse a whole batch of such commands before decoding it.
    pub fn is_full(&self, class: Class) -> bool {
        self.in_flight >= self.threshold(class)
    }

    fn check(&mut self, request: &Request, room: bool, now: Nanos) -> Result<(), Refusal> {
        if !room {
            let retry_after = (self.rules.adaptive.latency_target_ms * 2_000_000).max(OVERLOAD_RETRY_MIN);
            return Err(Refusal::Overloaded { retry_after });
        }
        if request.class != Class::Order {
            return Ok(());
        }
        if let Some(ticket) = request.ticket {
            let buyer = request.buyer.unwrap_or(u64::MAX);
            return self.room.redeem(ticket, buyer, request.skus, now, true).map_err(Refusal::Ticket);
        }
        // A resend of an order admitted before: its answer costs the engine a lookup.
        if request.key.is_some_and(|key| self.recent.contains(key)) {
            return Ok(());
        }
        // The SKUs first: a hot item's refusal must not spend the buyer's quota. Checked without
        // spending, then spent, so a multi-line order takes all its tokens or none.
        for &sku in request.skus {
            if let Err(retry_after) = self.skus.conforms(sku, now) {
                return Err(Refusal::SkuRateLimited { sku, retry_after });
            }
        }
        if let Some(buyer) = request.buyer {
            self.buyers.check(buyer, now).map_err(|limited| match limited {
                Limited::Over { retry_after } => Refusal::RateLimited { retry_after },
                Limited::TableFull => Refusal::Overloaded { retry_after: OVERLOAD_RETRY_MIN },
            })?;
        }
        for &sku in request.skus {
            self.skus.check(sku, now).map_err(|limited| match limited {
                Limited::Over { retry_after } => Refusal::SkuRateLimited { sku, retry_after },
                Limited::TableFull => Refusal::Overloaded { retry_after: OVERLOAD_RETRY_MIN },
            })?;
        }
        if let Some(key) = request.key.filter(|_| request.buyer.is_some() || !request.skus.is_empty()) {
            self.recent.insert(key);
        }
        Ok(())
    }

    /// Counts a request shed before it reached [`Admission::admit`] (by the gateway's own bound
    /// on requests in progress).
    pub fn note_shed(&mut self, class: Class, refusal: &Refusal) {
        *self.counts[class as usize].shed.entry(refusal.code()).or_default() += 1;
    }

    /// `commands` admitted commands have their replies, `latency` after admission (`None`: they
    /// never reached the engine, so their time says nothing about it).
    pub fn complete(&mut self, commands: u64, latency: Option<Nanos>, now: Nanos) {
        self.in_flight = self.in_flight.saturating_sub(commands);
        if let Some(latency) = latency {
            self.limit.on_sample(latency, now);
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit.limit()
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }

    /// A ticket in `campaign`'s room, which sells `sku` (the caller has checked it exists).
    pub fn take_ticket(
        &mut self,
        campaign: u64,
        sku: u64,
        buyer: u64,
        now: Nanos,
    ) -> Result<waiting_room::TicketView, Refusal> {
        self.room.take(campaign, sku, buyer, now).map_err(Refusal::Ticket)
    }

    pub fn ticket(&mut self, ticket: u64, now: Nanos) -> Result<waiting_room::TicketView, Refusal> {
        self.room.view(ticket, now).map_err(Refusal::Ticket)
    }

    pub fn stats(&self) -> Stats {
        let [pay, order, read, operator] = self.counts.clone();
        Stats {
            limit: self.limit.limit(),
            in_flight: self.in_flight,
            waiting_room_tickets_waiting: self.room.waiting(),
            pay,
            order,
            read,
            operator,
            last_sku_rate_limited: self.last_sku_rate_limited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rules() -> Rules {
        Rules {
            buyer_quota: Some(Quota::new(1, 2)),
            sku_quota: Some(Quota::new(10, 3)),
            sku_exceptions: vec![Exception { id: 7, quota: None }],
            read_share_pct: 50,
            adaptive: AdaptiveRules { initial: 10, min: 10, max: 10, latency_target_ms: 10, window_ms: 100 },
            in_flight_hard_max: 20,
            ..Rules::default()
        }
    }

    fn order(buyer: u64, skus: &[u64]) -> Request<'_> {
        Request { class: Class::Order, buyer: Some(buyer), skus, ticket: None, key: None }
    }

    const READ: Request<'static> =
        Request { class: Class::Read, buyer: None, skus: &[], ticket: None, key: None };
    const PAY: Request<'static> =
        Request { class: Class::Pay, buyer: Some(1), skus: &[], ticket: None, key: None };

    #[test]
    fn lower_classes_are_shed_first_and_payments_last() {
        let mut admission = Admission::new(rules(), 0, 1);
        // Reads fill half the limit (5 of 10), then are shed while orders still pass.
        for _ in 0..5 {
            admission.admit(&READ, 0).unwrap();
        }
        assert!(matches!(admission.admit(&READ, 0), Err(Refusal::Overloaded { .. })));
        assert!(admission.is_full(Class::Read) && !admission.is_full(Class::Order));
        for buyer in 0..5 {
            admission.admit(&order(buyer, &[7]), 0).unwrap();
        }
        assert!(matches!(admission.admit(&order(99, &[7]), 0), Err(Refusal::Overloaded { .. })));
        // What the gateway asks before decoding a batch: orders are shed, payments are not.
        assert!(admission.is_full(Class::Order) && !admission.is_full(Class::Pay));
        // Payments go on up to the hard maximum (20).
        for _ in 0..10 {
            admission.admit(&PAY, 0).unwrap();
        }
        assert!(matches!(admission.admit(&PAY, 0), Err(Refusal::Overloaded { .. })));
        assert!(admission.is_full(Class::Pay));
        let stats = admission.stats();
        assert_eq!((stats.read.admitted, stats.order.admitted, stats.pay.admitted), (5, 5, 10));
        assert_eq!(stats.read.shed.get("overloaded"), Some(&1));
        // Replies free the room again.
        admission.complete(20, Some(MS), MS);
        admission.admit(&READ, MS).unwrap();
    }

    #[test]
    fn a_refused_order_spends_no_tokens() {
        let mut admission = Admission::new(rules(), 0, 1);
        // SKU 5 allows a burst of 3; buyers 1..=3 take it.
        for buyer in 1..=3 {
            admission.admit(&order(buyer, &[5]), 0).unwrap();
        }
        // Buyer 4 is refused by the hot SKU: its own bucket is untouched (burst 2 still there).
        assert!(matches!(admission.admit(&order(4, &[5]), 0), Err(Refusal::SkuRateLimited { sku: 5, .. })));
        admission.admit(&order(4, &[7]), 0).unwrap();
        admission.admit(&order(4, &[7]), 0).unwrap();
        assert!(matches!(admission.admit(&order(4, &[7]), 0), Err(Refusal::RateLimited { .. })));
        // A two-line order whose second SKU is limited takes no token from its first SKU.
        assert!(admission.admit(&order(8, &[6, 5]), 0).is_err());
        for buyer in 10..13 {
            admission.admit(&order(buyer, &[6]), 0).unwrap();
        }
    }

    #[test]
    fn regression_a_replayed_key_is_rate_limited_like_a_new_order() {
        let mut r = rules();
        r.buyer_quota = Some(Quota { per_s: 1, burst: 1 });
        let mut admission = Admission::new(r, 0, 1);
        let first = Request { key: Some(7), ..order(1, &[5]) };
        admission.admit(&first, 0).unwrap();
        admission.complete(1, None, 0);
        // The same order resent (its answer was lost) passes; a new one is limited.
        admission.admit(&first, MS).unwrap();
        let new = Request { key: Some(8), ..order(1, &[5]) };
        assert!(matches!(admission.admit(&new, MS), Err(Refusal::RateLimited { .. })));
        // A refused key was not admitted: its resend is limited as it was.
        assert!(matches!(admission.admit(&new, 2 * MS), Err(Refusal::RateLimited { .. })));
    }

    #[test]
    fn an_admitted_ticket_replaces_the_rate_limits_once() {
        let mut r = rules();
        r.waiting_room.admit_per_s = 10;
        let mut admission = Admission::new(r, 0, 1);
        for buyer in 1..=3 {
            admission.admit(&order(buyer, &[5]), 0).unwrap();
        }
        let ticket = admission.take_ticket(1, 5, 4, 0).unwrap().ticket;
        let with_ticket = Request { ticket: Some(ticket), ..order(4, &[5]) };
        assert_eq!(
            admission.admit(&with_ticket, 0),
            Err(Refusal::Ticket(TicketError::NotAdmitted { position: 1, wait_ms: 100 }))
        );
        let someone_else = Request { ticket: Some(ticket), ..order(5, &[5]) };
        assert_eq!(admission.admit(&someone_else, 100 * MS), Err(Refusal::Ticket(TicketError::NotYours)));
        // Admitted at 100 ms: past the SKU's limit, once.
        admission.admit(&with_ticket, 100 * MS).unwrap();
        assert_eq!(admission.admit(&with_ticket, 100 * MS), Err(Refusal::Ticket(TicketError::Used)));
    }

    #[test]
    fn rules_are_checked_and_replace_without_resetting() {
        let bad = [
            Rules { buyer_quota: Some(Quota::new(0, 1)), ..Rules::default() },
            Rules { read_share_pct: 0, ..Rules::default() },
            Rules { adaptive: AdaptiveRules { min: 0, ..AdaptiveRules::default() }, ..Rules::default() },
        ];
        assert!(bad.iter().all(|rules| rules.check().is_err()));
        assert_eq!(Rules::default().check(), Ok(()));

        let mut admission = Admission::new(rules(), 0, 1);
        admission.admit(&order(1, &[7]), 0).unwrap();
        admission.admit(&order(1, &[7]), 0).unwrap();
        let mut looser = rules();
        looser.buyer_exceptions = vec![Exception { id: 1, quota: None }];
        admission.set_rules(looser);
        admission.admit(&order(1, &[7]), 0).unwrap();
        assert_eq!(admission.rules().buyer_exceptions.len(), 1);
    }
}
