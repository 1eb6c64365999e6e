//! The lists a merchant or a buyer works through: its orders, parcels, returns and tickets,
//! filtered (status, warehouse, words, late, overdue) and rendered on the sequencer from the
//! candidates the owners index gives (`elevens_search::owners`): the owner's own ids, in the
//! list's order, at most [`CANDIDATES_MAX`] a page, so no page costs the sequencer more than
//! that many lookups whatever the store's size or the filter's rarity. An owner's parcels are
//! its orders' (at most one per line): their list walks the orders' candidates, and its cursor
//! is an order's id.

use crate::logistics::{
    check_list, return_view, shipment_view, status_filter, ticket_view, ListOwner, LogisticsView, OrderPage,
    Page,
};
use crate::View;
use elevens_core::logistics::*;
use elevens_core::*;

/// The most candidates one page looks at: a page of a rare filter ends early with a cursor to
/// go on from.
pub const CANDIDATES_MAX: usize = 10_000;
/// The longest search text, in bytes.
pub const TEXT_MAX_BYTES: usize = 100;

/// What to keep of the candidates.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub status: Option<String>,
    /// Shipments of this warehouse.
    pub warehouse: Option<WarehouseId>,
    /// Words to find (lower-cased): an id, the buyer's name, a line's title, a ticket's subject.
    pub text: Option<String>,
    /// Parcels still awaiting dispatch after their booked day (in the warehouse's time zone).
    pub late: bool,
    /// Tickets the store has not answered by their deadline.
    pub overdue: bool,
}

#[derive(Clone, Debug)]
pub struct PageQuery {
    pub owner: ListOwner,
    pub filter: Filter,
    /// The owner's ids to look at, in the list's order (oldest or newest first): its orders'
    /// for its parcels.
    pub candidates: Vec<u64>,
    /// Whether the owner's list goes on past the candidates.
    pub more: bool,
    /// The candidates come newest first (and so do an order's parcels).
    pub newest_first: bool,
    pub limit: usize,
}

/// An order's returns and tickets (ids from the owners index).
#[derive(Clone, Debug)]
pub struct AfterSalesQuery {
    pub order: OrderId,
    pub returns: Vec<u64>,
    pub tickets: Vec<u64>,
}

