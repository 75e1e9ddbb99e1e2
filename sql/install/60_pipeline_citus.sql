-- The pipeline, part 11: Citus.  segment.distribute() prepares a segmentation
-- for a Citus cluster: its profile becomes a distributed table colocated with
-- the customers (or orders) it is keyed by, or a reference table when neither
-- is distributed; and the segmentation is entered in the directory below, a
-- reference table, so that segment_of() and profile_of() find it on the
-- workers, where Citus runs them (src/lookup.c, src/lookup_citus.c).  The rest
-- of the configuration (rules, sources, history, refresh log) stays on the
-- coordinator, where refresh() runs.

-- The segmentations whose profile is a Citus table, as the workers need them
-- for a lookup: a copy of four columns of segment.segmentations that
-- segment_internal.sync_directory() keeps, a reference table once one is distributed.
CREATE TABLE segment.segmentation_directory (
    name         text PRIMARY KEY,
    is_default   boolean NOT NULL,
    profile      name NOT NULL,
    last_refresh bigint
);
COMMENT ON TABLE segment.segmentation_directory IS
    'The segmentations whose profile is distributed with Citus, replicated to every node for segment_of() and profile_of() there (kept by segment.distribute() and a trigger on segment.segmentations)';

-- How Citus spreads a relation: its partition method ('h' distributed by
-- hash, 'n' a reference or single-shard table), NULL for a relation Citus
-- does not manage (or without Citus).
CREATE FUNCTION segment_internal.citus_partition_method(rel regclass) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    method text;
BEGIN
    IF rel IS NOT NULL AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT partmethod::pg_catalog.text FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1'
           INTO method USING rel;
    END IF;
    RETURN method;
END
$$;
COMMENT ON FUNCTION segment_internal.citus_partition_method(regclass) IS
    'The Citus partition method of a relation (h: hash, n: reference or single shard), NULL when Citus does not manage it (internal)';

CREATE FUNCTION segment_internal.is_citus_table(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.citus_partition_method(rel) IS NOT NULL
$$;
COMMENT ON FUNCTION segment_internal.is_citus_table(regclass) IS
    'Whether a relation is a Citus table; false without Citus (internal)';

-- Brings the directory up to date with segment.segmentations: it runs as the
-- extension's owner (the directory is the extension's table, and turning it
-- into a reference table needs its owner), from distribute() and from a
-- trigger on segment.segmentations.  It writes only when an entry changed,
-- and does nothing at all until a profile is a Citus table.
CREATE FUNCTION segment_internal.sync_directory() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    IF NOT segment_internal.is_citus_table('segment.segmentation_directory') THEN
        IF NOT EXISTS (SELECT FROM segment.segmentations AS x
                        WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))) THEN
            RETURN;
        END IF;
        PERFORM pg_catalog.create_reference_table('segment.segmentation_directory');
    END IF;
    IF EXISTS (SELECT x.name, x.is_default, x.profile, x.last_refresh
                 FROM segment.segmentations AS x
                WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))
               EXCEPT
               SELECT d.name, d.is_default, d.profile, d.last_refresh
                 FROM segment.segmentation_directory AS d)
       OR EXISTS (SELECT d.name, d.is_default, d.profile, d.last_refresh
                    FROM segment.segmentation_directory AS d
                  EXCEPT
                  SELECT x.name, x.is_default, x.profile, x.last_refresh
                    FROM segment.segmentations AS x
                   WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))) THEN
        DELETE FROM segment.segmentation_directory;
        INSERT INTO segment.segmentation_directory (name, is_default, profile, last_refresh)
        SELECT x.name, x.is_default, x.profile, x.last_refresh
          FROM segment.segmentations AS x
         WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)));
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.sync_directory() IS
    'Copies the entries of segment.segmentations whose profile is a Citus table into the reference table segment.segmentation_directory (internal)';

CREATE FUNCTION segment_internal.sync_directory_trigger() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM segment_internal.sync_directory();
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.sync_directory_trigger() IS
    'Trigger on segment.segmentations: keeps segment.segmentation_directory up to date (internal)';
CREATE TRIGGER sync_directory AFTER INSERT OR UPDATE OR DELETE ON segment.segmentations
    FOR EACH STATEMENT EXECUTE FUNCTION segment_internal.sync_directory_trigger();

-- See the README, "Citus".
CREATE FUNCTION segment.distribute(segmentation text DEFAULT NULL, colocate_with regclass DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
    prof regclass := pg_catalog.to_regclass(format('segment.%I', s.profile));
    target regclass := colocate_with;
    done text;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION citus on every node, then add the workers with citus_add_node().';
    END IF;
    IF prof IS NULL THEN
        RAISE EXCEPTION 'profile table "segment.%" of segmentation "%" does not exist', s.profile, s.name
            USING ERRCODE = 'undefined_table', HINT = 'Run segment.configure() again to create it.';
    END IF;
    IF target IS NOT NULL AND segment_internal.citus_partition_method(target) IS DISTINCT FROM 'h' THEN
        RAISE EXCEPTION 'relation "%" is not distributed by hash with Citus', target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a table distributed by the customer key, or leave colocate_with out.';
    END IF;
    IF target IS NULL THEN
        target := CASE WHEN segment_internal.citus_partition_method(pg_catalog.to_regclass(s.customers)) = 'h'
                            THEN pg_catalog.to_regclass(s.customers)
                       WHEN segment_internal.citus_partition_method(pg_catalog.to_regclass(s.orders)) = 'h'
                            THEN pg_catalog.to_regclass(s.orders) END;
    END IF;

    IF segment_internal.is_citus_table(prof) THEN
        done := format('profile %s was already a Citus table', prof);
    ELSIF target IS NOT NULL THEN
        PERFORM pg_catalog.create_distributed_table(prof, 'customer_id', colocate_with => target::text);
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(prof);
        done := format('profile %s distributed by customer_id, colocated with %s', prof, target);
    ELSE
        PERFORM pg_catalog.create_reference_table(prof);
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(prof);
        done := format('profile %s replicated to every node (neither the customers nor the orders are distributed by hash)',
                       prof);
    END IF;
    PERFORM segment_internal.sync_directory();
    RETURN done;
END
$$;
COMMENT ON FUNCTION segment.distribute(text, regclass) IS
    'Prepares a segmentation (NULL: the default one) for a Citus cluster: distributes its profile colocated with the customers or orders (or replicates it), and makes it known to the workers so that segment_of() works in queries over distributed tables';
