//! Products and categories: a product groups a merchant's SKUs as its variants (a phone's
//! colours and storage sizes under one page), sits in one category of the operator's tree,
//! and carries attributes a buyer filters on (brand, material). Stock, campaigns and orders
//! stay per SKU; a SKU without a product stays valid. Products are kept beside the SKUs, not in
//! them, so a bare SKU pays nothing for them.

use crate::command::Outcome;
use crate::error::{out_of_bounds, CoreError};
use crate::limits::*;
use crate::state::State;
use crate::types::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node of the category tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub parent: Option<CategoryId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewProduct {
    pub merchant: MerchantId,
    pub title: String,
    pub description: String,
    pub category: CategoryId,
    /// (name, value): what a buyer filters on.
    pub attributes: Vec<(String, String)>,
    /// The names of the options its variants differ by (colour, storage), in order.
    pub options: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub terms: NewProduct,
    /// Its SKUs, each with its value of every option, in the order they were added.
    pub variants: Vec<(SkuId, Vec<String>)>,
}

/// The catalogue's products and the operator's category tree.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Products {
    categories: Vec<Category>,
    products: Vec<Product>,
    /// The product each variant SKU belongs to (SKUs without one are not here).
    of_sku: BTreeMap<SkuId, ProductId>,
}

impl Products {
    pub(crate) fn bytes(&self) -> u64 {
        let strings = |s: &[String]| s.iter().map(|s| s.capacity()).sum::<usize>();
        let products: usize = self
            .products
            .iter()
            .map(|p| {
                let t = &p.terms;
                size_of::<Product>()
                    + t.title.capacity()
                    + t.description.capacity()
                    + t.attributes.iter().map(|(n, v)| n.capacity() + v.capacity() + 48).sum::<usize>()
                    + strings(&t.options)
                    + t.options.capacity() * 24
                    + p.variants.iter().map(|(_, o)| 32 + strings(o) + o.capacity() * 24).sum::<usize>()
            })
            .sum();
        let categories: usize =
            self.categories.iter().map(|c| size_of::<Category>() + c.name.capacity()).sum();
        (products + categories + self.of_sku.len() * 32) as u64
    }

    /// Every variant names a SKU of its product's merchant, listed once, and every category
    /// reaches the root within the depth bound: for the audit.
    pub(crate) fn check(&self, state: &State) -> Result<(), String> {
        for (i, p) in self.products.iter().enumerate() {
            let id = ProductId::from_index(i);
            for (sku, options) in &p.variants {
                let owner = state.sku(*sku).map_err(|e| e.to_string())?.merchant();
                if owner != p.terms.merchant || self.of_sku.get(sku) != Some(&id) {
                    return Err(format!("product {id}'s variant {sku} is not its merchant's or not indexed"));
                }
                if options.len() != p.terms.options.len() {
                    return Err(format!("product {id}'s variant {sku} lacks an option"));
                }
            }
        }
        let variants: usize = self.products.iter().map(|p| p.variants.len()).sum();
        if variants != self.of_sku.len() {
            return Err("a SKU is indexed as a variant of no product".into());
        }
        for i in 0..self.categories.len() {
            self.depth(CategoryId::from_index(i)).ok_or("a category is in a cycle or too deep")?;
        }
        Ok(())
    }

    /// How many nodes from the root to `id`, itself included; `None` past the bound (a cycle).
    fn depth(&self, id: CategoryId) -> Option<usize> {
        let mut node = Some(id);
        for depth in 0..=CATEGORY_DEPTH_MAX {
            let Some(id) = node else { return Some(depth) };
            node = self.categories.get(id.index()?)?.parent;
        }
        None
    }

