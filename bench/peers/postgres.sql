-- The flash workload as a competent team would write it on PostgreSQL: one function, one
-- transaction, one round trip per order. Check-and-decrement the stock (the row lock of a hot SKU
-- is where everyone queues), enforce the campaign's per-buyer limit, debit the buyer, credit the
-- merchant and the platform, record the order and its ledger rows. synchronous_commit stays on:
-- durable, as elevens is.

DROP TABLE IF EXISTS ledger, orders, campaign_buyers, accounts, skus CASCADE;

CREATE TABLE skus (
    id              bigint PRIMARY KEY,
    merchant        bigint NOT NULL,
    price           bigint NOT NULL,
    stock           bigint NOT NULL CHECK (stock >= 0),
    sold            bigint NOT NULL DEFAULT 0,
    flash_price     bigint,
    per_buyer_limit int
);

CREATE TABLE accounts (
    owner   text PRIMARY KEY,          -- 'buyer:1', 'merchant:1', 'platform', 'external'
    balance bigint NOT NULL
);

CREATE TABLE campaign_buyers (
    sku   bigint NOT NULL,
    buyer bigint NOT NULL,
    taken int    NOT NULL,
    PRIMARY KEY (sku, buyer)
);

CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    buyer      bigint NOT NULL,
    sku        bigint NOT NULL,
    qty        int    NOT NULL,
    total      bigint NOT NULL,
    commission bigint NOT NULL,
    status     text   NOT NULL
);

CREATE TABLE ledger (
    id       bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    debit    text   NOT NULL,
    credit   text   NOT NULL,
    amount   bigint NOT NULL,
    kind     text   NOT NULL
);

-- Returns the new order's id, or -1 when the SKU is sold out. Raises 'limit' or 'funds' (the
-- transaction rolls back whole) when the buyer is over the campaign's limit or short of money.
CREATE OR REPLACE FUNCTION flash_order(p_buyer bigint, p_sku bigint, p_qty int) RETURNS bigint AS $$
DECLARE
    v_price      bigint;
    v_merchant   bigint;
    v_limit      int;
    v_taken      int;
    v_total      bigint;
    v_commission bigint;
    v_order      bigint;
BEGIN
    UPDATE skus SET stock = stock - p_qty, sold = sold + p_qty
     WHERE id = p_sku AND stock >= p_qty
    RETURNING coalesce(flash_price, price), merchant, per_buyer_limit INTO v_price, v_merchant, v_limit;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    IF v_limit IS NOT NULL THEN
        INSERT INTO campaign_buyers AS c VALUES (p_sku, p_buyer, p_qty)
        ON CONFLICT (sku, buyer) DO UPDATE SET taken = c.taken + excluded.taken
        RETURNING taken INTO v_taken;
        IF v_taken > v_limit THEN
            RAISE EXCEPTION 'limit';
        END IF;
    END IF;
    v_total := v_price * p_qty;
    v_commission := v_total * 200 / 10000;
    UPDATE accounts SET balance = balance - v_total WHERE owner = 'buyer:' || p_buyer AND balance >= v_total;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'funds';
    END IF;
    UPDATE accounts SET balance = balance + (v_total - v_commission) WHERE owner = 'merchant:' || v_merchant;
    UPDATE accounts SET balance = balance + v_commission WHERE owner = 'platform';
    INSERT INTO orders (buyer, sku, qty, total, commission, status)
    VALUES (p_buyer, p_sku, p_qty, v_total, v_commission, 'paid') RETURNING id INTO v_order;
    INSERT INTO ledger (order_id, debit, credit, amount, kind) VALUES
        (v_order, 'buyer:' || p_buyer, 'merchant:' || v_merchant, v_total - v_commission, 'payment'),
        (v_order, 'buyer:' || p_buyer, 'platform', v_commission, 'commission');
    RETURN v_order;
END
$$ LANGUAGE plpgsql;
