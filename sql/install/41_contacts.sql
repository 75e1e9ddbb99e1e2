-- Support contacts: the per-customer contacts(opened_at, negative, as_of,
-- window) aggregate (src/contacts.c).  See docs/sources.md.

CREATE TYPE segment.contact_summary AS (
    as_of             timestamptz,
    window_start      timestamptz,
    contacts          bigint,
    negative_contacts bigint,
    unrated_contacts  bigint,
    first_contact     timestamptz,
    last_contact      timestamptz,
    last_negative     timestamptz,
    future_contacts   bigint
);
COMMENT ON TYPE segment.contact_summary IS
    'Result of the contacts aggregate: contacts, negative and unrated contacts in the window; first and last contact and last negative contact at or before as_of; contacts after as_of';

CREATE FUNCTION segment_internal.contacts_trans(internal, timestamptz, boolean, timestamptz, interval)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.contacts_trans(internal, timestamptz, boolean, timestamptz, interval) IS
    'Transition function of the contacts aggregate';

CREATE FUNCTION segment_internal.contacts_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.contacts_combine(internal, internal) IS
    'Combine function of the contacts aggregate';

CREATE FUNCTION segment_internal.contacts_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_contacts_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.contacts_serial(internal) IS
    'Serialization function of the contacts aggregate';

CREATE FUNCTION segment_internal.contacts_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.contacts_deserial(bytea, internal) IS
    'Deserialization function of the contacts aggregate';

CREATE FUNCTION segment_internal.contacts_final(internal) RETURNS segment.contact_summary
    AS 'MODULE_PATHNAME', 'segment_contacts_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.contacts_final(internal) IS
    'Final function of the contacts aggregate';

CREATE AGGREGATE segment.contacts(opened_at timestamptz, negative boolean,
                                  as_of timestamptz, lookback interval) (
    SFUNC = segment_internal.contacts_trans,
    STYPE = internal,
    SSPACE = 120,
    FINALFUNC = segment_internal.contacts_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.contacts_combine,
    SERIALFUNC = segment_internal.contacts_serial,
    DESERIALFUNC = segment_internal.contacts_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.contacts(timestamptz, boolean, timestamptz, interval) IS
    'One customer''s support contacts as of a time, counted over a window (NULL: all history); negative is the contact''s flag (or an expression over its score, such as score <= 2; NULL: unrated); rows after as_of are counted in future_contacts, rows with a NULL time skipped';
