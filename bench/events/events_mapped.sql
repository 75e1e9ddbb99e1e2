-- (m) segment.events with a mapping of the shop's types to kinds.
SELECT count(e) AS result
  FROM (SELECT customer_id,
               segment.events(event_type, occurred_at, product, :'as_of', '30 days',
                              '{"visit": "visit", "product_view": "product_view", "cart_add": "cart_add",
                                "checkout": "checkout", "newsletter_open": "newsletter_open",
                                "subscribe": "subscribe", "unsubscribe": "unsubscribe",
                                "search": "ignore"}') AS e
          FROM events GROUP BY customer_id) AS s \gset
