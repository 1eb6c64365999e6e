//! Faceted search against a model: a random catalogue (a category tree, products with
//! attributes and variants, bare SKUs, moves), fed to the index as the feed's events, then random
//! queries whose hits, order, match count and facet counts are checked against a plain scan.

use elevens_feed::{Attribute, Code, Kind, Listed};
use elevens_search::{Search, SearchQuery, Sort};
use proptest::prelude::*;
use std::collections::BTreeMap;

const BRANDS: [&str; 3] = ["Apple", "华为", "Mi"];
const COLOURS: [&str; 3] = ["red", "black", "蓝色"];

#[derive(Clone, Debug)]
struct Sku {
    merchant: u64,
    price: u64,
    title: String,
    /// (product, colour) for a variant.
    variant: Option<(u64, String)>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// Category id → parent.
    parents: BTreeMap<u64, Option<u64>>,
    /// Product id → (category, brand).
    products: BTreeMap<u64, (u64, String)>,
    skus: BTreeMap<u64, Sku>,
}

impl Model {
    fn under(&self, category: u64, root: u64) -> bool {
        let mut node = Some(category);
        while let Some(c) = node {
            if c == root {
                return true;
            }
            node = self.parents.get(&c).copied().flatten();
        }
        false
    }

    fn attributes(&self, sku: &Sku) -> Vec<(&str, String)> {
        match &sku.variant {
            Some((product, colour)) => {
                vec![("brand", self.products[product].1.clone()), ("colour", colour.clone())]
            }
            None => vec![],
        }
    }

