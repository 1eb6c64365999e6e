//! Promotions: flash-sale campaigns ([`campaigns`]), and the two that move money, coupons (money
//! off an order, within a budget) and red packets (a pool split into random shares). Coupons and
//! red packets live in the state machine and the ledger, with the same guarantees as orders.
//!
//! Coupon money: a merchant-funded discount is money the merchant does not receive; a
//! platform-funded one is paid to the merchant by the platform at payment time (a
//! `coupon_subsidy` transfer from the external account, the platform's marketing budget), and
//! taken back on refund. The budget (uses and money) is held when the order is placed and given
//! back if the order is cancelled, expires or is refunded.
//!
//! Red-packet money: the whole pool moves from the sponsor into the pool's escrow account when it
//! is created, from escrow to the buyer on each claim, and what is left back to the sponsor when
//! the pool closes, so every escrow is empty once its pool is closed.

pub mod campaigns;

pub use campaigns::Campaign;

use crate::command::{DiscountRule, NewCoupon, NewRedPacket, Outcome};
use crate::error::{out_of_bounds, CoreError};
use crate::ledger::{Leg, Owner, TransferKind};
use crate::limits::*;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    /// As created; never changes.
    pub terms: NewCoupon,
    pub disabled: bool,
    /// Money taken off by orders that hold the coupon (pending or paid).
    pub used_amount: Amount,
    /// Orders that hold the coupon.
    pub used_count: u64,
    pub used_by_buyer: BTreeMap<BuyerId, u32>,
    /// `used_amount` and `used_count` when it was first disabled: that answer is rendered as of
    /// then (orders that held it may be cancelled later).
    pub used_when_disabled: Option<(Amount, u64)>,
}

