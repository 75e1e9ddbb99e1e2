-- The pipeline, part 2: segment rules.  A customer's final segment is the
-- first enabled rule, by priority, whose predicate holds, else the RFM segment;
-- every matching rule is also listed in the profile's flags.

CREATE TABLE segment.rules (
    segmentation text NOT NULL REFERENCES segment.segmentations (name)
                      ON DELETE CASCADE ON UPDATE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    priority     integer NOT NULL,
    predicate    text,
    builtin      text CHECK (builtin IN ('prospect', 'newcomer', 'at_risk_high_value', 'lapsing',
                                         'due_to_rebuy', 'top_spender', 'discount_shopper',
                                         'one_time_buyer')),
    enabled      boolean NOT NULL DEFAULT true,
    PRIMARY KEY (segmentation, name),
    UNIQUE (segmentation, priority),
    UNIQUE (segmentation, builtin),
    CHECK ((builtin IS NULL) <> (predicate IS NULL))
);
COMMENT ON TABLE segment.rules IS
    'Segment rules of each segmentation: name (the segment label), priority (lower first), SQL predicate over the profile columns, or a built-in behavioural rule whose thresholds live in segment.segmentations';
SELECT pg_catalog.pg_extension_config_dump('segment.rules', '');

-- The columns a rule predicate may use: the profile's, less the two that
-- rules compute.  The same query shape is used to validate and to refresh.
CREATE FUNCTION segment.rule_columns() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT 'customer_id, first_order, last_order, tenure_days, recency_days, frequency, '
           'purchase_days, monetary, mean_amount, mean_gap_days, discount_share, due_in_days, '
           'r, f, m, rfm_code, rfm_segment, cluster, cluster_name, cluster_distance, '
           'p_alive, expected_purchases, clv, as_of, refreshed_at'
$$;
COMMENT ON FUNCTION segment.rule_columns() IS
    'The profile columns a rule predicate may refer to';

-- The predicate of a built-in rule, with the segmentation's thresholds and
-- the cuts of a refresh (top_spender_min, high_value_min) filled in.
CREATE FUNCTION segment.builtin_predicate(kind text, s segment.segmentations, top_spender_min numeric,
                                          high_value_min double precision)
    RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE kind
        WHEN 'prospect' THEN 'frequency = 0'
        WHEN 'newcomer' THEN format('frequency > 0 AND tenure_days <= %s', s.new_days)
        WHEN 'at_risk_high_value' THEN
            CASE WHEN high_value_min IS NULL THEN 'false'
                 ELSE format('p_alive < %s AND clv > %s', s.at_risk_p_alive, high_value_min) END
        WHEN 'lapsing' THEN format('frequency > 1 AND recency_days > %s * mean_gap_days', s.lapsing_factor)
        WHEN 'due_to_rebuy' THEN format('frequency > 1 AND due_in_days BETWEEN 0 AND %s', s.rebuy_days)
        WHEN 'top_spender' THEN
            CASE WHEN top_spender_min IS NULL THEN 'false'
                 ELSE format('frequency > 0 AND monetary > %s', top_spender_min) END
        WHEN 'discount_shopper' THEN format('discount_share > %s', s.discount_share)
        WHEN 'one_time_buyer' THEN 'frequency = 1'
    END
$$;
COMMENT ON FUNCTION segment.builtin_predicate(text, segment.segmentations, numeric, double precision) IS
    'SQL predicate of a built-in rule with the thresholds of a segmentation (top_spender_min: the monetary cut of the top share; high_value_min: the lifetime-value cut of the high-value share)';

-- Adds the built-in rules a segmentation does not have yet.
CREATE FUNCTION segment.add_builtin_rules(segmentation text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    INSERT INTO segment.rules (segmentation, name, priority, builtin)
    SELECT add_builtin_rules.segmentation, b.name, b.priority, b.kind
      FROM (VALUES ('prospect', 'Prospects', 10),
                   ('newcomer', 'Newcomers', 20),
                   ('at_risk_high_value', 'At Risk, High Value', 25),
                   ('lapsing', 'Lapsing', 30),
                   ('due_to_rebuy', 'Due to Re-buy', 40),
                   ('top_spender', 'Top Spenders', 50),
                   ('discount_shopper', 'Discount Shoppers', 60),
                   ('one_time_buyer', 'One-time Buyers', 70)) AS b(kind, name, priority)
     WHERE NOT EXISTS (SELECT 1 FROM segment.rules AS r
                        WHERE r.segmentation = add_builtin_rules.segmentation
                          AND (r.builtin = b.kind OR r.name = b.name OR r.priority = b.priority))
$$;
COMMENT ON FUNCTION segment.add_builtin_rules(text) IS
    'Adds the built-in behavioural rules (enabled) that a segmentation does not have yet';

-- Trigger: refuses a user predicate that does not parse, is not boolean or
-- refers to a column the profile does not have, when it is written.
CREATE FUNCTION segment.rules_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    prof  name;
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
    SELECT s.profile INTO prof FROM segment.segmentations AS s WHERE s.name = NEW.segmentation;
    BEGIN
        EXECUTE format('SELECT 1 FROM (SELECT %s FROM segment.%I) AS p WHERE (%s) LIMIT 0',
                       segment.rule_columns(), prof, NEW.predicate);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid predicate for rule "%": %', NEW.name, msg
            USING ERRCODE = state,
                  DETAIL = format('The predicate is: %s', NEW.predicate),
                  HINT = 'A predicate is a boolean SQL expression over the profile columns ' ||
                         segment.rule_columns() || '.';
    END;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION segment.rules_check() IS
    'Trigger: checks a rule predicate against the profile columns when it is written';

CREATE TRIGGER check_predicate BEFORE INSERT OR UPDATE ON segment.rules
    FOR EACH ROW EXECUTE FUNCTION segment.rules_check();

-- Adds a user rule; the trigger validates the predicate.
CREATE FUNCTION segment.add_rule(name text, predicate text, priority integer,
                                 segmentation text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment.segmentation_row(segmentation);
BEGIN
    IF name IS NULL OR predicate IS NULL OR priority IS NULL THEN
        RAISE EXCEPTION 'name, predicate and priority must not be null'
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
    INSERT INTO segment.rules (segmentation, name, priority, predicate)
    VALUES (s.name, name, priority, predicate);
END
$$;
COMMENT ON FUNCTION segment.add_rule(text, text, integer, text) IS
    'Adds a user rule (segment label, SQL predicate over the profile columns, priority: lower wins) after checking the predicate';

-- Drops a user or built-in rule.
CREATE FUNCTION segment.drop_rule(name text, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment.segmentation_row(segmentation);
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
CREATE FUNCTION segment.enable_rule(name text, enabled boolean DEFAULT true,
                                    segmentation text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment.segmentation_row(segmentation);
BEGIN
    UPDATE segment.rules AS r SET enabled = coalesce(enable_rule.enabled, false)
     WHERE r.segmentation = s.name AND r.name = enable_rule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" does not exist', name, s.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION segment.enable_rule(text, boolean, text) IS
    'Enables (or with false disables) a rule of a segmentation';
