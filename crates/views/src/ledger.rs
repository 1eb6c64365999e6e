//! Wallets as the API shows them: buyers, top-ups, accounts and their entries.

use crate::*;
use elevens_core::ledger::Account;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerView {
    pub buyer_id: u64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpView {
    pub transfer_id: u64,
    pub buyer_id: u64,
    pub amount: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    /// The wallet's balance right after this top-up.
    pub balance: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub transfer_id: u64,
    pub kind: &'static str,
    /// Positive for a credit to this account, negative for a debit.
    pub amount: i64,
    pub counterparty: String,
    pub order_id: Option<u64>,
    pub at: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    #[schema(value_type = String)]
    pub currency: Code,
    pub balance: i64,
    pub entries_total: u64,
    /// The newest entries (older than `before`, if asked), newest first.
    pub entries: Vec<EntryView>,
    /// The cursor of the next, older page (`?before=`), absent at the oldest entry.
    pub next_before: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    pub owner: String,
    pub accounts: Vec<AccountView>,
}

pub fn owner_name(owner: Owner) -> String {
    match owner {
        Owner::External => "external".into(),
        Owner::Platform => "platform".into(),
        Owner::Merchant(m) => format!("merchant:{m}"),
        Owner::Buyer(b) => format!("buyer:{b}"),
        Owner::Escrow(p) => format!("escrow:red_packet:{p}"),
    }
}

pub(crate) fn buyer_view(state: &State, id: BuyerId) -> Result<View, CoreError> {
    Ok(View::Buyer(BuyerView { buyer_id: id.0, name: state.buyer(id)?.name.clone() }))
}

pub(crate) fn account_view(
    state: &State,
    account: &Account,
    entries_max: usize,
    before: Option<TransferId>,
) -> AccountView {
    let ledger = state.ledger();
    let mut history: Box<dyn Iterator<Item = _>> = match before {
        None => Box::new(ledger.history(account.owner, account.currency)),
        Some(before) => Box::new(ledger.history_before(account.owner, account.currency, before)),
    };
    let entries: Vec<EntryView> = history
        .by_ref()
        .take(entries_max)
        .map(|(id, t)| {
            let (sign, counterparty) = if t.credit == account.owner { (1, t.debit) } else { (-1, t.credit) };
            EntryView {
                transfer_id: id.0,
                kind: t.kind.name(),
                amount: sign * t.amount.0 as i64,
                counterparty: owner_name(counterparty),
                order_id: t.order.map(|o| o.0),
                at: t.at.0,
            }
        })
        .collect();
    let more = history.next().is_some();
    AccountView {
        currency: Code(account.currency),
        balance: account.balance,
        entries_total: account.entries,
        next_before: entries.last().filter(|_| more).map(|e| e.transfer_id),
        entries,
    }
}
