-- The pipeline, part 6: refreshes scheduled with pg_cron (no scheduler of our own).

-- Raises a clear error, with a hint fitting the server, unless pg_cron is
-- installed in this database.
CREATE FUNCTION segment.require_pg_cron(job text, schedule text, command text) RETURNS void
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
COMMENT ON FUNCTION segment.require_pg_cron(text, text, text) IS
    'Raises an error with a hint unless pg_cron is installed in this database (schedule NULL: the hint is for unscheduling)';

-- Registers (or updates) the pg_cron job that refreshes a segmentation.
CREATE FUNCTION segment.schedule(schedule text DEFAULT '0 3 * * *', segmentation text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s       segment.segmentations := segment.segmentation_row(segmentation);
    job     text := 'segment_refresh_' || s.name;
    command text := format('SELECT segment.refresh(%L)', s.name);
    jobid   bigint;
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'A cron expression such as ''0 3 * * *'' (every day at 03:00).';
    END IF;
    PERFORM segment.require_pg_cron(job, schedule, command);
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING job, schedule, command;
    RETURN jobid;
END
$$;
COMMENT ON FUNCTION segment.schedule(text, text) IS
    'Registers with pg_cron a job "segment_refresh_<segmentation>" that refreshes a segmentation (NULL: the default one) on a cron schedule; returns the job id';

-- Removes that job; false when there was none.
CREATE FUNCTION segment.unschedule(segmentation text DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations := segment.segmentation_row(segmentation);
    job   text := 'segment_refresh_' || s.name;
    found boolean;
BEGIN
    PERFORM segment.require_pg_cron(job, NULL, NULL);
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job AS j WHERE j.jobname = $1 AND j.username = current_user)'
        INTO found USING job;
    IF found THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION segment.unschedule(text) IS
    'Removes the pg_cron job that refreshes a segmentation (NULL: the default one); false when there was none';