/// Whether `haystack` holds `needle` (lower-cased), ignoring case.
pub(crate) fn holds(haystack: &str, needle: &str) -> bool {
    if needle.is_ascii() {
        let n = needle.len();
        n == 0 || haystack.as_bytes().windows(n).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

/// Whether the text names the order: its id, its buyer's name or a line's title.
fn order_matches(state: &State, id: OrderId, o: &Order, text: &str) -> bool {
    text.parse::<u64>() == Ok(id.0)
        || state.buyer(o.buyer()).is_ok_and(|b| holds(&b.name, text))
        || o.lines.iter().any(|l| state.sku(l.sku).is_ok_and(|s| holds(state.sku_title(s), text)))
}

/// Whether the text names a parcel or a return: its own id, or its order as [`order_matches`].
fn entry_matches(state: &State, own_id: u64, order: OrderId, o: &Order, text: &str) -> bool {
    text.parse::<u64>() == Ok(own_id) || order_matches(state, order, o, text)
}

/// Walks the candidates, keeping up to `limit` that `keep` renders; the cursor is the last
/// candidate looked at when the list goes on.
fn pick<T>(q: &PageQuery, mut keep: impl FnMut(u64) -> Option<T>) -> (Vec<T>, Option<u64>) {
    let mut out = Vec::new();
    for (i, &id) in q.candidates.iter().enumerate() {
        if let Some(view) = keep(id) {
            out.push(view);
            if out.len() == q.limit {
                let goes_on = i + 1 < q.candidates.len() || q.more;
                return (out, goes_on.then_some(id));
            }
        }
    }
    (out, q.candidates.last().copied().filter(|_| q.more))
}

/// As [`pick`], for a list whose entries come by candidate (an order's parcels): a page holds
/// whole candidates' entries, ending before one whose entries would pass the limit (unless the
/// page is empty: then all its entries, at most an order's one per line).
fn pick_grouped<T>(q: &PageQuery, mut entries: impl FnMut(u64) -> Vec<T>) -> (Vec<T>, Option<u64>) {
    let mut out = Vec::new();
    let mut taken = None;
    for (i, &id) in q.candidates.iter().enumerate() {
        let group = entries(id);
        if !out.is_empty() && out.len() + group.len() > q.limit {
            return (out, taken);
        }
        out.extend(group);
        taken = Some(id);
        if out.len() >= q.limit {
            let goes_on = i + 1 < q.candidates.len() || q.more;
            return (out, goes_on.then_some(id));
        }
    }
    (out, q.candidates.last().copied().filter(|_| q.more))
}

fn is_owner(owner: ListOwner, merchant: MerchantId, buyer: BuyerId) -> bool {
    match owner {
        ListOwner::Merchant(m) => m == merchant,
        ListOwner::Buyer(b) => b == buyer,
    }
}

pub fn orders(state: &State, actor: Actor, q: &PageQuery) -> Result<LogisticsView, CoreError> {
    check_list(state, actor, q.owner)?;
    let status = status_filter(&q.filter.status, &OrderStatus::ALL, OrderStatus::name)?;
    let text = q.filter.text.as_deref();
    let (items, next_after) = pick(q, |id| {
        let id = OrderId(id);
        let o = state.order(id).ok()?;
        let wanted = is_owner(q.owner, o.merchant(), o.buyer())
            && status.is_none_or(|s| o.status == s)
            && text.is_none_or(|t| order_matches(state, id, o, t));
        match wanted.then(|| crate::named_order_view(state, id))? {
            Ok(View::Order(v)) => Some(v),
            _ => None,
        }
    });
    Ok(LogisticsView::Orders(OrderPage { items, next_after }))
}

pub fn shipments(
    state: &State,
    actor: Actor,
    q: &PageQuery,
    now: Millis,
) -> Result<LogisticsView, CoreError> {
    check_list(state, actor, q.owner)?;
    let status = status_filter(&q.filter.status, &Lifecycle::ALL, Lifecycle::name)?;
    let f = &q.filter;
    let (items, next_after) = pick_grouped(q, |order| {
        let order = OrderId(order);
        let Ok(o) = state.order(order) else { return Vec::new() };
        if !is_owner(q.owner, o.merchant(), o.buyer()) {
            return Vec::new();
        }
        let mut parcels: Vec<_> = state
            .order_shipments(order)
            .filter(|(id, s)| {
                let late = || {
                    s.lifecycle == Lifecycle::AwaitingDispatch
                        && state.warehouse(s.warehouse()).is_ok_and(|w| {
                            s.dispatch_day < calendar::local_day_and_minute(now.0, w.utc_offset_minutes).0
                        })
                };
                status.is_none_or(|st| s.lifecycle == st)
                    && f.warehouse.is_none_or(|w| s.warehouse() == w)
                    && (!f.late || late())
                    && f.text.as_deref().is_none_or(|t| entry_matches(state, id.0, order, o, t))
            })
            .map(|(id, s)| shipment_view(state, id, &s))
            .collect();
        if q.newest_first {
            parcels.reverse();
        }
        parcels
    });
    Ok(LogisticsView::Shipments(Page { items, next_after }))
}

pub fn returns(state: &State, actor: Actor, q: &PageQuery) -> Result<LogisticsView, CoreError> {
    check_list(state, actor, q.owner)?;
    let status = status_filter(&q.filter.status, &ReturnStatus::ALL, ReturnStatus::name)?;
    let (items, next_after) = pick(q, |id| {
        let id = ReturnId(id);
        let r = state.return_request(id).ok()?;
        let o = state.order(r.order).ok()?;
        let wanted = is_owner(q.owner, o.merchant(), o.buyer())
            && status.is_none_or(|s| r.status == s)
            && q.filter.text.as_deref().is_none_or(|t| entry_matches(state, id.0, r.order, o, t));
        wanted.then(|| return_view(state, id, r))
    });
    Ok(LogisticsView::Returns(Page { items, next_after }))
}

pub fn tickets(state: &State, actor: Actor, q: &PageQuery, now: Millis) -> Result<LogisticsView, CoreError> {
    check_list(state, actor, q.owner)?;
    let status = status_filter(&q.filter.status, &TicketStatus::ALL, TicketStatus::name)?;
    let f = &q.filter;
    let (items, next_after) = pick(q, |id| {
        let id = TicketId(id);
        let t = state.ticket(id).ok()?;
        let overdue = t.first_response_at.is_none() && t.first_response_due < now;
        let named = |text: &str| {
            text.parse::<u64>().is_ok_and(|n| n == id.0 || n == t.order.0)
                || holds(&t.subject, text)
                || state.buyer(t.buyer).is_ok_and(|b| holds(&b.name, text))
        };
        let wanted = is_owner(q.owner, t.merchant, t.buyer)
            && status.is_none_or(|s| t.status == s)
            && (!f.overdue || overdue)
            && f.text.as_deref().is_none_or(named);
        wanted.then(|| ticket_view(id, t))
    });
    Ok(LogisticsView::Tickets(Page { items, next_after }))
}

/// An order's returns and tickets, for its page (whoever may read the order).
pub fn after_sales(state: &State, actor: Actor, q: &AfterSalesQuery) -> Result<LogisticsView, CoreError> {
    let o = state.order(q.order)?;
    if !(actor.may_manage_merchant(o.merchant()) || actor.may_act_for_buyer(o.buyer())) {
        return Err(CoreError::Forbidden("read this"));
    }
    let returns = q
        .returns
        .iter()
        .filter_map(|&id| {
            state.return_request(ReturnId(id)).ok().filter(|r| r.order == q.order).map(|r| (id, r))
        })
        .map(|(id, r)| return_view(state, ReturnId(id), r))
        .collect();
    let tickets = q
        .tickets
        .iter()
        .filter_map(|&id| state.ticket(TicketId(id)).ok().filter(|t| t.order == q.order).map(|t| (id, t)))
        .map(|(id, t)| ticket_view(TicketId(id), t))
        .collect();
    // The store's notes are its own people's: never the buyer's to read.
    let notes = actor.may_manage_merchant(o.merchant()).then(|| {
        state
            .order_notes(q.order)
            .iter()
            .enumerate()
            .map(|(i, n)| note_view(q.order, i as u32 + 1, n))
            .collect()
    });
    Ok(LogisticsView::AfterSales(AfterSalesView { order_id: q.order.0, returns, tickets, notes }))
}

/// An order's returns and tickets, oldest first, and, for its store and the operator, the
/// store's notes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AfterSalesView {
    pub order_id: u64,
    pub returns: Vec<crate::logistics::ReturnView>,
    pub tickets: Vec<crate::logistics::ServiceTicketView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<OrderNoteView>>,
}

/// A note a store keeps on an order.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OrderNoteView {
    pub order_id: u64,
    /// Its place among the order's notes, from 1.
    pub note: u32,
    pub at: u64,
    /// `store` or `operator`.
    pub by: &'static str,
    pub body: String,
}

