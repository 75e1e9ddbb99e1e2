-- segment: customer segmentation inside PostgreSQL.
-- This file is assembled from sql/install/*.sql by the Makefile.

\echo Use "CREATE EXTENSION segment" to load this file. \quit
