//! Promotions: flash-sale campaigns, coupons and red packets.

use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::fingerprint::Defaulted;
use crate::views::*;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaignRequest {
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub flash_price: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: u64,
    /// Milliseconds since the Unix epoch.
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_buyer_limit: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponKind {
    Fixed,
    Percent,
    /// The platform's discount across stores at checkout: `amount_off` for every `every`.
    CrossStore,
}

pub(crate) fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponRequest {
    /// The merchant that funds the discount (its SKUs only); absent: platform-funded (admin).
    pub merchant_id: Option<u64>,
    pub kind: CouponKind,
    /// For `fixed`: minor units off.
    pub amount_off: Option<u64>,
    /// For `percent`: basis points off (1000 = 10%), rounded down to the minor unit.
    pub percent_bps: Option<u16>,
    /// For `percent` and `cross_store`: the most it takes off (a checkout, for `cross_store`).
    pub cap: Option<u64>,
    /// For `cross_store`: the step of the spend across stores that earns `amount_off`.
    pub every: Option<u64>,
    /// For `cross_store`: each store pays its own order's share of the discount (default: the
    /// platform pays it all).
    #[serde(default)]
    pub merchants_fund: bool,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The order's subtotal must reach this.
    #[serde(default)]
    pub min_spend: u64,
    pub starts_at: u64,
    pub ends_at: u64,
    #[serde(default = "one")]
    pub per_buyer_limit: u32,
    /// The most money all uses together may take off.
    pub budget_amount: Option<u64>,
    /// The most orders that may use it.
    pub budget_uses: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRedPacketRequest {
    /// The merchant that funds the pool from its wallet; absent: the platform (admin).
    pub merchant_id: Option<u64>,
    /// The whole pool, in minor units.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub amount: u64,
    /// How many shares (each at least one minor unit).
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub count: u32,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Default: now.
    pub starts_at: Option<u64>,
    pub ends_at: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub buyer_id: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CouponListParams {
    /// Only this merchant's (coupons, red packets).
    pub merchant_id: Option<u64>,
}

pub(crate) fn sponsor(merchant_id: Option<u64>) -> Sponsor {
    merchant_id.map_or(Sponsor::Platform, |m| Sponsor::Merchant(MerchantId(m)))
}

impl CreateCouponRequest {
    pub(crate) fn command(self) -> Result<Command, ApiError> {
        let rule = match (self.kind, self.amount_off, self.percent_bps, self.cap, self.every) {
            (CouponKind::Fixed, Some(amount), None, None, None) if !self.merchants_fund => {
                DiscountRule::Fixed { amount: Amount(amount) }
            }
            (CouponKind::Percent, None, Some(bps), cap, None) if !self.merchants_fund => {
                DiscountRule::Percent { bps, cap: cap.map(Amount) }
            }
            (CouponKind::CrossStore, Some(off), None, cap, Some(every)) => DiscountRule::CrossStore {
                every: Amount(every),
                off: Amount(off),
                cap: cap.map(Amount),
                merchants_fund: self.merchants_fund,
            },
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_coupon",
                    "a fixed coupon takes amount_off; a percent coupon takes percent_bps and maybe cap; \
                     a cross_store discount takes every, amount_off, maybe cap and merchants_fund",
                ))
            }
        };
        Ok(Command::CreateCoupon(Box::new(NewCoupon {
            sponsor: sponsor(self.merchant_id),
            rule,
            currency: currency(&self.currency)?,
            min_spend: Amount(self.min_spend),
            starts_at: Millis(self.starts_at),
            ends_at: Millis(self.ends_at),
            per_buyer_limit: self.per_buyer_limit,
            budget_amount: self.budget_amount.map(Amount),
            budget_uses: self.budget_uses,
        })))
    }
}

impl CreateRedPacketRequest {
    pub(crate) fn command(self) -> Result<(Command, Defaulted), ApiError> {
        let defaulted = Defaulted { starts_at: self.starts_at.is_none(), ..Defaulted::NONE };
        let command = Command::CreateRedPacket(NewRedPacket {
            sponsor: sponsor(self.merchant_id),
            amount: Amount(self.amount),
            count: self.count,
            currency: currency(&self.currency)?,
            starts_at: self.starts_at.map_or_else(crate::engine::now_ms, Millis),
            ends_at: Millis(self.ends_at),
            // Drawn here, in the shell; journaled with the command, so replay pays the same shares.
            seed: rand::random(),
        });
        Ok((command, defaulted))
    }
}

