//! The search's own copy of the catalogue's structure: the category tree, each product's
//! category, attributes and option names, each variant's product and option values, and every
//! (name, value) pair a buyer filters on, numbered once. Kept from the feed's events (and the
//! recovered state at start) beside the index. A document carries its product, its product's
//! category and the numbers of its pairs; a query by category asks here for the subtree as the
//! tree is now, and facets turn the numbers back into names here.

use elevens_core::limits::{CATEGORIES_MAX, CATEGORY_DEPTH_MAX, PRODUCTS_MAX};
use elevens_core::State;
use rustc_hash::FxHashMap as HashMap;

pub(crate) struct CategoryNode {
    pub name: String,
    pub parent: Option<u64>,
}

pub(crate) struct ProductFacts {
    /// Searched with each variant's own title.
    pub title: String,
    pub category: u64,
    /// Its attributes' pairs, by number.
    pub attributes: Vec<u64>,
    /// The names of the options its variants differ by, in order.
    pub options: Vec<String>,
}

/// A variant's product, the product's title, and the numbers of its pairs (the product's
/// attributes, then its option values).
pub(crate) type SkuFacts<'a> = (u64, &'a str, Vec<u64>);

/// Dense by id (ids are indexes from 1; slot 0 stays empty).
#[derive(Default)]
pub struct Catalogue {
    categories: Vec<Option<CategoryNode>>,
    products: Vec<Option<ProductFacts>>,
    /// A variant SKU's product and the numbers of its option values' pairs.
    variants: HashMap<u64, (u64, Vec<u64>)>,
    /// Every (name, value) pair ever seen, numbered from 1 in the order first seen.
    pairs: Vec<(String, String)>,
    numbers: HashMap<(String, String), u64>,
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
            catalogue.set_product(id.0, &t.title, t.category.0, &t.attributes, t.options.clone());
            for (sku, values) in &p.variants {
                catalogue.set_variant(sku.0, id.0, values);
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

    /// The pair's number, given it one if it has none.
    fn number(&mut self, name: &str, value: &str) -> u64 {
        let key = (name.to_string(), value.to_string());
        if let Some(&n) = self.numbers.get(&key) {
            return n;
        }
        self.pairs.push(key.clone());
        let n = self.pairs.len() as u64;
        self.numbers.insert(key, n);
        n
    }

    /// The pair's number, if any document could carry it.
    pub(crate) fn number_of(&self, name: &str, value: &str) -> Option<u64> {
        self.numbers.get(&(name.to_string(), value.to_string())).copied()
    }

    pub(crate) fn pair(&self, number: u64) -> Option<&(String, String)> {
        self.pairs.get(usize::try_from(number).ok()?.checked_sub(1)?)
    }

    pub(crate) fn set_product(
        &mut self,
        id: u64,
        title: &str,
        category: u64,
        attributes: &[(String, String)],
        options: Vec<String>,
    ) {
        let attributes = attributes.iter().map(|(n, v)| self.number(n, v)).collect();
        if let Some(slot) = slot(&mut self.products, id, PRODUCTS_MAX) {
            *slot = Some(ProductFacts { title: title.to_string(), category, attributes, options });
        }
    }

    pub(crate) fn move_product(&mut self, id: u64, category: u64) {
        if let Some(Some(product)) = self.products.get_mut(id as usize) {
            product.category = category;
        }
    }

    /// The SKU becomes a variant of `product` with these option values.
    pub(crate) fn set_variant(&mut self, sku: u64, product: u64, values: &[String]) {
        let names = self.product(product).map(|p| p.options.clone()).unwrap_or_default();
        let numbers = names.iter().zip(values).map(|(n, v)| self.number(n, v)).collect();
        self.variants.insert(sku, (product, numbers));
    }

    pub(crate) fn category(&self, id: u64) -> Option<&CategoryNode> {
        self.categories.get(id as usize)?.as_ref()
    }

    pub(crate) fn product(&self, id: u64) -> Option<&ProductFacts> {
        self.products.get(id as usize)?.as_ref()
    }

    pub(crate) fn facts_of_sku(&self, sku: u64) -> Option<SkuFacts<'_>> {
        let (product, options) = self.variants.get(&sku)?;
        let facts = self.product(*product)?;
        Some((*product, &facts.title, facts.attributes.iter().chain(options).copied().collect()))
    }

    /// The category's ancestors from itself up, within the tree's depth bound.
    pub(crate) fn path_up(&self, id: u64) -> impl Iterator<Item = u64> + '_ {
        std::iter::successors(Some(id), |&c| self.category(c)?.parent).take(CATEGORY_DEPTH_MAX)
    }

    /// `root` and every category under it, as the tree is now.
    pub(crate) fn subtree(&self, root: u64) -> Vec<u64> {
        (1..self.categories.len() as u64)
            .filter(|&id| self.category(id).is_some() && self.path_up(id).any(|c| c == root))
            .collect()
    }
}
