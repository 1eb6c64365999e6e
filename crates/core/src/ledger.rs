//! The double-entry ledger: accounts (wallets) and transfers. Every movement of money is a set of
//! legs that is checked as a whole before any of it is posted, so a transfer set is atomic.

use crate::chunked::Chunked;
use crate::error::CoreError;
use crate::limits::{EXTERNAL_ISSUED_MAX, ORDERS_MAX, TRANSFERS_MAX};
use crate::runs::Runs;
use crate::types::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Whose account it is. The external account is where top-ups come from: its balance is the
/// negative of all money ever brought in, so the sum of every balance is always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Owner {
    External,
    Platform,
    Merchant(MerchantId),
    Buyer(BuyerId),
    /// Holds a red packet's unclaimed money until it is claimed or returned.
    Escrow(RedPacketId),
}

impl Owner {
    /// Where a sponsor's money comes from and returns to.
    pub fn of_sponsor(sponsor: Sponsor) -> Owner {
        match sponsor {
            Sponsor::Platform => Owner::External,
            Sponsor::Merchant(m) => Owner::Merchant(m),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferKind {
    TopUp,
    Payment,
    Commission,
    Refund,
    CommissionRefund,
    /// The platform pays the merchant the discount of a platform-funded coupon.
    CouponSubsidy,
    CouponSubsidyRefund,
    RedPacketFunding,
    RedPacketClaim,
    RedPacketReturn,
}

impl TransferKind {
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::TopUp => "top_up",
            TransferKind::Payment => "payment",
            TransferKind::Commission => "commission",
            TransferKind::Refund => "refund",
            TransferKind::CommissionRefund => "commission_refund",
            TransferKind::CouponSubsidy => "coupon_subsidy",
            TransferKind::CouponSubsidyRefund => "coupon_subsidy_refund",
            TransferKind::RedPacketFunding => "red_packet_funding",
            TransferKind::RedPacketClaim => "red_packet_claim",
            TransferKind::RedPacketReturn => "red_packet_return",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub owner: Owner,
    pub currency: Currency,
    /// Credits minus debits. Never negative, except for the external account, never positive.
    pub balance: i64,
    /// How many transfers touched this account.
    pub entries: u64,
    /// The newest of them (0 for none): the head of the account's history, which continues
    /// through each transfer's `debit_prev` or `credit_prev` ([`Ledger::history`]).
    last_entry: u64,
}

impl Account {
    /// Applies a transfer's amount and makes it the newest entry; returns the previous newest.
    fn touch(&mut self, id: TransferId, amount: i64) -> u64 {
        self.balance += amount;
        self.entries += 1;
        std::mem::replace(&mut self.last_entry, id.0)
    }
}

/// A transfer as stored: 32 bytes (accounts by index; the order and the two history links as
/// 40-bit ids, 0 for none; the time apart, once per millisecond in [`Ledger`]'s runs), because
/// there are two or three of them for every order. [`TransferView`] is how it is read.
///
/// Each transfer links to the previous transfer of its debit and of its credit account, so an
/// account's history is a chain through the transfers, newest first. A list per account would
/// double as it grows: the platform's and a hot merchant's grow by one entry per payment, and
/// each doubling copied tens of megabytes on the sequencer (and, with THP, stalled it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    debit: u32,
    credit: u32,
    kind: TransferKind,
    amount: Amount,
    order: U40,
    /// The debit (credit) account's previous transfer, as a `TransferId` value (0 for none).
    debit_prev: U40,
    credit_prev: U40,
}

// Every id a transfer holds fits, and a transfer is the size its documentation says.
const _: () = assert!(std::mem::size_of::<Transfer>() == 32);
const _: () = assert!(TRANSFERS_MAX <= U40::MAX && ORDERS_MAX <= U40::MAX);

/// A transfer with its accounts resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferView {
    pub debit: Owner,
    pub credit: Owner,
    pub currency: Currency,
    pub amount: Amount,
    pub kind: TransferKind,
    pub order: Option<OrderId>,
    pub at: Millis,
}

/// One leg of a transfer set, before it is posted.
#[derive(Clone, Copy, Debug)]
pub struct Leg {
    pub debit: Owner,
    pub credit: Owner,
    pub amount: Amount,
    pub kind: TransferKind,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    accounts: Vec<Account>,
    transfers: Chunked<Transfer>,
    /// When each transfer was posted, in milliseconds: a run per millisecond with transfers.
    times: Runs,
    #[serde(skip)]
    index: AccountIndex,
}

/// Where each account is in `Ledger::accounts`. Buyers and merchants are numbered densely by the
/// engine, so the account of an owner's first currency is found by position: one read of a
/// small array, then the account; so are the platform's and the external account's first ones
/// (every payment's commission and every top-up meet them). Every other account (a second
/// currency, escrow) is in a hash map. A payment's accounts are thus found without a hash
/// bucket's cache miss before each account's own.
#[derive(Clone, Debug, Default)]
struct AccountIndex {
    /// By buyer index: the buyer's first account's index + 1, or 0 for none yet.
    by_buyer: Vec<u32>,
    by_merchant: Vec<u32>,
    /// One slot each at most: the platform's and the external account's first accounts.
    platform: Vec<u32>,
    external: Vec<u32>,
    /// FxHash: the keys are small and not chosen by clients in ways that could flood a bucket
    /// (ids are assigned by the engine), and SipHash cost a tenth of the hot path.
    others: FxHashMap<(Owner, Currency), u32>,
    /// The same accounts by owner, in the order they were opened: an owner's accounts are its
    /// dense one and these, found without a scan of every account.
    others_by_owner: std::collections::BTreeMap<Owner, Vec<u32>>,
}

impl AccountIndex {
    /// The dense slots of an owner numbered by the engine, and its position in them.
    fn dense(&self, owner: Owner) -> Option<(&Vec<u32>, usize)> {
        match owner {
            Owner::Buyer(b) => Some((&self.by_buyer, b.index()?)),
            Owner::Merchant(m) => Some((&self.by_merchant, m.index()?)),
            Owner::Platform => Some((&self.platform, 0)),
            Owner::External => Some((&self.external, 0)),
            Owner::Escrow(_) => None,
        }
    }

