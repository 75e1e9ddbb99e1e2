-- The pipeline, part 3: segment rules.  A customer's final segment is the
-- first enabled rule, by priority, whose predicate holds, else the RFM segment;
-- every matching rule is also listed in the profile's flags.  A flag-only rule
-- is listed in the flags but never gives the final segment (a trait, such as
-- a newsletter subscription, that says nothing about which segment a
-- customer is in).  Predicates may read the customers relation's columns as
-- customer.<column>.

-- Owners.  A segmentation belongs to the role that configured it; a refresh
-- runs as that role (segment.refresh(), src/owner.c), and only roles with its
-- privileges may change it, its rules, or refresh it.
CREATE FUNCTION segment_internal.segmentations_owner_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.owner := coalesce(NEW.owner, current_user::regrole);
    ELSIF NOT pg_catalog.pg_has_role(OLD.owner::oid, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied for segmentation "%"', OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Only roles with the privileges of its owner, role %s, may change or drop it.', OLD.owner);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF (TG_OP = 'INSERT' OR NEW.owner IS DISTINCT FROM OLD.owner)
       AND NOT pg_catalog.pg_has_role(NEW.owner::oid, 'USAGE') THEN
        RAISE EXCEPTION 'must have the privileges of role % to make it the owner of segmentation "%"',
                        NEW.owner, NEW.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION segment_internal.segmentations_owner_check() IS
    'Trigger: records the owner of a new segmentation (the current user) and refuses changes by roles without the owner''s privileges (internal)';

CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.segmentations
    FOR EACH ROW EXECUTE FUNCTION segment_internal.segmentations_owner_check();

-- Hands a segmentation, and its profile table, to another role.
CREATE FUNCTION segment.set_owner(owner regrole, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    tbl regclass;
    fn  regprocedure;
BEGIN
    IF owner IS NULL THEN
        RAISE EXCEPTION 'owner must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE segment.segmentations AS x SET owner = set_owner.owner WHERE x.name = s.name;
    -- The tables a refresh writes as the owner: the profile, and the change
    -- log and stored figures of incremental refreshes.
    FOR tbl IN SELECT pg_catalog.to_regclass(format('segment.%I', t))
                 FROM pg_catalog.unnest(ARRAY[s.profile, 'changes_' || s.name, 'stage_' || s.name]) AS u(t)
               UNION ALL
               SELECT pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, k, w))
                 FROM pg_catalog.unnest(ARRAY['events', 'contacts', 'products', 'impulse']) AS k, pg_catalog.unnest(ARRAY['changes', 'stage']) AS w
    LOOP
        IF tbl IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %s', tbl, owner);
        END IF;
    END LOOP;
    -- The change-capture trigger functions run as the owner of the logs.
    FOR fn IN SELECT pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || s.name))
               UNION ALL
               SELECT pg_catalog.to_regprocedure(segment_internal.source_capture_name(s.name, k, 'capture'))
                 FROM pg_catalog.unnest(ARRAY['events', 'contacts', 'products']) AS k
    LOOP
        IF fn IS NOT NULL THEN
            EXECUTE format('ALTER FUNCTION %s OWNER TO %s', fn, owner);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION segment.set_owner(regrole, text) IS
    'Makes a role the owner of a segmentation and its tables (profile, change log, stored figures): refreshes run as that role (only by superusers or roles with the privileges of both the old and the new owner)';