pub(crate) fn note_view(order: OrderId, note: u32, n: &elevens_core::orders::OrderNote) -> OrderNoteView {
    OrderNoteView {
        order_id: order.0,
        note,
        at: n.at.0,
        by: if n.by_operator { "operator" } else { "store" },
        body: n.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_found_whatever_their_case_and_script() {
        assert!(holds("Phone X, 11.11 edition", "phone x"));
        assert!(holds("华为 Mate 70 手机", "手机"));
        assert!(holds("ÉLAN Shoes", "élan"));
        assert!(!holds("Phone", "phones"));
        assert!(holds("anything", ""));
    }

    /// A page of a store's list with these candidates, oldest first, unfiltered.
    fn page_query(candidates: Vec<u64>, more: bool, limit: usize) -> PageQuery {
        PageQuery {
            owner: ListOwner::Merchant(MerchantId(1)),
            filter: Filter::default(),
            candidates,
            more,
            newest_first: false,
            limit,
        }
    }

    #[test]
    fn a_page_of_groups_holds_whole_groups_and_resumes_at_the_next() {
        let q = |candidates, more| page_query(candidates, more, 3);
        // Candidate n has n entries.
        let entries = |id: u64| (0..id).map(|i| (id, i)).collect::<Vec<_>>();
        let (page, next) = pick_grouped(&q(vec![1, 2, 3], false), entries);
        assert_eq!(
            (page.len(), next),
            (3, Some(2)),
            "1 and 2 fill it exactly; 3 is the next page's: {page:?}"
        );
        let (page, next) = pick_grouped(&q(vec![1, 3, 1], false), entries);
        assert_eq!(
            (page, next),
            (vec![(1, 0)], Some(1)),
            "3 would pass the limit: the next page begins at it"
        );
        let (page, next) = pick_grouped(&q(vec![5, 1], true), entries);
        assert_eq!((page.len(), next), (5, Some(5)), "alone, a group larger than the limit comes whole");
        let (page, next) = pick_grouped(&q(vec![0, 1], true), entries);
        assert_eq!((page.len(), next), (1, Some(1)), "candidates used up, the list goes on");
    }

    #[test]
    fn a_page_ends_at_its_limit_or_its_candidates() {
        let q = |candidates, more| page_query(candidates, more, 2);
        let even = |id: u64| id.is_multiple_of(2).then_some(id);
        assert_eq!(pick(&q(vec![1, 2, 3, 4, 5], false), even), (vec![2, 4], Some(4)));
        // The limit reached at the last candidate: the cursor only if the list goes on.
        assert_eq!(pick(&q(vec![1, 2, 3, 4], false), even), (vec![2, 4], None));
        assert_eq!(pick(&q(vec![1, 2, 3, 4], true), even), (vec![2, 4], Some(4)));
        // Candidates used up short of the limit.
        assert_eq!(pick(&q(vec![1, 3, 5], true), even), (vec![], Some(5)));
        assert_eq!(pick(&q(vec![1, 3, 6], false), even), (vec![6], None));
        // Newest first: the cursor is the last (lowest) id looked at.
        assert_eq!(pick(&q(vec![9, 8, 6, 4], true), even), (vec![8, 6], Some(6)));
    }
}
