//! The search's own copy of the catalogue's structure: the category tree, each product's
//! category, attributes and option names, and each variant's product and option values. Kept
//! from the feed's events (and the recovered state at start) beside the index, so that moving
//! a product or a category re-indexes nothing: a document names its product, and which
//! category a product is in is read here when a query filters or counts by category.

use elevens_core::limits::{CATEGORIES_MAX, CATEGORY_DEPTH_MAX, PRODUCTS_MAX};
use elevens_core::State;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct CategoryNode {
    pub name: String,
    pub parent: Option<u64>,
}

pub(crate) struct ProductFacts {
    /// Searched with each variant's own title.
    pub title: String,
    pub category: u64,
    pub attributes: Vec<(String, String)>,
    /// The names of the options its variants differ by, in order.
    pub options: Vec<String>,
}

/// A variant's product, the product's title, and its (name, value) pairs.
pub(crate) type SkuFacts<'a> = (u64, &'a str, Vec<(&'a str, &'a str)>);

/// Dense by id (ids are indexes from 1; slot 0 stays empty).
#[derive(Default)]
pub struct Catalogue {
    categories: Vec<Option<CategoryNode>>,
    products: Vec<Option<ProductFacts>>,
    /// Each product's category, dense by product id (0: none), shared with the queries in
    /// flight that filter by category (copied on a change only while one holds it).
    product_category: Arc<Vec<u32>>,
    /// A variant SKU's product and its value of each of the product's options.
    variants: HashMap<u64, (u64, Vec<String>)>,
}

/// Grows `slots` to hold `id`, within `max` ids: an id past it is not kept.
fn slot<T>(slots: &mut Vec<Option<T>>, id: u64, max: usize) -> Option<&mut Option<T>> {
    let index = usize::try_from(id).ok().filter(|&i| i <= max)?;
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots.get_mut(index)
}

impl Catalogue {
    pub(crate) fn from_state(state: &State) -> Catalogue {
        let mut catalogue = Catalogue::default();
        for (id, c) in state.categories() {
            catalogue.set_category(id.0, &c.name, c.parent.map(|p| p.0));
        }
        for (id, p) in state.products() {
            let t = &p.terms;
            catalogue.set_product(id.0, &t.title, t.category.0, t.attributes.clone(), t.options.clone());
            for (sku, values) in &p.variants {
                catalogue.set_variant(sku.0, id.0, values.clone());
            }
        }
        catalogue
    }

    pub(crate) fn set_category(&mut self, id: u64, name: &str, parent: Option<u64>) {
        if let Some(slot) = slot(&mut self.categories, id, CATEGORIES_MAX) {
            *slot = Some(CategoryNode { name: name.to_string(), parent });
        }
    }

    pub(crate) fn move_category(&mut self, id: u64, parent: Option<u64>) {
        if let Some(Some(node)) = self.categories.get_mut(id as usize) {
            node.parent = parent;
        }
    }

    pub(crate) fn set_product(
        &mut self,
        id: u64,
        title: &str,
        category: u64,
        attributes: Vec<(String, String)>,
        options: Vec<String>,
    ) {
        if let Some(slot) = slot(&mut self.products, id, PRODUCTS_MAX) {
            *slot = Some(ProductFacts { title: title.to_string(), category, attributes, options });
            self.place(id, category);
        }
    }

    pub(crate) fn move_product(&mut self, id: u64, category: u64) {
        if let Some(Some(product)) = self.products.get_mut(id as usize) {
            product.category = category;
            self.place(id, category);
        }
    }

    fn place(&mut self, product: u64, category: u64) {
        let categories = Arc::make_mut(&mut self.product_category);
        let index = product as usize;
        if categories.len() <= index {
            categories.resize(index + 1, 0);
        }
        categories[index] = u32::try_from(category).unwrap_or(0);
    }

    pub(crate) fn set_variant(&mut self, sku: u64, product: u64, values: Vec<String>) {
        self.variants.insert(sku, (product, values));
    }

    pub(crate) fn category(&self, id: u64) -> Option<&CategoryNode> {
        self.categories.get(id as usize)?.as_ref()
    }

    pub(crate) fn product(&self, id: u64) -> Option<&ProductFacts> {
        self.products.get(id as usize)?.as_ref()
    }

    /// The SKU's product, its title, and the (name, value) pairs a buyer filters on: the
    /// product's attributes, then its option values (colour: red).
    pub(crate) fn facts_of_sku(&self, sku: u64) -> Option<SkuFacts<'_>> {
        let (product, values) = self.variants.get(&sku)?;
        let facts = self.product(*product)?;
        let attributes = facts.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let options = facts.options.iter().zip(values).map(|(n, v)| (n.as_str(), v.as_str()));
        Some((*product, &facts.title, attributes.chain(options).collect()))
    }

    pub(crate) fn variant_values(&self, sku: u64) -> Option<(u64, &[String])> {
        self.variants.get(&sku).map(|(p, v)| (*p, v.as_slice()))
    }

    /// The category's ancestors from itself up, within the tree's depth bound.
    pub(crate) fn path_up(&self, id: u64) -> impl Iterator<Item = u64> + '_ {
        std::iter::successors(Some(id), |&c| self.category(c)?.parent).take(CATEGORY_DEPTH_MAX)
    }

    /// For each category id, whether it is `root` or under it: the filter of a query by
    /// category, one lookup per matching document.
    pub(crate) fn subtree_mask(&self, root: u64) -> Vec<bool> {
        (0..self.categories.len() as u64).map(|id| self.path_up(id).any(|c| c == root)).collect()
    }

    /// The category each product is in, dense by product id (0: none known).
    pub(crate) fn product_categories(&self) -> Arc<Vec<u32>> {
        self.product_category.clone()
    }
}