CREATE TABLE segment.rules (
    segmentation text NOT NULL REFERENCES segment.segmentations (name)
                      ON DELETE CASCADE ON UPDATE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    priority     integer NOT NULL,
    predicate    text,
    builtin      text CHECK (builtin IN ('prospect', 'newcomer', 'at_risk_high_value', 'lapsing',
                                         'due_to_rebuy', 'top_spender', 'discount_shopper',
                                         'one_time_buyer',
                                         -- from the sources (51_pipeline_sources.sql)
                                         'angry', 'abandoned_cart', 'indecisive', 'curious_prospect',
                                         'due_to_restock', 'trend_follower',
                                         'newsletter_subscriber', 'impulse_buyer')),
    enabled      boolean NOT NULL DEFAULT true,
    flag_only    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (segmentation, name),
    UNIQUE (segmentation, priority),
    UNIQUE (segmentation, builtin),
    CHECK ((builtin IS NULL) <> (predicate IS NULL))
);
COMMENT ON TABLE segment.rules IS
    'Segment rules of each segmentation: name (the segment label), priority (lower first), SQL predicate over the profile columns (and customer.<column> of the customers relation), or a built-in behavioural rule whose thresholds live in segment.segmentations or its source table; a flag_only rule is listed in the flags but never gives the final segment';
SELECT pg_catalog.pg_extension_config_dump('segment.rules', '');

-- The columns a rule predicate may use: the profile's, less the two that
-- rules compute.  The same query shape is used to validate and to refresh.
CREATE FUNCTION segment.rule_columns() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    -- the profile's columns but its flags and segment (the rules make those)
    SELECT 'customer_id, ' || segment_internal.profile_columns_sql(NULL, NULL, NULL) || ', as_of, refreshed_at'
$$;
COMMENT ON FUNCTION segment.rule_columns() IS
    'The profile columns a rule predicate may refer to';

-- The predicate of a built-in rule, with the segmentation's thresholds and
-- the cuts of a refresh (top_spender_min, high_value_min) filled in; the
-- rules of a source the segmentation does not have are 'false'.
CREATE FUNCTION segment_internal.builtin_predicate(kind text, s segment.segmentations, top_spender_min numeric,
                                          high_value_min double precision)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    e segment.event_sources;
    c segment.contact_sources;
    p segment.product_sources;
BEGIN
    CASE kind
        WHEN 'prospect' THEN
            RETURN 'frequency = 0';
        WHEN 'newcomer' THEN
            RETURN format('frequency > 0 AND tenure_days <= %s', s.new_days);
        WHEN 'at_risk_high_value' THEN
            RETURN CASE WHEN high_value_min IS NULL THEN 'false'
                        ELSE format('p_alive < %s AND clv > %s', s.at_risk_p_alive, high_value_min) END;
        WHEN 'lapsing' THEN
            RETURN format('frequency > 1 AND recency_days > %s * mean_gap_days', s.lapsing_factor);
        WHEN 'due_to_rebuy' THEN
            RETURN format('frequency > 1 AND due_in_days BETWEEN 0 AND %s', s.rebuy_days);
        WHEN 'top_spender' THEN
            RETURN CASE WHEN top_spender_min IS NULL THEN 'false'
                        ELSE format('frequency > 0 AND monetary > %s', top_spender_min) END;
        WHEN 'discount_shopper' THEN
            RETURN format('discount_share > %s', s.discount_share);
        WHEN 'one_time_buyer' THEN
            RETURN 'frequency = 1';
        WHEN 'abandoned_cart', 'indecisive', 'curious_prospect', 'newsletter_subscriber' THEN
            SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND THEN
                RETURN 'false';
            END IF;
            RETURN CASE kind
                WHEN 'abandoned_cart' THEN
                    format('abandoned_at > as_of - interval %L', e.abandoned_days || ' days')
                WHEN 'indecisive' THEN
                    format('(visits >= %s OR cart_adds >= %s) AND (last_order IS NULL OR last_order <= as_of - interval %L)',
                           e.indecisive_visits, e.indecisive_cart_adds, e.lookback)
                WHEN 'curious_prospect' THEN
                    format('frequency = 0 AND last_visit > as_of - interval %L', e.lookback)
                ELSE 'subscribed' END;
        WHEN 'impulse_buyer' THEN
            -- Needs the events' products and the order lines (56_pipeline_impulse.sql).
            SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND OR e.product IS NULL
               OR NOT EXISTS (SELECT FROM segment.product_sources AS x WHERE x.segmentation = s.name) THEN
                RETURN 'false';
            END IF;
            RETURN format('unbrowsed_lines >= %s AND unbrowsed_share >= %s', e.impulse_lines, e.impulse_share);
        WHEN 'angry' THEN
            SELECT * INTO c FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
            RETURN CASE WHEN NOT FOUND THEN 'false'
                        ELSE format('negative_contacts >= %s', c.angry_contacts) END;
        WHEN 'trend_follower', 'due_to_restock' THEN
            SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND THEN
                RETURN 'false';
            END IF;
            RETURN CASE kind
                WHEN 'trend_follower' THEN format('trend_share >= %s AND trend_lines >= %s', p.trend_share, p.trend_lines)
                ELSE format('next_restock BETWEEN as_of::date AND as_of::date + %s', p.restock_days) END;
        ELSE
            RETURN NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION segment_internal.builtin_predicate(text, segment.segmentations, numeric, double precision) IS
    'SQL predicate of a built-in rule with the thresholds of a segmentation and its sources (top_spender_min: the monetary cut of the top share; high_value_min: the lifetime-value cut of the high-value share); ''false'' for a rule of a source the segmentation does not have';

