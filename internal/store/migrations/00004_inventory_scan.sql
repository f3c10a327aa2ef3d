-- The inventory scan (a Temporal Schedule) signals each SKU's low-stock
-- entity only when its stock level changed since it was last signalled.
-- stock_changed_at is when the level last changed, kept by a trigger so that
-- writes from any code path (the shop's own SQL included) count; the scan
-- sends it as the observation time, so a level read from the table never
-- overrides a newer level the entity got from the start API.

-- +goose Up
ALTER TABLE products
    ADD COLUMN stock_changed_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_signalled_level integer,
    ADD COLUMN last_signalled_at    timestamptz;
COMMENT ON COLUMN products.stock_changed_at IS
    'When stock_level last changed; the inventory scan''s observation time.';
COMMENT ON COLUMN products.last_signalled_level IS
    'The level the inventory scan last signalled to the SKU''s low-stock workflow; NULL until the first scan.';
COMMENT ON COLUMN products.last_signalled_at IS
    'When the inventory scan last signalled the SKU.';

-- +goose StatementBegin
CREATE FUNCTION set_stock_changed_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stock_level IS DISTINCT FROM OLD.stock_level THEN
        NEW.stock_changed_at := now();
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION set_stock_changed_at() IS
    'Trigger function: stamps products.stock_changed_at when stock_level really changes.';
CREATE TRIGGER products_set_stock_changed_at BEFORE UPDATE OF stock_level ON products
    FOR EACH ROW EXECUTE FUNCTION set_stock_changed_at();

-- The scan asks for exactly this set every few minutes; in a large catalogue
-- it is small, so a partial index keeps the scan from reading every product.
CREATE INDEX products_stock_unsignalled_idx ON products (sku)
    WHERE last_signalled_level IS DISTINCT FROM stock_level;

-- +goose Down
DROP INDEX products_stock_unsignalled_idx;
DROP TRIGGER products_set_stock_changed_at ON products;
DROP FUNCTION set_stock_changed_at();
ALTER TABLE products
    DROP COLUMN last_signalled_at,
    DROP COLUMN last_signalled_level,
    DROP COLUMN stock_changed_at;
