//! Every route and its OpenAPI document, registered together from each handler's
//! `#[utoipa::path]`, so the document and the router cannot drift. Above the resources' files:
//! they use the toolkit in `api.rs`; only this file names them all.

use crate::api::AppState;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "elevens", description = "The transaction core of a marketplace: catalogue, inventory, orders, flash sales and an Alipay-style ledger."),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route and its OpenAPI document, built together.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(crate::ops::healthz))
        .routes(routes!(crate::listing::get_me))
        .routes(routes!(crate::listing::merchant_skus))
        .routes(routes!(crate::listing::merchant_products))
        .routes(routes!(crate::listing::category_tree))
        .routes(routes!(crate::listing::merchant_campaigns))
        .routes(routes!(crate::sheets::merchant_orders_csv))
        .routes(routes!(crate::sheets::import_catalogue))
        .routes(routes!(crate::live::store_figures))
        .routes(routes!(crate::ops::cluster))
        .routes(routes!(crate::keys::create_api_key, crate::listing::list_api_keys))
        .routes(routes!(crate::keys::revoke_api_key))
        .routes(routes!(crate::catalogue::create_merchant, crate::listing::list_merchants))
        .routes(routes!(crate::catalogue::get_merchant))
        .routes(routes!(crate::catalogue::set_store_zone))
        .routes(routes!(crate::ledger::get_merchant_wallet))
        .routes(routes!(crate::ledger::create_buyer, crate::listing::list_buyers))
        .routes(routes!(crate::ledger::get_buyer))
        .routes(routes!(crate::ledger::create_top_up))
        .routes(routes!(crate::ledger::get_buyer_wallet))
        .routes(routes!(crate::ledger::get_platform_wallet))
        .routes(routes!(crate::catalogue::create_sku))
        .routes(routes!(crate::catalogue::get_sku, crate::catalogue::update_sku))
        .routes(routes!(crate::catalogue::restock))
        .routes(routes!(crate::promotions::create_campaign))
        .routes(routes!(crate::promotions::get_campaign, crate::promotions::update_campaign))
        .routes(routes!(crate::promotions::end_campaign))
        .routes(routes!(crate::promotions::feature_campaign))
        .routes(routes!(crate::orders::place_order))
        .routes(routes!(crate::orders::get_order))
        .routes(routes!(crate::orders::pay_order))
        .routes(routes!(crate::orders::cancel_order))
        .routes(routes!(crate::orders::refund_order))
        .routes(routes!(crate::orders::expire_reservations))
        .routes(routes!(crate::checkout::get_cart))
        .routes(routes!(crate::checkout::set_cart_line))
        .routes(routes!(crate::checkout::checkout))
        .routes(routes!(crate::products::create_category, crate::products::list_categories))
        .routes(routes!(crate::products::get_category))
        .routes(routes!(crate::products::move_category))
        .routes(routes!(crate::products::create_product))
        .routes(routes!(crate::products::get_product))
        .routes(routes!(crate::products::add_variant))
        .routes(routes!(crate::products::move_product))
        .routes(routes!(crate::ops::audit))
        .routes(routes!(crate::promotions::create_coupon, crate::promotions::list_coupons))
        .routes(routes!(crate::promotions::get_coupon))
        .routes(routes!(crate::promotions::disable_coupon))
        .routes(routes!(crate::promotions::get_buyer_coupons))
        .routes(routes!(crate::promotions::create_red_packet, crate::promotions::list_red_packets))
        .routes(routes!(crate::promotions::get_red_packet))
        .routes(routes!(crate::promotions::close_red_packet))
        .routes(routes!(crate::promotions::claim_red_packet))
        .routes(routes!(crate::promotions::get_buyer_claims))
        .routes(routes!(crate::batch::batch))
        .routes(routes!(crate::batch::batch_binary))
        .routes(routes!(crate::admission::take_ticket))
        .routes(routes!(crate::admission::get_ticket))
        .routes(routes!(crate::admission::get_admission))
        .routes(routes!(crate::admission::get_admission_rules, crate::admission::put_admission_rules))
        .routes(routes!(crate::live::summary))
        .routes(routes!(crate::live::timeline))
        .routes(routes!(crate::live::top))
        .routes(routes!(crate::live::funnel))
        .routes(routes!(crate::live::views))
        .routes(routes!(crate::experiments::create_experiment, crate::listing::list_experiments))
        .routes(routes!(crate::experiments::get_experiment))
        .routes(routes!(crate::live::variant))
        .routes(routes!(crate::live::experiment_results))
        .routes(routes!(crate::search::search))
        .routes(routes!(crate::events::list_events))
        .routes(routes!(crate::webhooks::create_webhook, crate::webhooks::list_webhooks))
        .routes(routes!(crate::webhooks::get_webhook, crate::webhooks::delete_webhook))
        .routes(routes!(crate::webhooks::enable_webhook))
        .routes(routes!(crate::webhooks::list_deliveries))
        .merge(crate::logistics::routes(OpenApiRouter::new()))
}