impl CreateCampaignRequest {
    pub(crate) fn command(self) -> Result<Command, ApiError> {
        Ok(Command::CreateCampaign(NewCampaign {
            sku: SkuId(self.sku_id),
            flash_price: Amount(self.flash_price),
            currency: currency(&self.currency)?,
            quantity: self.quantity,
            starts_at: Millis(self.starts_at),
            ends_at: Millis(self.ends_at),
            per_buyer_limit: self.per_buyer_limit,
        }))
    }
}

/// A sale as `POST /v1/campaigns` takes it: the batch's terms ([`CreateCampaignRequest`], whose
/// binary layout is pinned) and the name merchants and the big screen know it by.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaignRequest {
    /// At most 200 bytes; absent for a sale known by its SKU's title.
    pub name: Option<String>,
    pub sku_id: u64,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub flash_price: u64,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: u64,
    /// Milliseconds since the Unix epoch.
    pub starts_at: u64,
    pub ends_at: u64,
    pub per_buyer_limit: u32,
}

/// Create a flash-sale campaign on a SKU.
#[utoipa::path(post, path = "/v1/campaigns", tag = "promotions", request_body = NewCampaignRequest,
    responses((status = 201, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn create_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<NewCampaignRequest>,
) -> Answer {
    let NewCampaignRequest {
        name,
        sku_id,
        flash_price,
        currency,
        quantity,
        starts_at,
        ends_at,
        per_buyer_limit,
    } = request;
    let terms = CreateCampaignRequest {
        sku_id,
        flash_price,
        currency,
        quantity,
        starts_at,
        ends_at,
        per_buyer_limit,
    };
    let command = match (terms.command()?, name) {
        (Command::CreateCampaign(terms), Some(name)) => {
            Command::CreateNamedCampaign(Box::new(NamedCampaign { name, terms }))
        }
        (command, _) => command,
    };
    write(&app, actor, &key, command, CREATED).await
}

/// What to change in a sale; an absent field stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaignRequest {
    pub name: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_u64)]
    pub flash_price: Option<u64>,
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub quantity: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub starts_at: Option<u64>,
    pub ends_at: Option<u64>,
    pub per_buyer_limit: Option<u32>,
}

/// Change a sale: any term before it starts; once it runs, its name, its quantity (not below
/// the units taken) and its end (not before now). Its merchant or the operator.
#[utoipa::path(patch, path = "/v1/campaigns/{id}", tag = "promotions", request_body = UpdateCampaignRequest,
    responses((status = 200, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn update_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<UpdateCampaignRequest>,
) -> Answer {
    let edit = CampaignEdit {
        campaign: CampaignId(id),
        name: request.name,
        flash_price: request.flash_price.map(Amount),
        quantity: request.quantity,
        starts_at: request.starts_at.map(Millis),
        ends_at: request.ends_at.map(Millis),
        per_buyer_limit: request.per_buyer_limit,
    };
    write(&app, actor, &key, Command::UpdateCampaign(Box::new(edit)), OK).await
}

/// End a sale now, or cancel it if it has not started. Its merchant or the operator.
#[utoipa::path(post, path = "/v1/campaigns/{id}/end", tag = "promotions",
    responses((status = 200, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn end_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::EndCampaign { campaign: CampaignId(id) }, OK).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeaturedRequest {
    /// The sale to feature; null to let the screen choose (the open sale with the most GMV).
    pub campaign_id: Option<u64>,
}

/// The sale the big screen features (the operator's). Admin only.
#[utoipa::path(put, path = "/v1/screen/featured", tag = "analytics", request_body = FeaturedRequest,
    responses((status = 200, body = FeaturedView), (status = "4XX", body = ErrorBody)))]
pub async fn feature_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<FeaturedRequest>,
) -> Answer {
    let command = Command::FeatureCampaign { campaign: request.campaign_id.map(CampaignId) };
    write(&app, actor, &key, command, OK).await
}