    /// The owner's first account, if it has one in a dense slot.
    fn first(&self, owner: Owner) -> Option<usize> {
        let (slots, at) = self.dense(owner)?;
        Some(slots.get(at)?.checked_sub(1)? as usize)
    }

    fn get(&self, accounts: &[Account], owner: Owner, currency: Currency) -> Option<usize> {
        match self.first(owner) {
            Some(i) if accounts[i].currency == currency => Some(i),
            _ => self.others.get(&(owner, currency)).map(|&i| i as usize),
        }
    }

    /// Records a new account (not yet indexed) at `i`.
    fn insert(&mut self, owner: Owner, currency: Currency, i: u32) {
        let dense = match owner {
            Owner::Buyer(b) => b.index().map(|at| (&mut self.by_buyer, at)),
            Owner::Merchant(m) => m.index().map(|at| (&mut self.by_merchant, at)),
            Owner::Platform => Some((&mut self.platform, 0)),
            Owner::External => Some((&mut self.external, 0)),
            Owner::Escrow(_) => None,
        };
        if let Some((slots, at)) = dense {
            // Ids are dense, so the array grows with the owners that exist; an id far beyond
            // them (none is, but the bound keeps the array's size honest) goes to the map.
            if at < slots.len().saturating_mul(2).max(1 << 16) {
                if slots.len() <= at {
                    slots.resize(at + 1, 0);
                }
                if slots[at] == 0 {
                    slots[at] = i + 1;
                    return;
                }
            }
        }
        self.others.insert((owner, currency), i);
        self.others_by_owner.entry(owner).or_default().push(i);
    }
}

impl Ledger {
    /// Its tables' bytes (see [`crate::footprint`]).
    pub fn footprint(&self, footprint: &mut crate::Footprint) {
        use crate::footprint::{map_of_lists, vec};
        let index = &self.index;
        let others = (index.others.len() * std::mem::size_of::<((Owner, Currency), u32)>()) as u64;
        footprint.add("accounts", vec(&self.accounts));
        footprint.add(
            "account index",
            vec(&index.by_buyer) + vec(&index.by_merchant) + others + map_of_lists(&index.others_by_owner),
        );
        footprint.add("transfers", self.transfers.bytes() + self.times.bytes());
    }

