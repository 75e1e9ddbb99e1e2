-- Events: the per-customer events(event_type, occurred_at, product, as_of,
-- window [, kinds]) aggregate and the abandoned-cart functions of its
-- summary (src/events.c, src/activity.c).  See docs-events.md.

CREATE TYPE segment.event_summary AS (
    as_of                   timestamptz,
    window_start            timestamptz,
    visits                  bigint,
    product_views           bigint,
    cart_adds               bigint,
    checkouts               bigint,
    newsletter_opens        bigint,
    first_visit             timestamptz,
    last_visit              timestamptz,
    last_cart_add           timestamptz,
    last_checkout           timestamptz,
    last_newsletter_open    timestamptz,
    subscribed              boolean,
    subscription_changed_at timestamptz,
    cart_products           text[],
    cart_added_at           timestamptz[],
    unknown_events          bigint,
    future_events           bigint
);
COMMENT ON TYPE segment.event_summary IS
    'Result of the events aggregate: window counts of visits, product views, cart adds, checkouts and newsletter opens; first and last site visit, last cart add, checkout and newsletter open; subscription state; the products put in the cart after the last checkout (most recent first, at most 10); rows of unknown type and rows after as_of';

-- STABLE, not IMMUTABLE: the window start as_of - window depends on the
-- session's TimeZone when the window has days or months.
CREATE FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval) IS
    'Transition function of the events aggregate (event types are the kind names)';

CREATE FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval, jsonb)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval, jsonb) IS
    'Transition function of the events aggregate with a mapping of event types to kinds';

CREATE FUNCTION segment_internal.events_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_combine(internal, internal) IS
    'Combine function of the events aggregate';

CREATE FUNCTION segment_internal.events_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_events_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_serial(internal) IS
    'Serialization function of the events aggregate';

CREATE FUNCTION segment_internal.events_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_deserial(bytea, internal) IS
    'Deserialization function of the events aggregate';

CREATE FUNCTION segment_internal.events_final(internal) RETURNS segment.event_summary
    AS 'MODULE_PATHNAME', 'segment_events_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.events_final(internal) IS
    'Final function of the events aggregate';

CREATE AGGREGATE segment.events(event_type text, occurred_at timestamptz, product text,
                                as_of timestamptz, lookback interval) (
    SFUNC = segment_internal.events_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.events_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.events_combine,
    SERIALFUNC = segment_internal.events_serial,
    DESERIALFUNC = segment_internal.events_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval) IS
    'One customer''s site and newsletter events as of a time, counted over a window (NULL: all history); the event types are the kind names (visit, product_view, cart_add, checkout, newsletter_open, subscribe, unsubscribe); other types are counted in unknown_events, rows after as_of in future_events, rows with a NULL time skipped';

CREATE AGGREGATE segment.events(event_type text, occurred_at timestamptz, product text,
                                as_of timestamptz, lookback interval, kinds jsonb) (
    SFUNC = segment_internal.events_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.events_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.events_combine,
    SERIALFUNC = segment_internal.events_serial,
    DESERIALFUNC = segment_internal.events_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval, jsonb) IS
    'As events(event_type, occurred_at, product, as_of, window), with the shop''s event types mapped to kinds by a JSON object {"type": "kind"} (kind "ignore": known, not counted; types it does not name are unknown)';

CREATE FUNCTION segment.event_kind(event_type text, kinds jsonb DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_event_kind' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment.event_kind(text, jsonb) IS
    'The kind an event type maps to (NULL kinds: the kind names themselves), NULL for an unknown type; raises an error for an invalid mapping';

CREATE FUNCTION segment.abandoned_at(summary segment.event_summary, last_order timestamptz)
    RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'segment_abandoned_at' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment.abandoned_at(segment.event_summary, timestamptz) IS
    'The latest cart add of an event summary when it came after the last checkout event and after last_order (NULL: no order), else NULL';

CREATE FUNCTION segment.abandoned_products(summary segment.event_summary, last_order timestamptz)
    RETURNS text[]
    AS 'MODULE_PATHNAME', 'segment_abandoned_products' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment.abandoned_products(segment.event_summary, timestamptz) IS
    'The products put in the cart after the last checkout event and after last_order (NULL: no order), most recent first (at most 10)';
