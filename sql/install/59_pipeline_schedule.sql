-- The pipeline, part 10: refreshes scheduled with pg_cron (no scheduler of our own).

-- Raises a clear error, with a hint fitting the server, unless pg_cron is
-- installed in this database.
CREATE FUNCTION segment_internal.require_pg_cron(job text, schedule text, command text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install pg_cron (Debian: postgresql-15-cron), add it to shared_preload_libraries, restart the server, then run CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    ELSIF cron_db <> pg_catalog.current_database() THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron runs its jobs from database "%s" (cron.database_name).', cron_db),
                  HINT = CASE WHEN schedule IS NULL
                              THEN format('Connect to database "%s" and run: SELECT cron.unschedule(%L);',
                                          cron_db, job)
                              ELSE format('Connect to database "%s" and run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                          cron_db, job, schedule, command, pg_catalog.current_database()) END;
    ELSE
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION pg_cron.';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.require_pg_cron(text, text, text) IS
    'Raises an error with a hint unless pg_cron is installed in this database (schedule NULL: the hint is for unscheduling)';

-- The name of the role that owns a segmentation, which its pg_cron job runs
-- as; an error unless the current user may register a job for that role
-- (pg_cron registers a job for the current user; only a superuser may name
-- another one).
CREATE FUNCTION segment_internal.schedule_role(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    owner_name text := (SELECT r.rolname FROM pg_catalog.pg_roles AS r WHERE r.oid = s.owner);
BEGIN
    IF owner_name IS NULL THEN
        RAISE EXCEPTION 'the owner of segmentation "%" no longer exists', s.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'A superuser can give it another one: segment.set_owner(role, segmentation).';
    END IF;
    IF owner_name <> current_user AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r
                                            WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'the refresh job of segmentation "%" runs as its owner, role "%"', s.name, owner_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'pg_cron registers a job for the current user; only a superuser may register one for another role.',
                  HINT = format('Run SET ROLE %I first, or ask a superuser.', owner_name);
    END IF;
    RETURN owner_name;
END
$$;
COMMENT ON FUNCTION segment_internal.schedule_role(segment.segmentations) IS
    'The role the pg_cron job of a segmentation runs as (its owner); raises insufficient_privilege unless the current user is that role or a superuser (internal)';

-- Registers (or updates) the pg_cron job that refreshes a segmentation, as
-- its owner: the job's refresh runs as that role whoever registered it.
CREATE FUNCTION segment.schedule(segmentation text DEFAULT NULL, schedule text DEFAULT '0 3 * * *')
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s       segment.segmentations := segment_internal.segmentation_row(segmentation);
    job     text := 'segment_refresh_' || s.name;
    command text := format('SELECT segment.refresh(%L)', s.name);
    role    text;
    jobid   bigint;
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'A cron expression such as ''0 3 * * *'' (every day at 03:00).';
    END IF;
    PERFORM segment_internal.require_pg_cron(job, schedule, command);
    role := segment_internal.schedule_role(s);
    IF role = current_user THEN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING job, schedule, command;
    ELSE
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4, $5)' INTO jobid
            USING job, schedule, command, pg_catalog.current_database(), role;
    END IF;
    RETURN jobid;
END
$$;
COMMENT ON FUNCTION segment.schedule(text, text) IS
    'Registers with pg_cron a job "segment_refresh_<segmentation>" that refreshes a segmentation (NULL: the default one) on a cron schedule, run as the segmentation''s owner (the owner itself or a superuser may schedule it); returns the job id';

-- Removes that job; false when there was none.
CREATE FUNCTION segment.unschedule(segmentation text DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations := segment_internal.segmentation_row(segmentation);
    job   text := 'segment_refresh_' || s.name;
    role  text;
    jobid bigint;
BEGIN
    PERFORM segment_internal.require_pg_cron(job, NULL, NULL);
    role := segment_internal.schedule_role(s);
    EXECUTE 'SELECT j.jobid FROM cron.job AS j WHERE j.jobname = $1 AND j.username = $2'
        INTO jobid USING job, role;
    IF jobid IS NOT NULL THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING jobid;
    END IF;
    RETURN jobid IS NOT NULL;
END
$$;
COMMENT ON FUNCTION segment.unschedule(text) IS
    'Removes the pg_cron job that refreshes a segmentation (NULL: the default one), registered for its owner; false when there was none';
