-- The CRM data the workflows act on. Ids are the business keys the rest of
-- the system already uses (Clerk user ids, order numbers, SKUs), so workflow
-- ids can be derived from them. Money is integer minor units plus a lowercase
-- ISO 4217 code, as Stripe represents it.

-- +goose Up

-- +goose StatementBegin
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION set_updated_at() IS
    'Trigger function: keeps updated_at truthful whichever code path writes the row.';

CREATE TABLE customers (
    id                 text PRIMARY KEY,
    email              text NOT NULL,
    name               text NOT NULL DEFAULT '',
    stripe_customer_id text UNIQUE,
    referred_by        text REFERENCES customers (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_not_self_referred CHECK (referred_by <> id)
);
CREATE INDEX customers_email_idx ON customers (lower(email));
COMMENT ON TABLE customers IS
    'CRM customers; id is the identity-provider user id. referred_by names the customer who referred them, if any.';
COMMENT ON COLUMN customers.stripe_customer_id IS
    'Stripe customer (cus_...) that referral rewards are credited to.';

CREATE TABLE products (
    sku                 text PRIMARY KEY,
    name                text NOT NULL,
    price_cents         bigint NOT NULL CHECK (price_cents >= 0),
    currency            char(3) NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
    stock_level         integer NOT NULL DEFAULT 0,
    low_stock_threshold integer NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    hysteresis          integer NOT NULL DEFAULT 0 CHECK (hysteresis >= 0),
    debounce            interval CHECK (debounce >= interval '0'),
    cooldown            interval CHECK (cooldown >= interval '0'),
    escalate_after      interval CHECK (escalate_after > interval '0'),
    alert_audience      text[],
    escalation_audience text[],
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER products_set_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE products IS
    'Catalogue and inventory: one row per SKU with its stock level and the per-SKU low-stock alert settings; NULL overrides fall back to the configured defaults.';
COMMENT ON COLUMN products.stock_level IS
    'Last observed stock; may go negative when the shop sells on backorder.';
COMMENT ON COLUMN products.low_stock_threshold IS
    'Alert when stock_level falls to or below this.';
COMMENT ON COLUMN products.hysteresis IS
    'Send "restocked" only once stock_level rises above low_stock_threshold + hysteresis, so a level hovering at the threshold does not flap.';
COMMENT ON COLUMN products.debounce IS 'Override: how long a low level must persist before alerting.';
COMMENT ON COLUMN products.cooldown IS 'Override: minimum time between repeated alerts.';
COMMENT ON COLUMN products.escalate_after IS 'Override: how long stock may stay low before the escalation audience is told.';
COMMENT ON COLUMN products.alert_audience IS 'Override: notification recipients for the first alert.';
COMMENT ON COLUMN products.escalation_audience IS 'Override: notification recipients for the escalation.';

CREATE TABLE orders (
    id                text PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers (id),
    amount_cents      bigint NOT NULL CHECK (amount_cents >= 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'payment_failed', 'mismatch', 'expired', 'cancelled')),
    payment_intent_id text UNIQUE,
    confirmed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_confirmed_has_time CHECK (status <> 'confirmed' OR confirmed_at IS NOT NULL)
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id, created_at);
CREATE TRIGGER orders_set_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE orders IS
    'Orders and their payment outcome, written by the order-confirmation workflow. currency is lowercase like Stripe''s; the amount is checked against the PaymentIntent before confirming.';
COMMENT ON COLUMN orders.status IS
    'pending until the payment outcome is known; mismatch means the PaymentIntent amount or currency differed from the order.';

CREATE TABLE order_items (
    order_id    text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku         text NOT NULL REFERENCES products (sku),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX order_items_sku_idx ON order_items (sku);
COMMENT ON TABLE order_items IS
    'Lines of an order; price_cents is the unit price at the time of the order.';

CREATE TABLE referrals (
    id          text PRIMARY KEY,
    referrer_id text NOT NULL REFERENCES customers (id),
    referred_id text NOT NULL UNIQUE REFERENCES customers (id),
    status      text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'holding', 'rewarded', 'voided', 'ineligible')),
    order_id    text REFERENCES orders (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT referrals_no_self_referral CHECK (referrer_id <> referred_id)
);
CREATE INDEX referrals_referrer_id_idx ON referrals (referrer_id);
CREATE TRIGGER referrals_set_updated_at BEFORE UPDATE ON referrals
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE referrals IS
    'Who referred whom; a customer is referred at most once and never by themselves. The referral-reward workflow moves status through holding (refund window) to rewarded, voided or ineligible.';
COMMENT ON COLUMN referrals.order_id IS
    'The referred customer''s first paid order, which qualifies the reward; a refund of it voids the reward.';

CREATE TABLE reward_ledger (
    id                            bigserial PRIMARY KEY,
    referral_id                   text NOT NULL UNIQUE REFERENCES referrals (id),
    referrer_id                   text NOT NULL REFERENCES customers (id),
    amount_cents                  bigint NOT NULL CHECK (amount_cents > 0),
    currency                      char(3) NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    stripe_balance_transaction_id text UNIQUE,
    status                        text NOT NULL DEFAULT 'credited'
        CHECK (status IN ('pending', 'credited', 'reversed')),
    created_at                    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reward_ledger_referrer_id_idx ON reward_ledger (referrer_id);
COMMENT ON TABLE reward_ledger IS
    'Referral rewards paid out, at most one per referral (the unique referral_id makes a retried credit a no-op). amount_cents is the positive reward; Stripe records it as a negative customer balance transaction.';

CREATE TABLE aliases (
    id             text PRIMARY KEY,
    customer_id    text REFERENCES customers (id),
    email          text,
    alias_email    text UNIQUE,
    simplelogin_id bigint UNIQUE,
    mode           text NOT NULL CHECK (mode IN ('random', 'custom')),
    state          text NOT NULL DEFAULT 'creating'
        CHECK (state IN ('creating', 'active', 'disabled', 'deleted', 'expired')),
    shadow         boolean NOT NULL DEFAULT false,
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aliases_has_owner CHECK (customer_id IS NOT NULL OR (shadow AND email IS NOT NULL))
);
CREATE INDEX aliases_customer_id_idx ON aliases (customer_id);
CREATE INDEX aliases_shadow_email_idx ON aliases (lower(email)) WHERE shadow;
CREATE TRIGGER aliases_set_updated_at BEFORE UPDATE ON aliases
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE aliases IS
    'Email aliases managed at SimpleLogin, one alias-lifecycle workflow each. A shadow alias is made for an email before its owner signs up; it has no customer_id until claimed and expires at expires_at otherwise.';
COMMENT ON COLUMN aliases.alias_email IS 'The alias address, known once SimpleLogin has created it.';
COMMENT ON COLUMN aliases.simplelogin_id IS 'SimpleLogin''s alias id, used to disable, enable and delete it.';

-- +goose Down
DROP TABLE aliases;
DROP TABLE reward_ledger;
DROP TABLE referrals;
DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE products;
DROP TABLE customers;
DROP FUNCTION set_updated_at();
