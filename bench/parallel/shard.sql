-- The sharded half of bench/parallel.sh, on the coordinator: orders_sharded,
-- partitioned by hash of the customer key over two shard servers (psql -v
-- shard1_port=... shard2_port=...), filled from the local orders; and three
-- segmentations, one per copy, none with change capture (the partitioned and
-- foreign copies cannot have it, and a full refresh with it also stores its
-- figures for the next incremental one: without it, all do the same work).
-- async_capable lets the coordinator wait for both shards at once (Async
-- Append); batch_size speeds up the load.
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER shard1 FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port :'shard1_port', dbname 'postgres', extensions 'segment',
             async_capable 'true', batch_size '1000', fetch_size '10000');
CREATE SERVER shard2 FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port :'shard2_port', dbname 'postgres', extensions 'segment',
             async_capable 'true', batch_size '1000', fetch_size '10000');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard1 OPTIONS (user 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard2 OPTIONS (user 'postgres');
CREATE TABLE orders_sharded (customer_id bigint, ordered_at timestamptz, amount numeric(12,2))
    PARTITION BY HASH (customer_id);
CREATE FOREIGN TABLE orders_sharded_p0 PARTITION OF orders_sharded
    FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER shard1 OPTIONS (table_name 'orders_part');
CREATE FOREIGN TABLE orders_sharded_p1 PARTITION OF orders_sharded
    FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER shard2 OPTIONS (table_name 'orders_part');
INSERT INTO orders_sharded SELECT * FROM orders;
SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'local');
SELECT segment.configure('orders_hashed', 'customer_id', 'ordered_at', 'amount', segmentation => 'hashed');
SELECT segment.configure('orders_sharded', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'sharded');
SELECT segment_internal.drop_capture('local');
