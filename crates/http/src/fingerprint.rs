//! Idempotency keys and fingerprints, as the gateway computes them.
//!
//! A key is scoped to its actor (two tenants never share a key). The fingerprint is of what the
//! *client sent*, never of what the gateway filled in: the randomness it draws (a key's secret,
//! a pool's seed), the server's settings (an order's reservation time) and the defaults of
//! fields the client left out (a red packet's start, "now"; a merchant's commission). So the same
//! request resent later, after the clock moved or the config changed, matches its first use and
//! gets the first answer, and a different request under the same key is refused.
//!
//! [`fingerprint`] matches every command without a wildcard: a new command cannot be added
//! without deciding which of its fields are the client's.

use elevens_core::{Actor, Command, Idempotency, NewRedPacket};
use serde::Serialize;

/// Fields of a command the gateway filled in because the client left them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaulted {
    /// A red packet's `starts_at` (filled with the time the request arrived).
    pub starts_at: bool,
    /// A merchant's `commission_bps` (filled with the server's default).
    pub commission_bps: bool,
}

impl Defaulted {
    pub const NONE: Defaulted = Defaulted { starts_at: false, commission_bps: false };

    /// Mixed into the hash, so a field left out differs from any value sent for it.
    fn bits(self) -> u64 {
        u64::from(self.starts_at) | u64::from(self.commission_bps) << 1
    }
}

/// The scoped key and the fingerprint of `command` as the client sent it.
pub fn idempotency(actor: Actor, key: &str, command: &Command, defaulted: Defaulted) -> Idempotency {
    let mut hasher = blake3::Hasher::new();
    with_encoded(&actor, |bytes| hasher.update(bytes));
    hasher.update(key.as_bytes());
    let mut scoped = [0u8; 16];
    scoped.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Idempotency { key: u128::from_le_bytes(scoped), fingerprint: fingerprint(command, defaulted) }
}

/// The hash of the client's part of `command`. Variants with fields the gateway chooses hash a
/// tuple of the client's fields after the command's name (no allocation: a batch fingerprints
/// thousands of orders); the others hash the command whole.
pub fn fingerprint(command: &Command, defaulted: Defaulted) -> u64 {
    let seed = defaulted.bits();
    let hash = |bytes: &[u8]| xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed);
    match command {
        // The secret is drawn by the gateway.
        Command::CreateApiKey { acts_as, secret_sha256: _ } => with_encoded(&(command.name(), acts_as), hash),
        Command::CreateLabelledApiKey { acts_as, secret_sha256: _, label } => {
            with_encoded(&(command.name(), acts_as, label), hash)
        }
        // The reservation time is the server's setting.
        Command::PlaceOrder { buyer, lines, coupons, reservation_ttl_ms: _ } => {
            with_encoded(&(command.name(), buyer, lines, coupons), hash)
        }
        // The seed is drawn by the gateway; the start may be its default.
        Command::CreateRedPacket(new) => {
            let NewRedPacket { sponsor, amount, count, currency, starts_at, ends_at, seed: _ } = new;
            let starts_at = (!defaulted.starts_at).then_some(starts_at);
            with_encoded(&(command.name(), sponsor, amount, count, currency, starts_at, ends_at), hash)
        }
        // The commission may be the server's default.
        Command::CreateMerchant { name, commission_bps } => {
            let commission_bps = (!defaulted.commission_bps).then_some(commission_bps);
            with_encoded(&(command.name(), name, commission_bps), hash)
        }
        // Every field of these is the client's.
        Command::RevokeApiKey { .. }
        | Command::CreateBuyer { .. }
        | Command::CreateSku(_)
        | Command::Restock { .. }
        | Command::TopUp { .. }
        | Command::CreateCampaign(_)
        | Command::PayOrder { .. }
        | Command::CancelOrder { .. }
        | Command::RefundOrder { .. }
        | Command::Tick
        | Command::CreateCoupon(_)
        | Command::DisableCoupon { .. }
        | Command::CloseRedPacket { .. }
        | Command::ClaimRedPacket { .. }
        | Command::CreateExperiment(_)
        | Command::CreateWarehouse(_)
        | Command::CreateCarrier(_)
        | Command::SetAddress { .. }
        | Command::SetSkuWarehouse { .. }
        | Command::SetShippingFee { .. }
        | Command::DispatchShipment { .. }
        | Command::CancelShipment { .. }
        | Command::RecordTracking { .. }
        | Command::RefundLines { .. }
        | Command::RequestReturn { .. }
        | Command::DecideReturn { .. }
        | Command::ReceiveReturn { .. }
        | Command::RefundReturn { .. }
        | Command::OpenTicket { .. }
        | Command::UpdateTicket { .. }
        | Command::UpdateSku(_)
        | Command::SetCartLine { .. }
        | Command::Checkout { .. }
        | Command::CreateCategory { .. }
        | Command::MoveCategory { .. }
        | Command::CreateProduct(_)
        | Command::AddVariant { .. }
        | Command::MoveProduct { .. }
        | Command::CreateNamedCampaign(_)
        | Command::UpdateCampaign(_)
        | Command::EndCampaign { .. }
        | Command::FeatureCampaign { .. }
        | Command::ReplyTicket { .. }
        | Command::SetStoreZone { .. }
        | Command::NoteOrder { .. } => with_encoded(command, hash),
    }
}