impl Coupon {
    pub fn is_active(&self, now: Millis) -> bool {
        !self.disabled && self.terms.starts_at <= now && now < self.terms.ends_at
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedPacket {
    /// As created; never changes.
    pub terms: NewRedPacket,
    pub claimed_amount: Amount,
    /// Each buyer's share. A buyer appears at most once.
    pub claims: BTreeMap<BuyerId, Amount>,
    pub closed: bool,
    /// What went back to the sponsor when the pool closed.
    pub returned: Amount,
    /// When it was funded, and when it closed (0 while open): the answers to its creation and
    /// its closing are rendered as of then.
    pub created_at: Millis,
    pub closed_at: Millis,
}

impl RedPacket {
    pub fn is_open(&self, now: Millis) -> bool {
        !self.closed && self.terms.starts_at <= now && now < self.terms.ends_at
    }

    pub fn remaining(&self) -> Amount {
        Amount(self.terms.amount.0 - self.claimed_amount.0 - self.returned.0)
    }
}

/// A coupon's money off `base`, rounded down, never more than `base`.
pub fn discount(rule: DiscountRule, base: Amount) -> Amount {
    let off = match rule {
        DiscountRule::Fixed { amount } => amount,
        DiscountRule::Percent { bps, cap } => {
            let off = base.basis_points(bps);
            cap.map_or(off, |cap| off.min(cap))
        }
        DiscountRule::CrossStore { every, off, cap, .. } => {
            let off = off.checked_mul(base.0 / every.0.max(1)).unwrap_or(Amount(AMOUNT_MAX));
            cap.map_or(off, |cap| off.min(cap))
        }
    };
    off.min(base)
}

/// SplitMix64: a tiny, well-mixed, stable generator. Hand-written so that the shares of a pool
/// never change with a dependency's version (replay must pay the same shares forever).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The size of the next share of a pool with `remaining` money for `left` shares (the "double
/// mean" split): uniform in `[1, 2 * remaining / left]`, but leaving at least one minor unit for
/// each share after it; the last share takes exactly what is left, so the shares sum to the pool.
pub fn red_packet_share(seed: u64, index: u32, remaining: u64, left: u32) -> u64 {
    debug_assert!(left >= 1 && remaining >= u64::from(left));
    if left == 1 {
        return remaining;
    }
    let left = u64::from(left);
    let max = (2 * (remaining / left)).min(remaining - (left - 1)).max(1);
    1 + splitmix64(seed ^ splitmix64(u64::from(index))) % max
}

impl State {
    pub fn coupon(&self, id: CouponId) -> Result<&Coupon, CoreError> {
        id.index().and_then(|i| self.coupons.get(i)).ok_or_else(|| CoreError::NotFound("coupon"))
    }

    pub fn coupons(&self) -> impl DoubleEndedIterator<Item = (CouponId, &Coupon)> + ExactSizeIterator {
        self.coupons.iter().enumerate().map(|(i, c)| (CouponId::from_index(i), c))
    }

    pub fn red_packet(&self, id: RedPacketId) -> Result<&RedPacket, CoreError> {
        id.index().and_then(|i| self.red_packets.get(i)).ok_or_else(|| CoreError::NotFound("red packet"))
    }

    pub fn red_packets(
        &self,
    ) -> impl DoubleEndedIterator<Item = (RedPacketId, &RedPacket)> + ExactSizeIterator {
        self.red_packets.iter().enumerate().map(|(i, p)| (RedPacketId::from_index(i), p))
    }

    fn check_sponsor(&self, actor: Actor, sponsor: Sponsor) -> Result<(), CoreError> {
        if let Sponsor::Merchant(m) = sponsor {
            self.merchant(m)?;
        }
        if !actor.may_sponsor(sponsor) {
            return Err(CoreError::Forbidden("sponsor promotions for someone else"));
        }
        Ok(())
    }

    fn check_window(starts_at: Millis, ends_at: Millis) -> Result<(), CoreError> {
        if ends_at <= starts_at {
            return Err(out_of_bounds("ends_at", "must be after starts_at"));
        }
        if ends_at.0 - starts_at.0 > PROMOTION_DURATION_MS_MAX {
            return Err(out_of_bounds("ends_at", "a promotion lasts at most 93 days"));
        }
        Ok(())
    }

    pub(crate) fn create_coupon(&mut self, actor: Actor, new: &NewCoupon) -> Result<Outcome, CoreError> {
        self.check_sponsor(actor, new.sponsor)?;
        Self::check_window(new.starts_at, new.ends_at)?;
        match new.rule {
            DiscountRule::Fixed { amount } => Self::check_positive_amount(amount)?,
            DiscountRule::Percent { bps, cap } => {
                if bps == 0 || bps > 10_000 {
                    return Err(out_of_bounds("percent_bps", "between 1 and 10000"));
                }
                if let Some(cap) = cap {
                    Self::check_positive_amount(cap)?;
                }
            }
            DiscountRule::CrossStore { every, off, cap, .. } => {
                if new.sponsor != Sponsor::Platform {
                    return Err(out_of_bounds("kind", "a cross-store discount is the platform's"));
                }
                Self::check_positive_amount(every)?;
                Self::check_positive_amount(off)?;
                if let Some(cap) = cap {
                    Self::check_positive_amount(cap)?;
                }
            }
        }
        if new.min_spend.0 > AMOUNT_MAX {
            return Err(CoreError::AmountTooLarge);
        }
        if new.per_buyer_limit == 0 || new.per_buyer_limit > COUPON_USES_PER_BUYER_MAX {
            return Err(out_of_bounds("per_buyer_limit", "between 1 and 1000"));
        }
        if let Some(budget) = new.budget_amount {
            Self::check_positive_amount(budget)?;
        }
        if new.budget_uses == Some(0) {
            return Err(out_of_bounds("budget_uses", "must be positive"));
        }
        self.coupons.push(Coupon {
            terms: new.clone(),
            disabled: false,
            used_amount: Amount::ZERO,
            used_count: 0,
            used_by_buyer: BTreeMap::new(),
            used_when_disabled: None,
        });
        Ok(Outcome::CouponCreated { coupon: CouponId::from_index(self.coupons.len() - 1) })
    }

    pub(crate) fn disable_coupon(&mut self, actor: Actor, id: CouponId) -> Result<Outcome, CoreError> {
        let coupon = self.coupon(id)?;
        if !actor.may_sponsor(coupon.terms.sponsor) {
            return Err(CoreError::Forbidden("disable another sponsor's coupon"));
        }
        let coupon = &mut self.coupons[id.index().unwrap_or_default()];
        coupon.disabled = true;
        coupon.used_when_disabled.get_or_insert((coupon.used_amount, coupon.used_count));
        Ok(Outcome::CouponDisabled { coupon: id })
    }

    /// Prices the coupons of an order: the merchant's first, on the subtotal, then the
    /// platform's, on what is left. Changes nothing.
    pub(crate) fn price_coupons(
        &self,
        ids: &[CouponId],
        buyer: BuyerId,
        merchant: MerchantId,
        currency: Currency,
        subtotal: Amount,
        now: Millis,
    ) -> Result<Vec<(CouponId, Amount, Sponsor)>, CoreError> {
        if ids.len() > COUPONS_PER_ORDER_MAX {
            return Err(out_of_bounds("coupons", "at most one platform and one merchant coupon"));
        }
        let mut ordered: Vec<(CouponId, &Coupon)> =
            ids.iter().map(|&id| Ok((id, self.coupon(id)?))).collect::<Result<_, CoreError>>()?;
        ordered.sort_by_key(|(_, c)| matches!(c.terms.sponsor, Sponsor::Platform));
        if ordered.len() == 2 && ordered[0].1.terms.sponsor == ordered[1].1.terms.sponsor {
            return Err(CoreError::CouponNotApplicable(
                ordered[1].0,
                "one platform and one merchant coupon at most",
            ));
        }
        let mut left = subtotal;
        let mut priced = Vec::with_capacity(ordered.len());
        for (id, coupon) in ordered {
            if !coupon.is_active(now) {
                return Err(CoreError::CouponNotActive(id));
            }
            if coupon.terms.currency != currency {
                return Err(CoreError::CouponNotApplicable(id, "another currency"));
            }
            if matches!(coupon.terms.sponsor, Sponsor::Merchant(m) if m != merchant) {
                return Err(CoreError::CouponNotApplicable(id, "another merchant's coupon"));
            }
            if matches!(coupon.terms.rule, DiscountRule::CrossStore { .. }) {
                return Err(CoreError::CouponNotApplicable(id, "a cross-store discount applies at checkout"));
            }
            if subtotal < coupon.terms.min_spend {
                return Err(CoreError::CouponMinSpend { coupon: id, min_spend: coupon.terms.min_spend.0 });
            }
            let used = coupon.used_by_buyer.get(&buyer).copied().unwrap_or(0);
            if used >= coupon.terms.per_buyer_limit {
                return Err(CoreError::CouponLimitExceeded {
                    coupon: id,
                    limit: coupon.terms.per_buyer_limit,
                });
            }
            let off = discount(coupon.terms.rule, left);
            let uses_left = coupon.terms.budget_uses.is_none_or(|max| coupon.used_count < max);
            let money_left =
                coupon.terms.budget_amount.is_none_or(|max| coupon.used_amount.0 + off.0 <= max.0);
            if !uses_left || !money_left {
                return Err(CoreError::CouponBudgetExhausted(id));
            }
            left = Amount(left.0 - off.0);
            priced.push((id, off, coupon.terms.sponsor));
        }
        Ok(priced)
    }

    /// Holds (`hold = true`) or gives back a coupon's budget for one order.
    pub(crate) fn hold_coupon(&mut self, id: CouponId, buyer: BuyerId, amount: Amount, hold: bool) {
        let coupon = &mut self.coupons[id.index().unwrap_or_default()];
        if hold {
            coupon.used_amount.0 += amount.0;
            coupon.used_count += 1;
            *coupon.used_by_buyer.entry(buyer).or_insert(0) += 1;
        } else {
            coupon.used_amount.0 -= amount.0;
            coupon.used_count -= 1;
            if let Some(used) = coupon.used_by_buyer.get_mut(&buyer) {
                *used -= 1;
                if *used == 0 {
                    coupon.used_by_buyer.remove(&buyer);
                }
            }
        }
    }

    pub(crate) fn create_red_packet(
        &mut self,
        actor: Actor,
        now: Millis,
        new: &NewRedPacket,
    ) -> Result<Outcome, CoreError> {
        self.check_sponsor(actor, new.sponsor)?;
        Self::check_window(new.starts_at, new.ends_at)?;
        Self::check_positive_amount(new.amount)?;
        if new.count == 0 || new.count > RED_PACKET_SHARES_MAX {
            return Err(out_of_bounds("count", "between 1 and 10000000 shares"));
        }
        if new.amount.0 < u64::from(new.count) {
            return Err(out_of_bounds("amount", "at least one minor unit per share"));
        }
        let packet = RedPacketId::from_index(self.red_packets.len());
        let legs = [Leg {
            debit: Owner::of_sponsor(new.sponsor),
            credit: Owner::Escrow(packet),
            amount: new.amount,
            kind: TransferKind::RedPacketFunding,
        }];
        self.ledger.move_money(new.currency, &legs, None, now)?;
        self.red_packets.push(RedPacket {
            terms: new.clone(),
            claimed_amount: Amount::ZERO,
            claims: BTreeMap::new(),
            closed: false,
            returned: Amount::ZERO,
            created_at: now,
            closed_at: Millis(0),
        });
        self.red_packet_ends.insert((new.ends_at, packet));
        Ok(Outcome::RedPacketCreated { packet })
    }

    pub(crate) fn claim_red_packet(
        &mut self,
        actor: Actor,
        now: Millis,
        id: RedPacketId,
        buyer: BuyerId,
    ) -> Result<Outcome, CoreError> {
        self.require_buyer(actor, buyer, "claim for another buyer")?;
        let packet = self.red_packet(id)?;
        if !packet.is_open(now) {
            return Err(CoreError::RedPacketNotOpen(id));
        }
        if packet.claims.contains_key(&buyer) {
            return Err(CoreError::RedPacketAlreadyClaimed(id));
        }
        let index = packet.claims.len() as u32;
        if index >= packet.terms.count {
            return Err(CoreError::RedPacketEmpty(id));
        }
        let share =
            red_packet_share(packet.terms.seed, index, packet.remaining().0, packet.terms.count - index);
        let legs = [Leg {
            debit: Owner::Escrow(id),
            credit: Owner::Buyer(buyer),
            amount: Amount(share),
            kind: TransferKind::RedPacketClaim,
        }];
        let currency = packet.terms.currency;
        let transfer = self.ledger.move_money(currency, &legs, None, now)?;
        let packet = &mut self.red_packets[id.index().unwrap_or_default()];
        packet.claimed_amount.0 += share;
        packet.claims.insert(buyer, Amount(share));
        Ok(Outcome::RedPacketClaimed { packet: id, amount: Amount(share), transfer })
    }

    pub(crate) fn close_red_packet_by(
        &mut self,
        actor: Actor,
        now: Millis,
        id: RedPacketId,
    ) -> Result<Outcome, CoreError> {
        let packet = self.red_packet(id)?;
        if !actor.may_sponsor(packet.terms.sponsor) {
            return Err(CoreError::Forbidden("close another sponsor's red packet"));
        }
        if packet.closed {
            return Err(CoreError::RedPacketNotOpen(id));
        }
        let returned = self.close_red_packet(id, now);
        Ok(Outcome::RedPacketClosed { packet: id, returned })
    }

    /// Closes a pool and returns what is left in its escrow to the sponsor.
    pub(crate) fn close_red_packet(&mut self, id: RedPacketId, now: Millis) -> Amount {
        let index = id.index().unwrap_or_default();
        let packet = &self.red_packets[index];
        let (left, currency, sponsor, ends_at) =
            (packet.remaining(), packet.terms.currency, packet.terms.sponsor, packet.terms.ends_at);
        if left.0 > 0 {
            let legs = [Leg {
                debit: Owner::Escrow(id),
                credit: Owner::of_sponsor(sponsor),
                amount: left,
                kind: TransferKind::RedPacketReturn,
            }];
            debug_assert!(self.ledger.check(currency, &legs).is_ok());
            self.ledger.post(currency, &legs, None, now);
        }
        let packet = &mut self.red_packets[index];
        packet.closed = true;
        packet.returned = left;
        packet.closed_at = now;
        self.red_packet_ends.remove(&(ends_at, id));
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(seed: u64, amount: u64, count: u32) -> Vec<u64> {
        let mut remaining = amount;
        (0..count)
            .map(|i| {
                let share = red_packet_share(seed, i, remaining, count - i);
                remaining -= share;
                share
            })
            .collect()
    }

    proptest! {
        #[test]
        fn shares_sum_exactly_and_each_is_at_least_one(seed: u64, count in 1u32..300, extra in 0u64..100_000) {
            let amount = u64::from(count) + extra;
            let shares = split(seed, amount, count);
            prop_assert_eq!(shares.len(), count as usize);
            prop_assert_eq!(shares.iter().sum::<u64>(), amount);
            prop_assert!(shares.iter().all(|&s| s >= 1));
            prop_assert_eq!(split(seed, amount, count), shares, "same seed, same shares");
        }

        #[test]
        fn a_discount_never_exceeds_its_base(base in 0u64..AMOUNT_MAX, fixed in 1u64..AMOUNT_MAX, bps in 1u16..=10_000, cap in proptest::option::of(1u64..1_000_000)) {
            let base = Amount(base);
            let fixed_off = discount(DiscountRule::Fixed { amount: Amount(fixed) }, base);
            prop_assert!(fixed_off <= base);
            let off = discount(DiscountRule::Percent { bps, cap: cap.map(Amount) }, base);
            prop_assert!(off <= base);
            prop_assert!(cap.is_none_or(|c| off.0 <= c));
            // Rounded down: never more than the exact fraction.
            prop_assert!(u128::from(off.0) * 10_000 <= u128::from(base.0) * u128::from(bps));
        }
    }

    #[test]
    fn coupon_arithmetic_at_the_edges() {
        let percent = |bps, cap| DiscountRule::Percent { bps, cap };
        assert_eq!(discount(percent(10_000, None), Amount(999)), Amount(999), "100% off is the whole base");
        assert_eq!(discount(percent(1_500, None), Amount(999)), Amount(149), "15% of 999 rounds down");
        assert_eq!(discount(percent(5_000, Some(Amount(100))), Amount(999)), Amount(100), "the cap binds");
        assert_eq!(
            discount(DiscountRule::Fixed { amount: Amount(5_000) }, Amount(999)),
            Amount(999),
            "off larger than price"
        );
        assert_eq!(discount(percent(1, None), Amount(99)), Amount(0), "a tiny base rounds to nothing off");
    }

    #[test]
    fn a_split_is_fair_in_expectation() {
        // 10,000 pools of 100.00 in 10 shares: each position's mean is close to 10.00.
        let mut sums = [0u64; 10];
        for seed in 0..10_000u64 {
            for (i, s) in split(seed, 10_000, 10).into_iter().enumerate() {
                sums[i] += s;
            }
        }
        for (i, sum) in sums.iter().enumerate() {
            let mean = *sum as f64 / 10_000.0;
            assert!((mean - 1_000.0).abs() < 60.0, "position {i}: mean {mean}");
        }
    }
}
