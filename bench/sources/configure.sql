-- The three segmentations of bench/sources.sh: the same orders and
-- customers; "events" with the events, "all" with every source.
SET client_min_messages = warning;
SELECT segment.configure(orders => 'orders', customer => 'customer_id', ordered_at => 'ordered_at',
                         amount => 'amount', discount => 'discount', status => 'status',
                         exclude_status => '{cancelled}', customers => 'customers',
                         customers_key => 'customer_id', segmentation => s)
  FROM unnest(ARRAY['orders', 'events', 'all']) AS s;
SELECT segment.configure_event_source('events', 'customer_id', 'event_type', 'occurred_at', product => 'product',
                                kinds => '{"visit": "visit", "product_view": "product_view",
                                           "cart_add": "cart_add", "checkout": "checkout",
                                           "newsletter_open": "newsletter_open", "subscribe": "subscribe",
                                           "unsubscribe": "unsubscribe", "search": "ignore"}',
                                segmentation => s)
  FROM unnest(ARRAY['events', 'all']) AS s;
SELECT segment.configure_contact_source('contacts', 'customer_id', 'opened_at', negative => 'rating',
                                  negative_below => 3, segmentation => 'all');
SELECT segment.configure_product_source('order_lines', 'order_id', 'product', quantity => 'quantity',
                                  products => 'products', launched_at => 'launched_at',
                                  category => 'category', segmentation => 'all');
-- Rules on the customers' columns, so that the refreshes join them too.
SELECT segment.add_rule('Champions in Germany', $$rfm_segment = 'Champions' AND customer.country = 'DE'$$, 3, s)
  FROM unnest(ARRAY['orders', 'events', 'all']) AS s;
SELECT segment.add_rule('Angry Champions', $$negative_contacts > 0 AND rfm_segment = 'Champions'$$, 1, 'all');
