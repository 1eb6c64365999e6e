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
}

impl Actor {
    pub fn may_act_for_buyer(self, buyer: BuyerId) -> bool {
        match self {
            Actor::Admin | Actor::Service => true,
            Actor::Buyer(own) => own == buyer,
            Actor::Merchant(_) => false,
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
            Actor::Service | Actor::Buyer(_) => false,
        }
    }
}
