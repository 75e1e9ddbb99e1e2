-- segment: customer segmentation inside PostgreSQL.
-- This file is assembled from sql/install/*.sql by the Makefile.

\echo Use "CREATE EXTENSION segment" to load this file. \quit

-- Two schemas: segment holds what users call (functions, aggregates, types,
-- the configuration and log tables; docs/reference.md lists it all), and
-- segment_internal the plumbing: aggregate support functions, the refresh's
-- steps and SQL builders, validation and trigger functions, the change
-- capture's per-segmentation trigger functions.  Users need not look there;
-- USAGE is granted because the extension's functions run as their caller or
-- as a segmentation's owner and call into it.  Creating it here also means
-- that a schema of that name made beforehand stops CREATE EXTENSION.
CREATE SCHEMA segment_internal;
GRANT USAGE ON SCHEMA segment_internal TO PUBLIC;
COMMENT ON SCHEMA segment_internal IS
    'Internals of the segment extension (aggregate support functions, refresh steps, checks); not an API';