    /// Every transfer names accounts that exist: what a decoded ledger must hold before any
    /// of it is read by index (a snapshot is checked by its CRC first; this keeps a decoder of
    /// bytes from disk from ever indexing past the end, whatever the bytes).
    pub(crate) fn check_references(&self) -> Result<(), &'static str> {
        let accounts = self.accounts.len();
        if self.transfers.iter().any(|t| t.debit as usize >= accounts || t.credit as usize >= accounts) {
            return Err("a transfer names an account that does not exist");
        }
        self.times.check(self.transfers.len() as u64)
    }

    pub(crate) fn rebuild_index(&mut self) {
        let mut index = AccountIndex::default();
        for (i, a) in self.accounts.iter().enumerate() {
            index.insert(a.owner, a.currency, i as u32); // at most u32::MAX accounts (`account_mut`)
        }
        self.index = index;
    }

    pub fn account(&self, owner: Owner, currency: Currency) -> Option<&Account> {
        self.index.get(&self.accounts, owner, currency).map(|i| &self.accounts[i])
    }

    /// A hint that a transfer will soon touch the owner's first account (a buyer's wallet, for
    /// a payment a few commands ahead): starts loading it. Changes nothing.
    pub(crate) fn prefetch(&self, owner: Owner) {
        if let Some(account) = self.index.first(owner).and_then(|i| self.accounts.get(i)) {
            crate::hint::prefetch(account);
        }
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// An owner's accounts, in the order they were opened; the cost is theirs, not the ledger's.
    pub fn accounts_of(&self, owner: Owner) -> impl Iterator<Item = &Account> {
        let others = self.index.others_by_owner.get(&owner).map_or(&[][..], Vec::as_slice);
        self.index
            .first(owner)
            .into_iter()
            .chain(others.iter().map(|&i| i as usize))
            .map(|i| &self.accounts[i])
    }

    pub fn balance(&self, owner: Owner, currency: Currency) -> i64 {
        self.account(owner, currency).map_or(0, |a| a.balance)
    }

    /// Transfer `index` (`t`), its accounts resolved.
    fn view(&self, index: usize, t: &Transfer) -> TransferView {
        let (debit, credit) = (&self.accounts[t.debit as usize], &self.accounts[t.credit as usize]);
        TransferView {
            debit: debit.owner,
            credit: credit.owner,
            currency: debit.currency,
            amount: t.amount,
            kind: t.kind,
            order: (t.order.get() != 0).then_some(OrderId(t.order.get())),
            at: Millis(self.times.get(index as u64)),
        }
    }

    /// Every transfer, oldest first.
    pub fn transfers(&self) -> impl ExactSizeIterator<Item = TransferView> + '_ {
        self.transfers.iter().enumerate().map(|(i, t)| self.view(i, t))
    }

    pub fn transfer(&self, id: TransferId) -> Option<TransferView> {
        let index = id.index()?;
        Some(self.view(index, self.transfers.get(index)?))
    }

