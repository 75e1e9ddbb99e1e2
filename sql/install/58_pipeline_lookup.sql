-- The pipeline, part 9: segment_of() and profile_of() (src/lookup.c).
--
-- These are created in schema public, not in the extension's schema, so that
-- `WHERE segment_of(id) = 'At Risk'` works unqualified with the default
-- search_path right after CREATE EXTENSION segment.  They belong to the
-- extension all the same (DROP EXTENSION removes them).  One C function serves
-- the four key types; an integer key of another width is converted.

CREATE FUNCTION public.segment_of(customer_id integer) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id uuid) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- Not STRICT: a NULL segmentation means the default one.
CREATE FUNCTION public.segment_of(customer_id integer, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id bigint, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id text, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.segment_of(customer_id uuid, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION public.segment_of(integer) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(bigint) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(text) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(uuid) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(integer, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(bigint, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(text, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.segment_of(uuid, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

CREATE FUNCTION public.profile_of(customer_id integer) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id bigint) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id uuid) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id integer, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id bigint, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id text, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION public.profile_of(customer_id uuid, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION public.profile_of(integer) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(bigint) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(text) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(uuid) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(integer, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(bigint, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(text, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
COMMENT ON FUNCTION public.profile_of(uuid, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';
