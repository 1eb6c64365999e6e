//! Newtypes for ids, money and time, so that the compiler catches a price passed as a quantity.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Ids are assigned by the engine, densely, starting at 1 (0 is never a valid id).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl $name {
            /// The position of this id in its dense table, if it can be one.
            pub(crate) fn index(self) -> Option<usize> {
                usize::try_from(self.0.checked_sub(1)?).ok()
            }

            pub(crate) fn from_index(index: usize) -> Self {
                $name(index as u64 + 1)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A store on the marketplace.
    MerchantId
);
id_type!(
    /// A shopper with a wallet.
    BuyerId
);
id_type!(
    /// An A/B experiment.
    ExperimentId
);
id_type!(
    /// A stock-keeping unit: one sellable item of one merchant.
    SkuId
);
id_type!(
    /// An order of a buyer at one merchant.
    OrderId
);
id_type!(
    /// A flash-sale campaign on one SKU.
    CampaignId
);
id_type!(
    /// One double-entry transfer in the ledger.
    TransferId
);
id_type!(
    /// A coupon (voucher): money off an order, within a budget.
    CouponId
);
id_type!(
    /// A red-packet pool: an amount split into random shares, one per claiming buyer.
    RedPacketId
);
id_type!(
    /// An API key (the secret itself is never stored, only its hash).
    ApiKeyId
);
id_type!(
    /// A merchant's warehouse.
    WarehouseId
);
id_type!(
    /// A carrier (parcel delivery company).
    CarrierId
);
id_type!(
    /// A parcel: the lines of one paid order that leave from one warehouse.
    ShipmentId
);
id_type!(
    /// A buyer's request to return lines of an order.
    ReturnId
);
id_type!(
    /// A service ticket on an order.
    TicketId
);
id_type!(
    /// A node of the operator's category tree.
    CategoryId
);
id_type!(
    /// A merchant's product: its SKUs are the variants.
    ProductId
);

/// Milliseconds since the Unix epoch. Time enters the state machine only inside commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Millis(pub u64);

impl Millis {
    pub fn saturating_add(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

/// An amount of money in minor units (fen, cents). Never negative; see [`crate::limits::AMOUNT_MAX`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Amount(pub u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn checked_mul(self, quantity: u64) -> Option<Amount> {
        self.0.checked_mul(quantity).map(Amount)
    }

    /// `self * bps / 10_000`, rounded down: the platform's share of a payment.
    pub fn basis_points(self, bps: u16) -> Amount {
        // u128 intermediate: exact for every u64 amount.
        Amount((u128::from(self.0) * u128::from(bps) / 10_000) as u64)
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes: [u8; 3] = code.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_uppercase).then_some(Currency(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only built by `parse`, from ASCII.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who pays for a promotion: the platform (from its marketing budget, outside the ledger like a
/// top-up: the external account) or a merchant (from its wallet, or by receiving less).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sponsor {
    Platform,
    Merchant(MerchantId),
}

/// Who sends a command. Access rules (who may touch what) are part of the domain and are checked
/// by the state machine itself, so that they hold on every path, replay included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// Everything.
    Admin,
    /// A storefront backend acting for any buyer.
    Service,
    /// One merchant's own store, SKUs and campaigns.
    Merchant(MerchantId),
    /// One buyer's own wallet and orders.
    Buyer(BuyerId),
    /// A carrier reporting the tracking of the parcels it carries, and nothing else.
    Carrier(CarrierId),
    /// The big screen: reads the platform's live figures and public catalogue data, and changes
    /// nothing (every command refuses it).
    Viewer,
}

impl Actor {
    pub fn may_act_for_buyer(self, buyer: BuyerId) -> bool {
        match self {
            Actor::Admin | Actor::Service => true,
            Actor::Buyer(own) => own == buyer,
            Actor::Merchant(_) | Actor::Carrier(_) | Actor::Viewer => false,
        }
    }

    /// Admins sponsor for the platform; a merchant for itself.
    pub fn may_sponsor(self, sponsor: Sponsor) -> bool {
        match sponsor {
            Sponsor::Platform => self == Actor::Admin,
            Sponsor::Merchant(m) => self.may_manage_merchant(m),
        }
    }

    pub fn may_manage_merchant(self, merchant: MerchantId) -> bool {
        match self {
            Actor::Admin => true,
            Actor::Merchant(own) => own == merchant,
            Actor::Service | Actor::Buyer(_) | Actor::Carrier(_) | Actor::Viewer => false,
        }
    }
}

/// A number below 2^40 in five bytes (ids and positions in records kept by the million: a
/// transfer's order and links, a SKU's texts). Encoded as the `u64` it stands for, so the
/// snapshot's layout is the same as with `u64` fields; a larger value is refused when decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct U40([u8; 5]);

impl U40 {
    pub(crate) const MAX: u64 = (1 << 40) - 1;

    /// `value` must be at most [`U40::MAX`] (callers check it against their bound).
    pub(crate) fn new(value: u64) -> U40 {
        debug_assert!(value <= U40::MAX);
        let b = value.to_le_bytes();
        U40([b[0], b[1], b[2], b[3], b[4]])
    }

    pub(crate) fn get(self) -> u64 {
        let [a, b, c, d, e] = self.0;
        u64::from_le_bytes([a, b, c, d, e, 0, 0, 0])
    }
}

impl Serialize for U40 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for U40 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<U40, D::Error> {
        let value = u64::deserialize(deserializer)?;
        if value > U40::MAX {
            return Err(serde::de::Error::custom("a five-byte number above 2^40 - 1"));
        }
        Ok(U40::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A five-byte id is encoded as the `u64` it stands for, and one above 2^40 - 1 is refused.
    #[test]
    fn u40_encodes_as_u64() {
        for value in [0, 1, 127, 128, 1 << 32, U40::MAX] {
            let bytes = postcard::to_allocvec(&U40::new(value)).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&value).unwrap());
            assert_eq!(postcard::from_bytes::<U40>(&bytes).unwrap().get(), value);
        }
        let too_large = postcard::to_allocvec(&(U40::MAX + 1)).unwrap();
        assert!(postcard::from_bytes::<U40>(&too_large).is_err());
    }
}