    /// The transfers that touched an account, newest first.
    pub fn history(
        &self,
        owner: Owner,
        currency: Currency,
    ) -> impl Iterator<Item = (TransferId, TransferView)> + '_ {
        let account = self.index.get(&self.accounts, owner, currency);
        self.chain(account, account.map_or(0, |a| self.accounts[a].last_entry))
    }

    /// The account's entries older than `before`, newest first: none if `before` is not one of
    /// its entries (a page's cursor is the last entry it showed).
    pub fn history_before(
        &self,
        owner: Owner,
        currency: Currency,
        before: TransferId,
    ) -> impl Iterator<Item = (TransferId, TransferView)> + '_ {
        let account = self.index.get(&self.accounts, owner, currency);
        let start = match (account, before.index().and_then(|i| self.transfers.get(i))) {
            (Some(a), Some(t)) if t.debit as usize == a => t.debit_prev.get(),
            (Some(a), Some(t)) if t.credit as usize == a => t.credit_prev.get(),
            _ => 0,
        };
        self.chain(account, start)
    }

    /// The account's chain from transfer `start` back (0: the end).
    fn chain(
        &self,
        account: Option<usize>,
        start: u64,
    ) -> impl Iterator<Item = (TransferId, TransferView)> + '_ {
        let mut next = start;
        std::iter::from_fn(move || {
            let id = TransferId(next);
            let index = id.index()?;
            let t = self.transfers.get(index)?;
            // Transfers are never to the same account (the audit checks it), so one side is it.
            next = if account == Some(t.debit as usize) { t.debit_prev } else { t.credit_prev }.get();
            Some((id, self.view(index, t)))
        })
    }

    /// Every account's history chain lists exactly the transfers that touched it, newest first,
    /// and its count agrees, and its balance is what its transfers sum to: the first violation,
    /// if any. One pass in transfer order, reading the transfers sequentially: following each
    /// account's chain back would be a cache miss per transfer.
    pub(crate) fn histories_violation(&self) -> Option<String> {
        // Per account: the newest transfer seen so far (as a `TransferId` value), the count,
        // and the sum of its entries.
        let mut seen = vec![(0u64, 0u64, 0i128); self.accounts.len()];
        for (i, t) in self.transfers.iter().enumerate() {
            let id = TransferId::from_index(i);
            for (side, prev, sign) in [(t.debit, t.debit_prev.get(), -1), (t.credit, t.credit_prev.get(), 1)]
            {
                let Some((newest, count, sum)) = seen.get_mut(side as usize) else {
                    return Some(format!("transfer {id}: no account {side}"));
                };
                if prev != *newest {
                    return Some(format!("transfer {id}: account {side}'s history breaks before it"));
                }
                (*newest, *count, *sum) = (id.0, *count + 1, *sum + sign * i128::from(t.amount.0));
            }
        }
        self.accounts.iter().zip(&seen).find_map(|(a, &(newest, count, sum))| {
            let (owner, currency) = (a.owner, a.currency);
            if a.last_entry != newest || a.entries != count {
                return Some(format!(
                    "{owner:?} {currency}: history ends at transfer {} with {} entries, but {count} \
                     transfers touch it, the newest {newest}",
                    a.last_entry, a.entries
                ));
            }
            (i128::from(a.balance) != sum)
                .then(|| format!("{owner:?} {currency}: balance {} but entries sum to {sum}", a.balance))
        })
    }

    /// Checks that every leg can be posted together: no wallet below zero, no overflow.
    /// Changes nothing.
    pub(crate) fn check(&self, currency: Currency, legs: &[Leg]) -> Result<(), CoreError> {
        if self.transfers.len() as u64 + legs.len() as u64 > TRANSFERS_MAX {
            return Err(CoreError::Overflow("the ledger's transfers"));
        }
        // At most a handful of legs: a linear scan beats a map.
        let mut deltas: [(Option<Owner>, i128); 8] = [(None, 0); 8];
        debug_assert!(legs.len() * 2 <= deltas.len());
        for leg in legs {
            debug_assert!(leg.amount.0 > 0);
            for (owner, sign) in [(leg.debit, -1i128), (leg.credit, 1i128)] {
                let slot = deltas
                    .iter()
                    .position(|(o, _)| *o == Some(owner) || o.is_none())
                    .ok_or_else(|| CoreError::Overflow("too many legs"))?;
                deltas[slot].0 = Some(owner);
                deltas[slot].1 += sign * i128::from(leg.amount.0);
            }
        }
        for (owner, delta) in deltas.iter().filter_map(|(o, d)| o.map(|o| (o, *d))) {
            let after = i128::from(self.balance(owner, currency)) + delta;
            if owner == Owner::External {
                // The external side's bound keeps every balance (all of them sum to zero, only
                // this one may be negative) far inside `i64`: nothing below can overflow.
                if after < -i128::from(EXTERNAL_ISSUED_MAX) {
                    return Err(CoreError::IssuanceLimit { currency, max: EXTERNAL_ISSUED_MAX });
                }
            } else if after < 0 {
                return Err(CoreError::InsufficientFunds);
            }
            if after > i128::from(i64::MAX) || after < i128::from(i64::MIN) {
                return Err(CoreError::Overflow("wallet balance"));
            }
        }
        Ok(())
    }

    /// Checks the legs as a whole and, if they pass, posts them: a transfer set happens whole or
    /// not at all. Returns the id of the first leg.
    pub(crate) fn move_money(
        &mut self,
        currency: Currency,
        legs: &[Leg],
        order: Option<OrderId>,
        at: Millis,
    ) -> Result<TransferId, CoreError> {
        self.check(currency, legs)?;
        Ok(self.post(currency, legs, order, at))
    }

    /// Posts legs that [`Ledger::check`] accepted. Returns the id of the first leg.
    pub(crate) fn post(
        &mut self,
        currency: Currency,
        legs: &[Leg],
        order: Option<OrderId>,
        at: Millis,
    ) -> TransferId {
        debug_assert!(self.check(currency, legs).is_ok());
        let first = TransferId::from_index(self.transfers.len());
        for leg in legs {
            debug_assert_ne!(leg.debit, leg.credit, "a transfer moves money between two accounts");
            let id = TransferId::from_index(self.transfers.len());
            let amount = leg.amount.0 as i64; // <= AMOUNT_MAX, checked by the caller.
            let debit = self.account_mut(leg.debit, currency);
            let debit_prev = self.accounts[debit].touch(id, -amount);
            let credit = self.account_mut(leg.credit, currency);
            let credit_prev = self.accounts[credit].touch(id, amount);
            self.times.note(self.transfers.len() as u64, at.0);
            self.transfers.push(Transfer {
                debit: debit as u32,
                credit: credit as u32,
                amount: leg.amount,
                kind: leg.kind,
                order: U40::new(order.map_or(0, |o| o.0)),
                debit_prev: U40::new(debit_prev),
                credit_prev: U40::new(credit_prev),
            });
        }
        first
    }

    /// The index of an account, opened if new. Accounts are indexed by `u32` in transfers: one
    /// per buyer, merchant and currency, far below four billion.
    fn account_mut(&mut self, owner: Owner, currency: Currency) -> usize {
        if let Some(i) = self.index.get(&self.accounts, owner, currency) {
            return i;
        }
        let next = self.accounts.len();
        assert!(next < u32::MAX as usize, "the ledger holds at most 2^32 - 1 accounts");
        self.index.insert(owner, currency, next as u32);
        self.accounts.push(Account { owner, currency, balance: 0, entries: 0, last_entry: 0 });
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BuyerId, MerchantId, RedPacketId};

    #[test]
    fn an_owners_accounts_are_found_by_index_as_a_scan_finds_them() {
        let (cny, usd) = (Currency::parse("CNY").unwrap(), Currency::parse("USD").unwrap());
        let mut ledger = Ledger::default();
        let owners = [Owner::Buyer(BuyerId(1)), Owner::Buyer(BuyerId(2)), Owner::Merchant(MerchantId(1))];
        for (n, (owner, currency)) in
            owners.iter().flat_map(|&o| [(o, usd), (o, cny)]).chain([(Owner::Platform, cny)]).enumerate()
        {
            let leg =
                Leg { debit: Owner::External, credit: owner, amount: Amount(5), kind: TransferKind::TopUp };
            ledger.move_money(currency, &[leg], None, Millis(n as u64)).unwrap();
        }
        for owner in
            owners.into_iter().chain([Owner::Platform, Owner::External, Owner::Escrow(RedPacketId(1))])
        {
            let indexed: Vec<&Account> = ledger.accounts_of(owner).collect();
            let scanned: Vec<&Account> = ledger.accounts().iter().filter(|a| a.owner == owner).collect();
            assert_eq!(indexed, scanned, "{owner:?}");
        }
        ledger.rebuild_index();
        assert_eq!(ledger.accounts_of(Owner::Buyer(BuyerId(2))).count(), 2);
    }

    /// A ledger of top-ups and payments between a few accounts.
    fn posted() -> (Ledger, Currency) {
        let cny = Currency::parse("CNY").unwrap();
        let mut ledger = Ledger::default();
        let (b1, b2, m) =
            (Owner::Buyer(BuyerId(1)), Owner::Buyer(BuyerId(2)), Owner::Merchant(MerchantId(1)));
        for (n, (debit, credit, amount)) in
            [(Owner::External, b1, 500), (Owner::External, b2, 300), (b1, m, 120), (b2, m, 80), (b1, m, 7)]
                .into_iter()
                .enumerate()
        {
            let leg = Leg { debit, credit, amount: Amount(amount), kind: TransferKind::TopUp };
            ledger.move_money(cny, &[leg], None, Millis(n as u64)).unwrap();
        }
        (ledger, cny)
    }

    /// Every account is found by its owner and currency, whether its index sits in a dense slot
    /// (an owner's first currency) or in the map (a second currency, the platform, an id far
    /// beyond the others), before and after the index is rebuilt from the accounts (a restart);
    /// an account that was never opened is not found.
    #[test]
    fn accounts_are_found_by_owner_and_currency() {
        let (cny, usd) = (Currency::parse("CNY").unwrap(), Currency::parse("USD").unwrap());
        let owners = [
            Owner::Buyer(BuyerId(1)),
            Owner::Buyer(BuyerId(3)),
            Owner::Buyer(BuyerId(1 << 40)),
            Owner::Merchant(MerchantId(2)),
            Owner::Platform,
            Owner::Escrow(RedPacketId(1)),
        ];
        let mut ledger = Ledger::default();
        let mut amount = 0;
        for owner in owners {
            for currency in [cny, usd] {
                amount += 1;
                let leg = Leg {
                    debit: Owner::External,
                    credit: owner,
                    amount: Amount(amount),
                    kind: TransferKind::TopUp,
                };
                ledger.move_money(currency, &[leg], None, Millis(0)).unwrap();
            }
        }
        let expected = |ledger: &Ledger| {
            let mut amount = 0;
            for owner in owners {
                for currency in [cny, usd] {
                    amount += 1;
                    let account = ledger.account(owner, currency).unwrap();
                    assert_eq!((account.owner, account.currency, account.balance), (owner, currency, amount));
                }
            }
            for owner in [Owner::Buyer(BuyerId(2)), Owner::Merchant(MerchantId(1)), Owner::Buyer(BuyerId(0))]
            {
                assert!(ledger.account(owner, cny).is_none());
            }
            assert!(ledger.account(Owner::Buyer(BuyerId(1)), Currency::parse("EUR").unwrap()).is_none());
        };
        expected(&ledger);
        let mut restarted = ledger.clone();
        restarted.index = AccountIndex::default();
        restarted.rebuild_index();
        expected(&restarted);
        // And the external account in each currency.
        assert_eq!(restarted.accounts().len(), (owners.len() + 1) * 2);
    }

    /// The audit's ledger check finds a broken chain, a wrong count, a wrong newest entry and a
    /// balance that is not its entries' sum, and passes the ledger as posted.
    #[test]
    fn histories_violation_finds_every_kind_of_damage() {
        let (ledger, _) = posted();
        assert_eq!(ledger.histories_violation(), None);
        let damage: [fn(&mut Ledger); 5] = [
            |l| l.transfers[3].credit_prev = U40::new(0),
            |l| l.transfers[4].debit_prev = U40::new(2),
            |l| l.accounts[1].entries += 1,
            |l| l.accounts[2].last_entry = 3,
            |l| l.accounts[3].balance -= 1,
        ];
        for (i, damage) in damage.into_iter().enumerate() {
            let (mut broken, _) = posted();
            damage(&mut broken);
            assert!(broken.histories_violation().is_some(), "damage {i} went unnoticed");
        }
    }
}
