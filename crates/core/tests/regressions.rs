//! Defects found from outside, each pinned by a test named after it (issue 19).

use elevens_core::limits::{AMOUNT_MAX, EXTERNAL_ISSUED_MAX, TOP_UP_AMOUNT_MAX};
use elevens_core::*;

fn cny() -> Currency {
    Currency::parse("CNY").unwrap()
}

struct World {
    state: State,
    now: u64,
}

impl World {
    /// One merchant and one buyer.
    fn new() -> World {
        let mut world = World { state: State::new(), now: 1_000_000 };
        world.must(Actor::Admin, Command::CreateMerchant { name: "m".into(), commission_bps: 200 });
        world.must(Actor::Admin, Command::CreateBuyer { name: "b".into() });
        world
    }

    fn send(&mut self, actor: Actor, command: Command) -> Result<Applied, CoreError> {
        self.now += 1;
        self.state.apply(&Envelope { actor, idempotency: None, at: Millis(self.now), command })
    }

    fn must(&mut self, actor: Actor, command: Command) -> Outcome {
        match self.send(actor, command) {
            Ok(Applied::Changed(outcome)) => outcome,
            other => panic!("expected a change: {other:?}"),
        }
    }
}

fn top_up(amount: u64) -> Command {
    Command::TopUp { buyer: BuyerId(1), amount: Amount(amount), currency: cny() }
}

#[test]
fn regression_a_buyer_key_mints_money() {
    let mut world = World::new();
    let before = world.state.digest();
    let minted = world.send(Actor::Buyer(BuyerId(1)), top_up(1_000_000_000_000_000));
    assert!(matches!(minted, Err(CoreError::Forbidden(_))), "{minted:?}");
    // Nor a small amount, nor by a merchant: only a funding source brings money in.
    assert!(matches!(world.send(Actor::Buyer(BuyerId(1)), top_up(1)), Err(CoreError::Forbidden(_))));
    assert!(matches!(world.send(Actor::Merchant(MerchantId(1)), top_up(1)), Err(CoreError::Forbidden(_))));
    assert_eq!(world.state.digest(), before);
    world.must(Actor::Service, top_up(1));
    world.must(Actor::Admin, top_up(1));
    assert_eq!(world.state.ledger().balance(Owner::Buyer(BuyerId(1)), cny()), 2);
}

#[test]
fn regression_one_top_up_moves_at_most_its_bound() {
    let mut world = World::new();
    world.must(Actor::Service, top_up(TOP_UP_AMOUNT_MAX));
    let over = world.send(Actor::Service, top_up(TOP_UP_AMOUNT_MAX + 1));
    assert!(matches!(over, Err(CoreError::AmountTooLarge)), "{over:?}");
}

/// Platform-funded red packets of the largest amount drive the external side to its bound;
/// past it every funding command is refused by name, not with an overflow, the audit stays
/// exact, and money returned from outside makes room again.
#[test]
fn regression_the_external_account_overflows() {
    let mut world = World::new();
    let packet = |amount: u64| {
        Command::CreateRedPacket(NewRedPacket {
            sponsor: Sponsor::Platform,
            amount: Amount(amount),
            count: 1,
            currency: cny(),
            starts_at: Millis(0),
            ends_at: Millis(86_400_000),
            seed: 7,
        })
    };
    let full = EXTERNAL_ISSUED_MAX / AMOUNT_MAX;
    for _ in 0..full {
        world.must(Actor::Admin, packet(AMOUNT_MAX));
    }
    let rest = EXTERNAL_ISSUED_MAX - full * AMOUNT_MAX;
    world.must(Actor::Admin, packet(rest));
    let external = world.state.ledger().balance(Owner::External, cny());
    assert_eq!(external, -(EXTERNAL_ISSUED_MAX as i64));
    let before = world.state.digest();
    for refused in [world.send(Actor::Admin, packet(1)), world.send(Actor::Service, top_up(1))] {
        match refused {
            Err(e @ CoreError::IssuanceLimit { .. }) => assert_eq!(e.code(), "issuance_limit_reached"),
            other => panic!("expected issuance_limit_reached: {other:?}"),
        }
    }
    assert_eq!(world.state.digest(), before);
    let audit = world.state.audit();
    assert!(audit.ok(), "{audit:?}");
    let money = audit.checks.iter().find(|c| c.name == "money_conserved").unwrap();
    assert!(money.detail.contains("1000000 ppm of the issuance bound"), "{}", money.detail);
    // A pool that closes sends its money back out, and there is room again.
    world.must(Actor::Admin, Command::CloseRedPacket { packet: RedPacketId(1) });
    world.must(Actor::Service, top_up(1));
}