    /// `id` and every category under it, by level, with each one's level (1 for `id`): one
    /// pass over the tree to index the children, then a walk down (at most [`CATEGORIES_MAX`]).
    fn subtree(&self, id: CategoryId) -> Vec<(CategoryId, usize)> {
        let mut children: Vec<Vec<CategoryId>> = vec![Vec::new(); self.categories.len()];
        for (i, c) in self.categories.iter().enumerate() {
            if let Some(parent) = c.parent.and_then(|p| p.index()).and_then(|p| children.get_mut(p)) {
                parent.push(CategoryId::from_index(i));
            }
        }
        let mut nodes = vec![(id, 1)];
        let mut i = 0;
        while let Some(&(node, level)) = nodes.get(i) {
            if let Some(under) = node.index().and_then(|n| children.get(n)) {
                nodes.extend(under.iter().map(|&c| (c, level + 1)));
            }
            i += 1;
        }
        nodes
    }
}

impl State {
    pub fn category(&self, id: CategoryId) -> Result<&Category, CoreError> {
        id.index().and_then(|i| self.products.categories.get(i)).ok_or(CoreError::NotFound("category"))
    }

    pub fn categories(&self) -> impl DoubleEndedIterator<Item = (CategoryId, &Category)> {
        self.products.categories.iter().enumerate().map(|(i, c)| (CategoryId::from_index(i), c))
    }

    /// `id` and every category under it.
    pub fn subtree(&self, id: CategoryId) -> Vec<CategoryId> {
        self.products.subtree(id).into_iter().map(|(id, _)| id).collect()
    }

    /// The names from the root down to `id`.
    pub fn category_path(&self, id: CategoryId) -> Vec<&str> {
        let mut path = Vec::new();
        let mut node = Some(id);
        while let Some(c) = node.and_then(|id| self.category(id).ok()) {
            path.push(c.name.as_str());
            node = c.parent;
            if path.len() > CATEGORY_DEPTH_MAX {
                break;
            }
        }
        path.reverse();
        path
    }

    pub fn product(&self, id: ProductId) -> Result<&Product, CoreError> {
        id.index().and_then(|i| self.products.products.get(i)).ok_or(CoreError::NotFound("product"))
    }

    pub fn products(&self) -> impl DoubleEndedIterator<Item = (ProductId, &Product)> {
        self.products.products.iter().enumerate().map(|(i, p)| (ProductId::from_index(i), p))
    }

    /// The product a SKU is a variant of, if any.
    pub fn product_of(&self, sku: SkuId) -> Option<ProductId> {
        self.products.of_sku.get(&sku).copied()
    }

