//! Products, variants and the category tree in the state machine: the tree's depth bound and
//! no cycle under any move, a variant is a SKU of the product's merchant listed once with a
//! value per option and no two alike, and every refusal changes nothing.

use elevens_core::products::NewProduct;
use elevens_core::*;
use proptest::prelude::*;

const T0: u64 = 1_800_000_000_000;
const M1: Actor = Actor::Merchant(MerchantId(1));

fn apply(state: &mut State, actor: Actor, command: Command) -> Result<Outcome, CoreError> {
    let envelope = Envelope { actor, idempotency: None, at: Millis(T0), command };
    let before = state.digest();
    let result = state.apply(&envelope).map(|a| a.outcome().clone());
    if result.is_err() {
        assert_eq!(state.digest(), before, "a refused command changed the state");
    }
    result
}

fn world() -> State {
    let mut state = State::new();
    for name in ["store", "rival"] {
        apply(&mut state, Actor::Admin, Command::CreateMerchant { name: name.into(), commission_bps: 100 })
            .unwrap();
    }
    for (merchant, title) in [(1, "Phone X black 128 GB"), (1, "Phone X white 256 GB"), (2, "Rival phone")] {
        let sku = NewSku {
            merchant: MerchantId(merchant),
            title: title.into(),
            description: String::new(),
            price: Amount(399_900),
            currency: Currency::parse("CNY").unwrap(),
            initial_stock: 10,
            warehouse: None,
        };
        apply(&mut state, Actor::Admin, Command::CreateSku(Box::new(sku))).unwrap();
    }
    state
}

fn category(state: &mut State, name: &str, parent: Option<u64>) -> Result<Outcome, CoreError> {
    apply(state, Actor::Admin, Command::CreateCategory { name: name.into(), parent: parent.map(CategoryId) })
}

fn phone(category: u64) -> Command {
    Command::CreateProduct(Box::new(NewProduct {
        merchant: MerchantId(1),
        title: "Phone X".into(),
        description: "A phone".into(),
        category: CategoryId(category),
        attributes: vec![("brand".into(), "Elevens".into())],
        options: vec!["colour".into(), "storage".into()],
    }))
}

#[test]
fn a_products_variants_are_its_merchants_skus_once_each_with_a_value_per_option() {
    let mut state = world();
    category(&mut state, "Electronics", None).unwrap();
    category(&mut state, "Phones", Some(1)).unwrap();
    assert!(matches!(
        apply(&mut state, Actor::Merchant(MerchantId(2)), phone(2)),
        Err(CoreError::Forbidden(_))
    ));
    assert_eq!(apply(&mut state, M1, phone(2)).unwrap(), Outcome::ProductCreated { product: ProductId(1) });
    let variant = |sku: u64, options: &[&str]| Command::AddVariant {
        product: ProductId(1),
        sku: SkuId(sku),
        options: options.iter().map(|o| o.to_string()).collect(),
    };
    apply(&mut state, M1, variant(1, &["black", "128 GB"])).unwrap();
    let refusals = [
        (M1, variant(2, &["black", "128 GB"]), "two variants alike"),
        (M1, variant(2, &["white"]), "a value missing"),
        (M1, variant(1, &["white", "256 GB"]), "a SKU twice"),
        (M1, variant(3, &["red", "64 GB"]), "another merchant's SKU"),
        (Actor::Merchant(MerchantId(2)), variant(2, &["white", "256 GB"]), "another merchant's product"),
        (M1, Command::MoveProduct { product: ProductId(1), category: CategoryId(9) }, "an unknown category"),
    ];
    for (actor, command, what) in refusals {
        assert!(apply(&mut state, actor, command).is_err(), "{what} was accepted");
    }
    apply(&mut state, M1, variant(2, &["white", "256 GB"])).unwrap();
    assert_eq!(state.product_of(SkuId(2)), Some(ProductId(1)));
    assert_eq!(state.product_of(SkuId(3)), None, "a SKU without a product stays valid");
    assert_eq!(state.category_path(CategoryId(2)), ["Electronics", "Phones"]);
    let audit = state.audit();
    assert!(audit.checks.iter().all(|c| c.ok), "{:?}", audit.checks);
}

#[derive(Clone, Debug)]
enum Step {
    Create { parent: Option<u64> },
    Move { category: u64, parent: Option<u64> },
}

proptest! {
    /// Whatever is created and moved, the tree stays a tree within 6 levels: a move under
    /// itself or past the depth is refused and changes nothing, and the audit holds.
    #[test]
    fn the_category_tree_stays_a_tree_within_its_depth(steps in proptest::collection::vec(
        prop_oneof![
            (proptest::option::of(1u64..=12)).prop_map(|parent| Step::Create { parent }),
            (1u64..=12, proptest::option::of(1u64..=12)).prop_map(|(category, parent)| Step::Move { category, parent }),
        ],
        1..60,
    )) {
        let mut state = world();
        for step in steps {
            let result = match step {
                Step::Create { parent } => category(&mut state, "c", parent),
                Step::Move { category, parent } => apply(
                    &mut state,
                    Actor::Admin,
                    Command::MoveCategory { category: CategoryId(category), parent: parent.map(CategoryId) },
                ),
            };
            let _ = result;
            for (id, _) in state.categories() {
                let path = state.category_path(id);
                prop_assert!(path.len() <= limits::CATEGORY_DEPTH_MAX, "{id} is {} deep", path.len());
                prop_assert!(!state.subtree(id).iter().skip(1).any(|&c| c == id), "{id} under itself");
            }
            let audit = state.audit();
            prop_assert!(audit.checks.iter().all(|c| c.ok), "{:?}", audit.checks.iter().find(|c| !c.ok));
        }
    }
}