-- The built-in rules: kind, name, priority, flag only, and the source they
-- need (NULL: the orders).  Priorities leave room for a shop's own rules.
CREATE FUNCTION segment.builtin_rules()
    RETURNS TABLE (kind text, name text, priority integer, flag_only boolean, source text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    VALUES ('angry', 'Angry Customers', 2, false, 'contacts'),
           ('abandoned_cart', 'Abandoned Cart', 6, false, 'events'),
           ('indecisive', 'Indecisive', 7, false, 'events'),
           ('curious_prospect', 'Curious Prospects', 8, false, 'events'),
           ('prospect', 'Prospects', 10, false, NULL),
           ('newcomer', 'Newcomers', 20, false, NULL),
           ('at_risk_high_value', 'At Risk, High Value', 25, false, NULL),
           ('lapsing', 'Lapsing', 30, false, NULL),
           ('due_to_restock', 'Due to Re-stock', 35, false, 'products'),
           ('due_to_rebuy', 'Due to Re-buy', 40, false, NULL),
           ('top_spender', 'Top Spenders', 50, false, NULL),
           ('trend_follower', 'Trend Followers', 55, false, 'products'),
           ('impulse_buyer', 'Impulse Buyers', 57, false, 'events'),
           ('discount_shopper', 'Discount Shoppers', 60, false, NULL),
           ('one_time_buyer', 'One-time Buyers', 70, false, NULL),
           ('newsletter_subscriber', 'Newsletter Subscribers', 80, true, 'events')
$$;
COMMENT ON FUNCTION segment.builtin_rules() IS
    'The built-in rules: kind, segment name, priority, whether it only flags, and the source it needs (NULL: the orders)';

-- Adds the built-in rules a segmentation does not have yet: those of the
-- orders, and those of each source it has.  A rule whose name or priority
-- another rule has taken is left out, with a notice.
CREATE FUNCTION segment.add_builtin_rules(segmentation text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    b     record;
    other text;
BEGIN
    FOR b IN
        SELECT r.* FROM segment.builtin_rules() AS r
         WHERE r.source IS NULL
            OR (r.source = 'events' AND EXISTS (SELECT FROM segment.event_sources AS x
                                                 WHERE x.segmentation = add_builtin_rules.segmentation))
            OR (r.source = 'contacts' AND EXISTS (SELECT FROM segment.contact_sources AS x
                                                   WHERE x.segmentation = add_builtin_rules.segmentation))
            OR (r.source = 'products' AND EXISTS (SELECT FROM segment.product_sources AS x
                                                   WHERE x.segmentation = add_builtin_rules.segmentation))
         ORDER BY r.priority
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM segment.rules AS r
                               WHERE r.segmentation = add_builtin_rules.segmentation AND r.builtin = b.kind);
        SELECT r.name INTO other FROM segment.rules AS r
         WHERE r.segmentation = add_builtin_rules.segmentation AND (r.name = b.name OR r.priority = b.priority)
         LIMIT 1;
        IF FOUND THEN
            -- Only for the rules of a source: the orders' ones a shop dropped
            -- and replaced are left out quietly, as they always were.
            IF b.source IS NOT NULL THEN
                RAISE NOTICE 'built-in rule "%" was not added to segmentation "%": rule "%" has its name or priority %',
                             b.name, add_builtin_rules.segmentation, other, b.priority
                    USING HINT = format('To add it under another name or priority: INSERT INTO segment.rules (segmentation, name, priority, builtin, flag_only) VALUES (%L, %L, <priority>, %L, %s);',
                                        add_builtin_rules.segmentation, b.name, b.kind, b.flag_only);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO segment.rules (segmentation, name, priority, builtin, flag_only)
        VALUES (add_builtin_rules.segmentation, b.name, b.priority, b.kind, b.flag_only);
    END LOOP;
END
$$;
COMMENT ON FUNCTION segment.add_builtin_rules(text) IS
    'Adds the built-in behavioural rules (enabled) that a segmentation does not have yet: those of the orders and those of the sources it has';

-- The FROM clause the rules are evaluated over: the rows of input as p0 and,
-- with_customer, the customers relation's row of each as "customer".  A
-- predicate is evaluated in a subquery over (SELECT p0.*) AS p (see
-- segment.rule_sql()), one query level below, so that its unqualified names
-- are the profile's columns, never ambiguous with the customers' columns.
CREATE FUNCTION segment_internal.rule_scope_sql(s segment.segmentations, input text, with_customer boolean)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    customers regclass := pg_catalog.to_regclass(s.customers);
BEGIN
    IF NOT with_customer OR customers IS NULL THEN
        RETURN format('(%s) AS p0', input);
    END IF;
    RETURN format('(%s) AS p0 LEFT JOIN %s AS customer ON customer.%I = p0.customer_id',
                  input, customers, s.customers_key);
END
$$;
COMMENT ON FUNCTION segment_internal.rule_scope_sql(segment.segmentations, text, boolean) IS
    'The FROM clause of the rows the rules see, joined with the customers relation as "customer" when with_customer (internal)';

-- The LATERAL item that evaluates targets (a select list, may be empty) over
-- the rows of segment_internal.rule_scope_sql(), where predicate holds (NULL: always):
-- the profile's columns are those of p, one query level below p0 and customer.
CREATE FUNCTION segment_internal.rule_lateral_sql(targets text, predicate text, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('CROSS JOIN LATERAL (SELECT %s FROM (SELECT p0.*) AS p%s) AS %I',
                  targets, CASE WHEN predicate IS NOT NULL THEN format(' WHERE (%s)', predicate) ELSE '' END,
                  alias)
$$;
COMMENT ON FUNCTION segment_internal.rule_lateral_sql(text, text, text) IS
    'The LATERAL subquery that evaluates rule expressions over the profile columns (as p) in the scope of segment_internal.rule_scope_sql() (internal)';

-- Whether a predicate may read the customers relation (customer.<column>);
-- a false positive only costs a join.
CREATE FUNCTION segment_internal.reads_customer(predicate text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT predicate ~* '\mcustomer"?\s*\.'
$$;
COMMENT ON FUNCTION segment_internal.reads_customer(text) IS
    'Whether a rule predicate may refer to customer.<column> of the customers relation (internal)';

-- Raises an error when the customers relation of a segmentation has a key
-- twice (rules that read its columns need one row per customer), unless a
-- unique index says it cannot.
CREATE FUNCTION segment_internal.check_customers_unique(s segment.segmentations) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    customers regclass := pg_catalog.to_regclass(s.customers);
    dup       text;
BEGIN
    IF customers IS NULL THEN
        RETURN;
    END IF;
    dup := segment_internal.duplicate_key(customers, s.customers_key);
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'customers relation "%" of segmentation "%" has several rows for customer %',
                        customers, s.name, dup
            USING ERRCODE = 'cardinality_violation',
                  DETAIL = 'Rules that read customer.<column> need one row per customer.',
                  HINT = format('Make %s unique in %s (a primary key), or configure a view with one row per customer.',
                                s.customers_key, customers);
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_customers_unique(segment.segmentations) IS
    'Raises cardinality_violation when the customers relation of a segmentation has a key on several rows, unless a unique index rules it out (internal)';

-- Runs a statement as the owner of a segmentation, in a security-restricted
-- operation (src/owner.c); the caller must have the owner's privileges.
CREATE FUNCTION segment_internal.run_as_owner(segmentation text, statement text) RETURNS void
    AS 'MODULE_PATHNAME', 'segment_run_as_owner' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION segment_internal.run_as_owner(text, text) IS
    'Runs a statement as the owner of a segmentation inside a security-restricted operation; only for roles with the owner''s privileges (internal)';

-- Trigger: refuses a user predicate that does not parse, is not boolean or
-- refers to a column the profile (or the customers relation) does not have,
-- when it is written.
CREATE FUNCTION segment_internal.rules_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations;
    state text;
    msg   text;
BEGIN
    IF NEW.predicate IS NULL THEN
        RETURN NEW;
    END IF;
    IF pg_catalog.strpos(NEW.predicate, ';') > 0 THEN
        RAISE EXCEPTION 'invalid predicate for rule "%": a predicate is one expression, without ";"', NEW.name
            USING ERRCODE = 'syntax_error';
    END IF;
    SELECT * INTO s FROM segment.segmentations AS x WHERE x.name = NEW.segmentation;
    BEGIN
        -- Planned as the owner, in a security-restricted operation: the
        -- planner runs the immutable functions it folds.
        -- The profile's columns from a row of NULLs of their types, not from
        -- the table: Citus plans no such join over a distributed profile.
        PERFORM segment_internal.run_as_owner(s.name, format('SELECT 1 FROM %s %s LIMIT 0',
                       segment_internal.rule_scope_sql(s, format('SELECT %s FROM (SELECT NULL::%s AS customer_id, (NULL::segment.customer_profile).*, NULL::timestamptz AS as_of, NULL::timestamptz AS refreshed_at) AS p',
                                                        segment.rule_columns(), s.key_type),
                                              segment_internal.reads_customer(NEW.predicate)),
                       segment_internal.rule_lateral_sql('', NEW.predicate, 'r')));
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid predicate for rule "%": %', NEW.name, msg
            USING ERRCODE = state,
                  DETAIL = format('The predicate is: %s', NEW.predicate),
                  HINT = 'A predicate is a boolean SQL expression over the profile columns ' ||
                         segment.rule_columns() ||
                         CASE WHEN s.customers IS NOT NULL
                              THEN format(', and the columns of %s, written customer.<column>.', s.customers)
                              WHEN segment_internal.reads_customer(NEW.predicate)
                              THEN '; customer.<column> needs a customers relation: segment.configure(customers => ...).'
                              ELSE '.' END;
    END;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION segment_internal.rules_check() IS
    'Trigger: checks a rule predicate against the profile columns and the customers relation when it is written';

CREATE TRIGGER check_predicate BEFORE INSERT OR UPDATE ON segment.rules
    FOR EACH ROW EXECUTE FUNCTION segment_internal.rules_check();

-- Trigger: only roles with the privileges of a segmentation's owner may write
-- its rows in the tables a refresh reads as the owner (its rules, sources and
-- cluster names: a rule or a source relation of another role's choosing
-- would run with the owner's privileges), whatever privileges on the table
-- they were granted.
CREATE FUNCTION segment_internal.owner_rows_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    seg   text;
    owner regrole;
BEGIN
    FOREACH seg IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.segmentation]
                                    WHEN 'DELETE' THEN ARRAY[OLD.segmentation]
                                    ELSE ARRAY[OLD.segmentation, NEW.segmentation] END LOOP
        SELECT x.owner INTO owner FROM segment.segmentations AS x WHERE x.name = seg;
        IF FOUND AND NOT pg_catalog.pg_has_role(owner::oid, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for the % of segmentation "%"',
                            pg_catalog.replace(TG_TABLE_NAME, '_', ' '), seg
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('Only roles with the privileges of its owner, role %s, may change them.', owner);
        END IF;
    END LOOP;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION segment_internal.owner_rows_check() IS
    'Trigger: refuses writes to the rows of a segmentation (rules, sources, cluster names) by roles without the privileges of its owner (internal)';

CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.rules
    FOR EACH ROW EXECUTE FUNCTION segment_internal.owner_rows_check();
CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.event_sources
    FOR EACH ROW EXECUTE FUNCTION segment_internal.owner_rows_check();
CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.contact_sources
    FOR EACH ROW EXECUTE FUNCTION segment_internal.owner_rows_check();
CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.product_sources
    FOR EACH ROW EXECUTE FUNCTION segment_internal.owner_rows_check();
CREATE TRIGGER check_owner BEFORE INSERT OR UPDATE OR DELETE ON segment.cluster_names
    FOR EACH ROW EXECUTE FUNCTION segment_internal.owner_rows_check();

-- Adds a user rule; the trigger validates the predicate.
CREATE FUNCTION segment.add_rule(name text, predicate text, priority integer,
                                 segmentation text DEFAULT NULL, flag_only boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    IF name IS NULL OR predicate IS NULL OR priority IS NULL OR flag_only IS NULL THEN
        RAISE EXCEPTION 'name, predicate, priority and flag_only must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.rules AS r WHERE r.segmentation = s.name AND r.name = add_rule.name) THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" already exists', name, s.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use segment.drop_rule() first, or UPDATE segment.rules.';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.rules AS r WHERE r.segmentation = s.name AND r.priority = add_rule.priority) THEN
        RAISE EXCEPTION 'segmentation "%" already has a rule of priority %', s.name, priority
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('Rule "%s" has it.', (SELECT r.name FROM segment.rules AS r
                                                         WHERE r.segmentation = s.name
                                                           AND r.priority = add_rule.priority));
    END IF;
    INSERT INTO segment.rules (segmentation, name, priority, predicate, flag_only)
    VALUES (s.name, name, priority, predicate, flag_only);
END
$$;
COMMENT ON FUNCTION segment.add_rule(text, text, integer, text, boolean) IS
    'Adds a user rule (segment label, SQL predicate over the profile columns and customer.<column>, priority: lower wins; flag_only: listed in the flags, never the final segment) after checking the predicate';

-- Drops a user or built-in rule.
CREATE FUNCTION segment.drop_rule(name text, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    DELETE FROM segment.rules AS r WHERE r.segmentation = s.name AND r.name = drop_rule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" does not exist', name, s.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION segment.drop_rule(text, text) IS
    'Drops a rule of a segmentation (a built-in one too: segment.add_builtin_rules() brings those back)';

-- Turns a rule on or off.
CREATE FUNCTION segment.enable_rule(name text, segmentation text DEFAULT NULL,
                                    enabled boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    UPDATE segment.rules AS r SET enabled = coalesce(enable_rule.enabled, false)
     WHERE r.segmentation = s.name AND r.name = enable_rule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" does not exist', name, s.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION segment.enable_rule(text, text, boolean) IS
    'Enables (or with false disables) a rule of a segmentation';
