//! Products and categories: the operator's category tree, a merchant's products with their
//! attributes, and the SKUs that are their variants.

use crate::api::*;
use crate::error::ErrorBody;
use crate::views::*;
use elevens_core::products::NewProduct;
use elevens_core::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategoryRequest {
    pub name: String,
    /// Absent: a root.
    pub parent_id: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveCategoryRequest {
    /// Absent: to the root.
    pub parent_id: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CategoryListParams {
    /// The children of this category; absent: the roots.
    pub parent_id: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeBody {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    pub merchant_id: u64,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub category_id: u64,
    /// At most 16, each name and value at most 64 bytes.
    #[serde(default)]
    pub attributes: Vec<AttributeBody>,
    /// The option names its variants differ by (at most 3), e.g. `["colour", "storage"]`.
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVariantRequest {
    /// A SKU of the product's merchant, not yet a variant of any product.
    pub sku_id: u64,
    /// One value per option of the product, in their order.
    pub options: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveProductRequest {
    pub category_id: u64,
}

/// A node of the category tree (admin): at most 10,000 nodes, 6 levels.
#[utoipa::path(post, path = "/v1/categories", tag = "catalogue", request_body = CreateCategoryRequest,
    responses((status = 201, body = CategoryView), (status = "4XX", body = ErrorBody)))]
pub async fn create_category(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateCategoryRequest>,
) -> Answer {
    let command = Command::CreateCategory { name: request.name, parent: request.parent_id.map(CategoryId) };
    write(&app, actor, &key, command, CREATED).await
}

/// The children of a category, or the roots.
#[utoipa::path(get, path = "/v1/categories", tag = "catalogue", params(CategoryListParams),
    responses((status = 200, body = CategoryList), (status = "4XX", body = ErrorBody)))]
pub async fn list_categories(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppQuery(params): AppQuery<CategoryListParams>,
) -> Answer {
    read(&app, actor, Query::Categories(params.parent_id.map(CategoryId))).await
}

/// A category, with its path from the root.
#[utoipa::path(get, path = "/v1/categories/{id}", tag = "catalogue",
    responses((status = 200, body = CategoryView), (status = "4XX", body = ErrorBody)))]
pub async fn get_category(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Category(CategoryId(id))).await
}

/// Moves a category and everything under it (admin); never under itself, never deeper than 6.
#[utoipa::path(post, path = "/v1/categories/{id}/move", tag = "catalogue", request_body = MoveCategoryRequest,
    responses((status = 200, body = CategoryView), (status = "4XX", body = ErrorBody)))]
pub async fn move_category(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<MoveCategoryRequest>,
) -> Answer {
    let command =
        Command::MoveCategory { category: CategoryId(id), parent: request.parent_id.map(CategoryId) };
    write(&app, actor, &key, command, OK).await
}

/// A product of a merchant, in one category, with attributes and the options its variants
/// differ by.
#[utoipa::path(post, path = "/v1/products", tag = "catalogue", request_body = CreateProductRequest,
    responses((status = 201, body = ProductView), (status = "4XX", body = ErrorBody)))]
pub async fn create_product(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppJson(request): AppJson<CreateProductRequest>,
) -> Answer {
    let command = Command::CreateProduct(Box::new(NewProduct {
        merchant: MerchantId(request.merchant_id),
        title: request.title,
        description: request.description,
        category: CategoryId(request.category_id),
        attributes: request.attributes.into_iter().map(|a| (a.name, a.value)).collect(),
        options: request.options,
    }));
    write(&app, actor, &key, command, CREATED).await
}

/// A product with its variant grid: each SKU's option values, price and stock.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "catalogue",
    responses((status = 200, body = ProductView), (status = "4XX", body = ErrorBody)))]
pub async fn get_product(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    AppPath(id): AppPath<u64>,
) -> Answer {
    read(&app, actor, Query::Product(ProductId(id))).await
}

/// Makes a SKU of the product's merchant one of its variants (at most 100 a product).
#[utoipa::path(post, path = "/v1/products/{id}/variants", tag = "catalogue", request_body = AddVariantRequest,
    responses((status = 200, body = ProductView), (status = "4XX", body = ErrorBody)))]
pub async fn add_variant(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<AddVariantRequest>,
) -> Answer {
    let command =
        Command::AddVariant { product: ProductId(id), sku: SkuId(request.sku_id), options: request.options };
    write(&app, actor, &key, command, OK).await
}

/// Moves a product to another category (its merchant or the operator).
#[utoipa::path(post, path = "/v1/products/{id}/move", tag = "catalogue", request_body = MoveProductRequest,
    responses((status = 200, body = ProductView), (status = "4XX", body = ErrorBody)))]
pub async fn move_product(
    axum::extract::State(app): axum::extract::State<AppState>,
    Auth(actor): Auth,
    key: IdempotencyKey,
    AppPath(id): AppPath<u64>,
    AppJson(request): AppJson<MoveProductRequest>,
) -> Answer {
    let command = Command::MoveProduct { product: ProductId(id), category: CategoryId(request.category_id) };
    write(&app, actor, &key, command, OK).await
}