#[test]
fn regression_revoking_the_bootstrap_admin_key_bricks_the_data_directory() {
    let mut world = World::new();
    world.must(Actor::Admin, Command::CreateApiKey { acts_as: Actor::Admin, secret_sha256: [1; 32] });
    world.must(Actor::Admin, Command::CreateApiKey { acts_as: Actor::Service, secret_sha256: [2; 32] });
    let before = world.state.digest();
    let last = world.send(Actor::Admin, Command::RevokeApiKey { key: ApiKeyId(1) });
    assert!(matches!(last, Err(CoreError::LastAdminKey)), "{last:?}");
    assert_eq!(world.state.digest(), before);
    // Rotation: a second admin key first, then the old one may go; the new one is then the last.
    world.must(Actor::Admin, Command::CreateApiKey { acts_as: Actor::Admin, secret_sha256: [3; 32] });
    world.must(Actor::Admin, Command::RevokeApiKey { key: ApiKeyId(1) });
    let last = world.send(Actor::Admin, Command::RevokeApiKey { key: ApiKeyId(3) });
    assert!(matches!(last, Err(CoreError::LastAdminKey)), "{last:?}");
    // Other keys, and keys already revoked, are not held back.
    world.must(Actor::Admin, Command::RevokeApiKey { key: ApiKeyId(2) });
    world.must(Actor::Admin, Command::RevokeApiKey { key: ApiKeyId(1) });
}

/// Found by the fuzzer (`crates/http/tests/fuzz.rs`): a snapshot whose bytes decode but name a
/// ledger account past the end panicked when read, and one whose pending-order ids leap made the
/// decoder allocate gigabytes. Every single-byte change of a small snapshot decodes to a
/// state that reads back, or is refused.
#[test]
fn regression_a_damaged_snapshot_panics_or_exhausts_memory_on_decode() {
    let mut world = World::new();
    world.must(
        Actor::Admin,
        Command::CreateSku(Box::new(NewSku {
            merchant: MerchantId(1),
            title: "phone".into(),
            description: String::new(),
            price: Amount(1_000),
            currency: cny(),
            initial_stock: 10,
            warehouse: None,
        })),
    );
    world.must(Actor::Service, top_up(100_000));
    for _ in 0..3 {
        let lines = vec![LineRequest { sku: SkuId(1), quantity: 1 }];
        world.must(
            Actor::Buyer(BuyerId(1)),
            Command::PlaceOrder { buyer: BuyerId(1), lines, coupons: vec![], reservation_ttl_ms: 60_000 },
        );
    }
    world.must(Actor::Buyer(BuyerId(1)), Command::PayOrder { order: OrderId(2) });
    let snapshot = world.state.encode();
    for at in 0..snapshot.len() {
        for mask in [0x01u8, 0x40, 0xff] {
            let mut bytes = snapshot.clone();
            bytes[at] ^= mask;
            if let Ok(state) = State::decode(&bytes) {
                let _ = state.audit();
                let _ = state.next_due();
            }
        }
    }
}

/// Found reading the change: a buyer's address interned any region code, so buyer keys could
/// fill the region table (65,534 codes) and leave merchants unable to open a warehouse in a
/// new region. An address names a region a warehouse or a carrier brought in.
#[test]
fn regression_a_buyer_key_fills_the_region_table() {
    let mut world = World::new();
    let buyer = Actor::Buyer(BuyerId(1));
    let address = |region: &str| Command::SetAddress {
        buyer: BuyerId(1),
        region: region.into(),
        text: "1 road".into(),
    };
    let before = world.state.digest();
    let refused = world.send(buyer, address("XX-1"));
    assert_eq!(refused, Err(CoreError::NotFound("region")));
    assert_eq!(world.state.digest(), before);
    assert!(world.state.logistics().region("XX-1").is_none());
    world.must(
        Actor::Admin,
        Command::CreateCarrier(Box::new(NewCarrier {
            name: "c".into(),
            lanes: vec![NewLane { from: "CN-ZJ".into(), to: "XX-1".into(), p50_days: 1, p90_days: 2 }],
        })),
    );
    world.must(buyer, address("XX-1"));
}

/// The journal encodes a command by its place in `Command`: new commands were once inserted
/// in the middle, which would have read an older journal's `CancelOrder` as another command.
/// Every command's place is pinned here; a new one goes last.
#[test]
fn regression_commands_keep_their_places_in_the_journals_encoding() {
    let places = [
        (Command::CancelOrder { order: OrderId(1) }, 10),
        (Command::Tick, 12),
        (Command::RefundLines { order: OrderId(1), lines: vec![], shipping: Amount(0), restock: false }, 27),
        (Command::UpdateTicket { ticket: TicketId(1), status: logistics::TicketStatus::ALL[0] }, 33),
        (Command::SetCartLine { buyer: BuyerId(1), sku: SkuId(1), quantity: 1 }, 35),
        (Command::CreateCategory { name: String::new(), parent: None }, 36),
        (Command::MoveProduct { product: ProductId(1), category: CategoryId(1) }, 40),
        (Command::Checkout { buyer: BuyerId(1), lines: vec![], coupons: vec![] }, 41),
    ];
    for (command, place) in places {
        let bytes = postcard::to_allocvec(&command).unwrap();
        assert_eq!(bytes[0], place, "{} moved in the journal's encoding", command.name());
    }
}