/// `f` of `value`'s postcard bytes, encoded on the stack: a batch fingerprints thousands of
/// commands, and an allocation each would cost more than the hash. A larger value (a SKU with a
/// long description) goes to the heap.
pub(crate) fn with_encoded<T: Serialize, R>(value: &T, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buffer = [0u8; 512];
    match postcard::to_slice(value, &mut buffer) {
        Ok(bytes) => f(bytes),
        Err(_) => f(&postcard::to_stdvec(value).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevens_core::*;

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    fn packet(starts_at: u64, seed: u64) -> Command {
        Command::CreateRedPacket(NewRedPacket {
            sponsor: Sponsor::Platform,
            amount: Amount(1_000),
            count: 10,
            currency: cny(),
            starts_at: Millis(starts_at),
            ends_at: Millis(60_000_000),
            seed,
        })
    }

    fn order(ttl: u64) -> Command {
        Command::PlaceOrder {
            buyer: BuyerId(7),
            lines: vec![LineRequest { sku: SkuId(1), quantity: 2 }],
            coupons: vec![],
            reservation_ttl_ms: ttl,
        }
    }

    #[test]
    fn what_the_gateway_fills_in_is_not_fingerprinted() {
        let filled = Defaulted { starts_at: true, ..Defaulted::NONE };
        // A red packet resent 10 ms later, its start filled with "now" each time, another seed.
        assert_eq!(fingerprint(&packet(1_000, 1), filled), fingerprint(&packet(1_010, 2), filled));
        // But a start the client sent is the client's: another start is another request, and
        // a start sent differs from one left out, whatever its value.
        assert_ne!(
            fingerprint(&packet(1_000, 1), Defaulted::NONE),
            fingerprint(&packet(1_010, 1), Defaulted::NONE)
        );
        assert_ne!(fingerprint(&packet(1_000, 1), Defaulted::NONE), fingerprint(&packet(1_000, 1), filled));
        assert_eq!(
            fingerprint(&order(900_000), Defaulted::NONE),
            fingerprint(&order(60_000), Defaulted::NONE)
        );
        let key = |secret| Command::CreateApiKey { acts_as: Actor::Service, secret_sha256: [secret; 32] };
        assert_eq!(fingerprint(&key(1), Defaulted::NONE), fingerprint(&key(2), Defaulted::NONE));
        let merchant = |bps| Command::CreateMerchant { name: "m".into(), commission_bps: bps };
        let default = Defaulted { commission_bps: true, ..Defaulted::NONE };
        assert_eq!(fingerprint(&merchant(200), default), fingerprint(&merchant(300), default));
        assert_ne!(fingerprint(&merchant(200), default), fingerprint(&merchant(200), Defaulted::NONE));
        // Different commands never share a fingerprint by construction of their fields alone.
        assert_ne!(fingerprint(&order(0), Defaulted::NONE), fingerprint(&packet(0, 0), Defaulted::NONE));
    }

    #[test]
    fn keys_are_scoped_to_their_actor_and_large_commands_hash_alike_on_the_heap() {
        let o = order(900_000);
        assert_ne!(
            idempotency(Actor::Merchant(MerchantId(3)), "k", &o, Defaulted::NONE).key,
            idempotency(Actor::Service, "k", &o, Defaulted::NONE).key
        );
        let sku = Command::CreateSku(Box::new(NewSku {
            merchant: MerchantId(3),
            title: "kettle".into(),
            description: "x".repeat(2_000),
            price: Amount(100),
            currency: cny(),
            initial_stock: 5,
            warehouse: None,
        }));
        let heap = xxhash_rust::xxh3::xxh3_64(&postcard::to_stdvec(&sku).unwrap());
        assert_eq!(fingerprint(&sku, Defaulted::NONE), heap);
    }
}