    pub(crate) fn create_category(
        &mut self,
        actor: Actor,
        name: &str,
        parent: Option<CategoryId>,
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "keep the category tree")?;
        Self::check_name("name", name, NAME_BYTES_MAX)?;
        if let Some(parent) = parent {
            self.category(parent)?;
            if self.products.depth(parent).is_none_or(|d| d >= CATEGORY_DEPTH_MAX) {
                return Err(out_of_bounds("parent_id", "the category tree is at most 6 levels deep"));
            }
        }
        if self.products.categories.len() >= CATEGORIES_MAX {
            return Err(out_of_bounds("categories", "at most 10000 categories"));
        }
        self.products.categories.push(Category { name: name.to_string(), parent });
        Ok(Outcome::CategoryCreated { category: CategoryId::from_index(self.products.categories.len() - 1) })
    }

    /// Moves a category (and its subtree) under another, or to the root.
    pub(crate) fn move_category(
        &mut self,
        actor: Actor,
        id: CategoryId,
        parent: Option<CategoryId>,
    ) -> Result<Outcome, CoreError> {
        Self::require_admin(actor, "keep the category tree")?;
        self.category(id)?;
        if let Some(parent) = parent {
            self.category(parent)?;
            let subtree = self.products.subtree(id);
            if subtree.iter().any(|&(c, _)| c == parent) {
                return Err(out_of_bounds("parent_id", "a category cannot move under itself"));
            }
            let height = subtree.iter().map(|&(_, level)| level).max().unwrap_or(1);
            let depth = self.products.depth(parent).unwrap_or(CATEGORY_DEPTH_MAX);
            if depth + height > CATEGORY_DEPTH_MAX {
                return Err(out_of_bounds("parent_id", "the category tree is at most 6 levels deep"));
            }
        }
        self.products.categories[id.index().unwrap_or_default()].parent = parent;
        Ok(Outcome::CategoryMoved { category: id })
    }

    pub(crate) fn create_product(&mut self, actor: Actor, new: &NewProduct) -> Result<Outcome, CoreError> {
        self.merchant(new.merchant)?;
        if !actor.may_manage_merchant(new.merchant) {
            return Err(CoreError::Forbidden("create products for another merchant"));
        }
        Self::check_name("title", &new.title, NAME_BYTES_MAX)?;
        if new.description.len() > DESCRIPTION_BYTES_MAX {
            return Err(out_of_bounds("description", "too long"));
        }
        self.category(new.category)?;
        if new.attributes.len() > PRODUCT_ATTRIBUTES_MAX || new.options.len() > PRODUCT_OPTIONS_MAX {
            return Err(out_of_bounds("attributes", "at most 16 attributes and 3 options"));
        }
        for (name, value) in &new.attributes {
            Self::check_name("attribute name", name, ATTRIBUTE_BYTES_MAX)?;
            Self::check_name("attribute value", value, ATTRIBUTE_BYTES_MAX)?;
        }
        for (i, option) in new.options.iter().enumerate() {
            Self::check_name("option", option, ATTRIBUTE_BYTES_MAX)?;
            if new.options[..i].contains(option) {
                return Err(out_of_bounds("options", "each option once"));
            }
        }
        if self.products.products.len() >= PRODUCTS_MAX {
            return Err(CoreError::Overflow("products"));
        }
        self.products.products.push(Product { terms: new.clone(), variants: Vec::new() });
        Ok(Outcome::ProductCreated { product: ProductId::from_index(self.products.products.len() - 1) })
    }

    /// Makes a SKU of the product's merchant one of its variants, with a value for each of the
    /// product's options; no two variants share all their values.
    pub(crate) fn add_variant(
        &mut self,
        actor: Actor,
        id: ProductId,
        sku: SkuId,
        options: &[String],
    ) -> Result<Outcome, CoreError> {
        let product = self.product(id)?;
        let merchant = product.terms.merchant;
        if !actor.may_manage_merchant(merchant) {
            return Err(CoreError::Forbidden("change another merchant's product"));
        }
        if self.sku(sku)?.merchant() != merchant {
            return Err(out_of_bounds("sku_id", "a variant is a SKU of the product's merchant"));
        }
        if self.products.of_sku.contains_key(&sku) {
            return Err(out_of_bounds("sku_id", "the SKU is a variant of a product already"));
        }
        if options.len() != product.terms.options.len() {
            return Err(out_of_bounds("options", "one value for each of the product's options"));
        }
        for value in options {
            Self::check_name("option value", value, ATTRIBUTE_BYTES_MAX)?;
        }
        if product.variants.iter().any(|(_, o)| o == options) {
            return Err(out_of_bounds("options", "another variant has these values"));
        }
        if product.variants.len() >= PRODUCT_VARIANTS_MAX {
            return Err(out_of_bounds("variants", "at most 100 variants a product"));
        }
        let index = id.index().unwrap_or_default();
        self.products.products[index].variants.push((sku, options.to_vec()));
        self.products.of_sku.insert(sku, id);
        Ok(Outcome::VariantAdded { product: id, sku })
    }

    /// Moves a product to another category (its merchant or the operator).
    pub(crate) fn move_product(
        &mut self,
        actor: Actor,
        id: ProductId,
        category: CategoryId,
    ) -> Result<Outcome, CoreError> {
        if !actor.may_manage_merchant(self.product(id)?.terms.merchant) {
            return Err(CoreError::Forbidden("move another merchant's product"));
        }
        self.category(category)?;
        self.products.products[id.index().unwrap_or_default()].terms.category = category;
        Ok(Outcome::ProductMoved { product: id })
    }
}