    fn matches(&self, q: &SearchQuery) -> Vec<u64> {
        self.skus
            .iter()
            .filter(|(_, s)| q.merchant.is_none_or(|m| s.merchant == m))
            .filter(|(_, s)| {
                q.min_price.is_none_or(|p| s.price >= p) && q.max_price.is_none_or(|p| s.price <= p)
            })
            .filter(|(_, s)| {
                q.category.is_none_or(|root| {
                    s.variant.as_ref().is_some_and(|(p, _)| self.under(self.products[p].0, root))
                })
            })
            .filter(|(_, s)| {
                let has = self.attributes(s);
                let mut names: Vec<&str> = q.attributes.iter().map(|(n, _)| n.as_str()).collect();
                names.dedup();
                names.iter().all(|name| {
                    q.attributes
                        .iter()
                        .filter(|(n, _)| n == name)
                        .any(|(n, v)| has.iter().any(|(hn, hv)| hn == n && hv == v))
                })
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Builds the catalogue as a sequence of the feed's events, and the model beside it.
fn catalogue(seed: &[u8]) -> (Vec<(Option<u64>, Kind)>, Model) {
    let mut model = Model::default();
    let mut events = Vec::new();
    let mut next = seed.iter().copied().cycle();
    let mut byte = move || next.next().unwrap_or(0) as u64;
    // Six categories: 1 and 2 at the top, the rest under an earlier one.
    for id in 1..=6u64 {
        let parent = if id <= 2 { None } else { Some(1 + byte() % (id - 1)) };
        model.parents.insert(id, parent);
        events.push((None, Kind::CategoryCreated { category: id, name: format!("c{id}"), parent }));
    }
    let mut sku = 0;
    for product in 1..=5u64 {
        let (merchant, category, brand) = (1 + byte() % 3, 1 + byte() % 6, BRANDS[byte() as usize % 3]);
        model.products.insert(product, (category, brand.to_string()));
        let attributes = vec![Attribute { name: "brand".into(), value: brand.into() }];
        events.push((
            Some(merchant),
            Kind::ProductCreated {
                product,
                title: format!("p{product}"),
                category,
                attributes,
                options: vec!["colour".into()],
            },
        ));
        for colour in COLOURS.iter().take(1 + byte() as usize % 3) {
            sku += 1;
            let (price, title) =
                (100 + byte() * 7, format!("phone {}", ["x", "pro", "lite"][byte() as usize % 3]));
            events.push((Some(merchant), created(sku, &title, price)));
            events.push((
                Some(merchant),
                Kind::VariantAdded {
                    product,
                    sku,
                    options: vec![colour.to_string()],
                    title: title.clone(),
                    description: String::new(),
                    currency: cny(),
                    price,
                },
            ));
            model
                .skus
                .insert(sku, Sku { merchant, price, title, variant: Some((product, colour.to_string())) });
        }
    }
    for _ in 0..3 {
        sku += 1;
        let (merchant, price) = (1 + byte() % 3, 100 + byte() * 7);
        events.push((Some(merchant), created(sku, "phone case", price)));
        model.skus.insert(sku, Sku { merchant, price, title: "phone case".into(), variant: None });
    }
    // Moves after indexing: a product to another category, a category under another top one.
    let (product, category) = (1 + byte() % 5, 1 + byte() % 6);
    model.products.get_mut(&product).unwrap().0 = category;
    let of_product: Vec<(&u64, &Sku)> =
        model.skus.iter().filter(|(_, s)| s.variant.as_ref().is_some_and(|(p, _)| *p == product)).collect();
    let merchant = of_product.first().map(|(_, s)| s.merchant);
    let variants = (of_product.iter())
        .map(|&(&sku, s)| Listed {
            sku,
            title: s.title.clone(),
            description: String::new(),
            currency: cny(),
            price: s.price,
        })
        .collect();
    events.push((merchant, Kind::ProductMoved { product, category, variants }));
    model.parents.insert(6, Some(2));
    events.push((None, Kind::CategoryMoved { category: 6, parent: Some(2) }));
    // A price edit after the variant was added keeps it a variant.
    let edited = 1;
    let s = model.skus.get_mut(&edited).unwrap();
    s.price += 1;
    events.push((
        Some(s.merchant),
        Kind::SkuUpdated {
            sku: edited,
            title: s.title.clone(),
            description: String::new(),
            currency: cny(),
            price: s.price,
        },
    ));
    (events, model)
}

fn created(sku: u64, title: &str, price: u64) -> Kind {
    Kind::SkuCreated {
        sku,
        title: title.into(),
        description: String::new(),
        currency: cny(),
        price,
        stock: 1,
    }
}

fn query() -> impl Strategy<Value = SearchQuery> {
    (
        prop::option::of(1..4u64),
        prop::option::of(1..7u64),
        prop::collection::vec((0..2usize, 0..3usize), 0..3),
        prop::option::of(100..1_000u64),
        0..3usize,
        1..8usize,
    )
        .prop_map(|(merchant, category, attributes, max_price, sort, limit)| SearchQuery {
            merchant,
            category,
            attributes: attributes
                .into_iter()
                .map(|(name, value)| match name {
                    0 => ("brand".to_string(), BRANDS[value].to_string()),
                    _ => ("colour".to_string(), COLOURS[value].to_string()),
                })
                .collect(),
            max_price,
            sort: [Sort::Relevance, Sort::PriceAscending, Sort::PriceDescending][sort],
            facets: true,
            limit,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn faceted_search_answers_as_a_scan_of_the_catalogue_does(
        seed in prop::collection::vec(any::<u8>(), 64),
        queries in prop::collection::vec(query(), 8),
    ) {
        let (events, model) = catalogue(&seed);
        let search = Search::new().unwrap();
        for (merchant, kind) in &events {
            search.fold(*merchant, kind).unwrap();
        }
        search.commit_if_dirty().unwrap();
        for q in queries {
            let found = search.search(&q).unwrap();
            let expected = model.matches(&q);
            prop_assert_eq!(found.matched, Some(expected.len() as u64), "{:?}", q);
            // Order: by price, ties (and every hit with no words) to the lower SKU id, whatever
            // was indexed again since (the edit, the moved product's variants).
            let mut order = expected.clone();
            match q.sort {
                Sort::Relevance => order.sort_unstable(),
                Sort::PriceAscending => order.sort_by_key(|id| (model.skus[id].price, *id)),
                Sort::PriceDescending => order.sort_by_key(|id| (std::cmp::Reverse(model.skus[id].price), *id)),
            }
            order.truncate(q.limit);
            let hits: Vec<u64> = found.hits.iter().map(|h| h.sku).collect();
            prop_assert_eq!(&hits, &order, "{:?}", q);
            let facets = found.facets.unwrap();
            prop_assert_eq!(facets.counted, expected.len() as u64);
            // Merchants.
            let mut merchants: BTreeMap<u64, u64> = BTreeMap::new();
            for id in &expected {
                *merchants.entry(model.skus[id].merchant).or_default() += 1;
            }
            prop_assert_eq!(facets.merchants.iter().copied().collect::<BTreeMap<_, _>>(), merchants);
            // Attribute values.
            let mut values: BTreeMap<(String, String), u64> = BTreeMap::new();
            for id in &expected {
                for (name, value) in model.attributes(&model.skus[id]) {
                    *values.entry((name.to_string(), value)).or_default() += 1;
                }
            }
            let got: BTreeMap<(String, String), u64> = facets
                .attributes
                .iter()
                .flat_map(|(name, list)| list.iter().map(move |(v, n)| ((name.clone(), v.clone()), *n)))
                .collect();
            prop_assert_eq!(got, values);
            // Categories: one level under the one asked for (the top without one).
            let mut categories: BTreeMap<u64, u64> = BTreeMap::new();
            for id in &expected {
                let Some((product, _)) = &model.skus[id].variant else { continue };
                let mut path = vec![model.products[product].0];
                while let Some(Some(parent)) = model.parents.get(path.last().unwrap()) {
                    path.push(*parent);
                }
                let shown = match q.category {
                    Some(root) => path.iter().position(|c| *c == root).and_then(|i| i.checked_sub(1)).map(|i| path[i]),
                    None => path.last().copied(),
                };
                if let Some(c) = shown {
                    *categories.entry(c).or_default() += 1;
                }
            }
            let got: BTreeMap<u64, u64> = facets.categories.iter().map(|(id, name, n)| {
                assert_eq!(*name, format!("c{id}"));
                (*id, *n)
            }).collect();
            prop_assert_eq!(got, categories);
            let prices: Vec<u64> = expected.iter().map(|id| model.skus[id].price).collect();
            prop_assert_eq!(facets.price, prices.iter().min().map(|lo| (*lo, *prices.iter().max().unwrap())));
        }
    }
}

/// Chinese words find a variant, and its facets name its brand in Chinese.
#[test]
fn a_chinese_query_filters_by_a_chinese_attribute() {
    let search = Search::new().unwrap();
    let events = [
        Kind::CategoryCreated { category: 1, name: "手机".into(), parent: None },
        Kind::ProductCreated {
            product: 1,
            title: "华为手机".into(),
            category: 1,
            attributes: vec![Attribute { name: "品牌".into(), value: "华为".into() }],
            options: vec!["颜色".into()],
        },
        created(1, "华为智能手机 旗舰版", 399_900),
        Kind::VariantAdded {
            product: 1,
            sku: 1,
            options: vec!["黑色".into()],
            title: "华为智能手机 旗舰版".into(),
            description: String::new(),
            currency: cny(),
            price: 399_900,
        },
        created(2, "智能手机 壳", 1_900),
    ];
    for kind in &events {
        search.fold(Some(1), kind).unwrap();
    }
    search.commit_if_dirty().unwrap();
    let q = SearchQuery {
        text: "智能手机".into(),
        attributes: vec![("品牌".into(), "华为".into())],
        facets: true,
        limit: 10,
        ..Default::default()
    };
    let found = search.search(&q).unwrap();
    assert_eq!(found.hits.iter().map(|h| h.sku).collect::<Vec<_>>(), [1]);
    let facets = found.facets.unwrap();
    assert_eq!(facets.categories, [(1, "手机".to_string(), 1)]);
    assert!(facets.attributes.contains(&("颜色".to_string(), vec![("黑色".to_string(), 1)])));
}

fn cny() -> Code {
    Code(elevens_core::Currency::parse("CNY").unwrap())
}