/// A campaign, with the server's time for the countdown.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "promotions",
    responses((status = 200, body = CampaignView), (status = "4XX", body = ErrorBody)))]
pub async fn get_campaign(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Campaign(CampaignId(id))).await
}

/// Create a coupon: merchant-funded (by the merchant, for its SKUs) or platform-funded (admin).
#[utoipa::path(post, path = "/v1/coupons", tag = "promotions", request_body = CreateCouponRequest,
    responses((status = 201, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn create_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateCouponRequest>,
) -> Answer {
    write(&app, actor, &key, request.command()?, CREATED).await
}

/// The newest coupons, of one merchant if asked.
#[utoipa::path(get, path = "/v1/coupons", tag = "promotions", params(CouponListParams),
    responses((status = 200, body = CouponList), (status = "4XX", body = ErrorBody)))]
pub async fn list_coupons(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<CouponListParams>,
) -> Answer {
    let sponsor = params.merchant_id.map(|m| Sponsor::Merchant(MerchantId(m)));
    read(&app, actor, Query::Coupons { sponsor }).await
}

/// A coupon, with its budget used so far.
#[utoipa::path(get, path = "/v1/coupons/{id}", tag = "promotions",
    responses((status = 200, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn get_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Coupon(CouponId(id))).await
}

/// Stop a coupon from being used by new orders.
#[utoipa::path(post, path = "/v1/coupons/{id}/disable", tag = "promotions",
    responses((status = 200, body = CouponView), (status = "4XX", body = ErrorBody)))]
pub async fn disable_coupon(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::DisableCoupon { coupon: CouponId(id) }, OK).await
}

/// Coupons a buyer can use now, with the uses left to the buyer.
#[utoipa::path(get, path = "/v1/buyers/{id}/coupons", tag = "promotions",
    responses((status = 200, body = CouponList), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_coupons(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::BuyerCoupons(BuyerId(id))).await
}

/// Fund a red packet: the pool moves from the sponsor into escrow at once.
#[utoipa::path(post, path = "/v1/red-packets", tag = "promotions", request_body = CreateRedPacketRequest,
    responses((status = 201, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn create_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateRedPacketRequest>,
) -> Answer {
    write_ticketed(&app, actor, &key, request.command()?, CREATED, None).await
}

/// The newest red packets, of one merchant if asked.
#[utoipa::path(get, path = "/v1/red-packets", tag = "promotions", params(CouponListParams),
    responses((status = 200, body = RedPacketList), (status = "4XX", body = ErrorBody)))]
pub async fn list_red_packets(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<CouponListParams>,
) -> Answer {
    let sponsor = params.merchant_id.map(|m| Sponsor::Merchant(MerchantId(m)));
    read(&app, actor, Query::RedPackets { sponsor }).await
}

/// A red packet: shares claimed, money left, status.
#[utoipa::path(get, path = "/v1/red-packets/{id}", tag = "promotions",
    responses((status = 200, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn get_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::RedPacket(RedPacketId(id))).await
}

/// Close a red packet now: what is unclaimed returns to the sponsor.
#[utoipa::path(post, path = "/v1/red-packets/{id}/close", tag = "promotions",
    responses((status = 200, body = RedPacketView), (status = "4XX", body = ErrorBody)))]
pub async fn close_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
) -> Answer {
    write(&app, actor, &key, Command::CloseRedPacket { packet: RedPacketId(id) }, OK).await
}

/// Claim a share: at most one per buyer, credited to the buyer's wallet.
#[utoipa::path(post, path = "/v1/red-packets/{id}/claims", tag = "promotions", request_body = ClaimRequest,
    responses((status = 201, body = ClaimView), (status = "4XX", body = ErrorBody)))]
pub async fn claim_red_packet(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<ClaimRequest>,
) -> Answer {
    let command = Command::ClaimRedPacket { packet: RedPacketId(id), buyer: BuyerId(request.buyer_id) };
    write(&app, actor, &key, command, CREATED).await
}

/// A buyer's red-packet shares.
#[utoipa::path(get, path = "/v1/buyers/{id}/red-packets", tag = "promotions",
    responses((status = 200, body = ClaimList), (status = "4XX", body = ErrorBody)))]
pub async fn get_buyer_claims(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::BuyerClaims(BuyerId(id))).await
}
