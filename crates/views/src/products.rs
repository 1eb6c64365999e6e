//! Products and categories as the API shows them: a product with its variant grid (each SKU's
//! option values, price and stock), and the category tree by node.

use crate::*;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub product_id: u64,
    pub merchant_id: u64,
    pub title: String,
    pub description: String,
    pub category_id: u64,
    /// The category's names from the root down.
    pub category_path: Vec<String>,
    pub attributes: Vec<AttributeView>,
    /// The names of the options the variants differ by.
    pub options: Vec<String>,
    pub variants: Vec<ProductVariantView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeView {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductVariantView {
    pub sku_id: u64,
    /// One value for each of the product's options, in their order.
    pub options: Vec<String>,
    pub title: String,
    pub price: u64,
    #[schema(value_type = String)]
    pub currency: Code,
    pub available: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub category_id: u64,
    pub name: String,
    pub parent_id: Option<u64>,
    /// The names from the root down, itself last.
    pub path: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryView>,
}

pub(crate) fn product_view(state: &State, id: ProductId) -> Result<View, CoreError> {
    let p = state.product(id)?;
    let t = &p.terms;
    let variants = p
        .variants
        .iter()
        .map(|(sku, options)| {
            let s = state.sku(*sku)?;
            Ok(ProductVariantView {
                sku_id: sku.0,
                options: options.clone(),
                title: state.sku_title(s).to_string(),
                price: s.price.0,
                currency: Code(s.currency),
                available: s.available,
            })
        })
        .collect::<Result<_, CoreError>>()?;
    Ok(View::Product(ProductView {
        product_id: id.0,
        merchant_id: t.merchant.0,
        title: t.title.clone(),
        description: t.description.clone(),
        category_id: t.category.0,
        category_path: state.category_path(t.category).into_iter().map(String::from).collect(),
        attributes: t
            .attributes
            .iter()
            .map(|(n, v)| AttributeView { name: n.clone(), value: v.clone() })
            .collect(),
        options: t.options.clone(),
        variants,
    }))
}

pub(crate) fn category_view(state: &State, id: CategoryId) -> Result<CategoryView, CoreError> {
    let c = state.category(id)?;
    Ok(CategoryView {
        category_id: id.0,
        name: c.name.clone(),
        parent_id: c.parent.map(|p| p.0),
        path: state.category_path(id).into_iter().map(String::from).collect(),
    })
}

/// The children of `parent` (the roots if `None`), at most [`LIST_ENTRIES_MAX`].
pub(crate) fn categories_view(state: &State, parent: Option<CategoryId>) -> Result<View, CoreError> {
    if let Some(parent) = parent {
        state.category(parent)?;
    }
    let categories = state
        .categories()
        .filter(|(_, c)| c.parent == parent)
        .take(LIST_ENTRIES_MAX)
        .map(|(id, _)| category_view(state, id))
        .collect::<Result<_, CoreError>>()?;
    Ok(View::Categories(CategoryList { categories }))
}
