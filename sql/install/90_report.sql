-- The segment report: one self-contained HTML page (inline CSS and SVG, no
-- script, nothing fetched) drawn from a segmentation's stored data: the
-- profile, segment.refreshes and segment.history.  See docs/report.md.
--
-- Like the other read functions (describe_clusters(), transitions()) it runs
-- with the caller's privileges: the caller needs SELECT on the profile.
-- Every text that comes from data (segment, rule and cluster names) goes
-- through segment_internal.html_escape(); the charts' elements carry stable classes
-- and data- attributes (rect.bar[data-segment], rect.cell[data-r][data-f],
-- tr.move, tr.cluster, rect.bin) for tests and for whoever styles the page.

-- Text made safe for HTML element content and quoted attribute values.
CREATE FUNCTION segment_internal.html_escape(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
           t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION segment_internal.html_escape(text) IS
    'The text with &, <, >, " and '' replaced by HTML entities (safe in element content and quoted attributes)';

-- A number with thousands separators and a fixed number of decimals; a dash
-- for NULL.
CREATE FUNCTION segment_internal.report_number(v numeric, decimals integer DEFAULT 0) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN v IS NULL THEN '–'
                ELSE pg_catalog.btrim(pg_catalog.to_char(pg_catalog.round(v, decimals),
                         'FM999,999,999,999,999,990' ||
                         CASE WHEN decimals > 0 THEN '.' || pg_catalog.repeat('0', decimals) ELSE '' END))
           END
$$;
COMMENT ON FUNCTION segment_internal.report_number(numeric, integer) IS
    'A number as the report prints it: thousands separators, fixed decimals, a dash for NULL (internal)';

-- A label cut to n characters (an ellipsis marks the cut), escaped: cut
-- first, so that no entity is cut in two.
CREATE FUNCTION segment_internal.report_label(t text, n integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.html_escape(CASE WHEN pg_catalog.length(t) > n
                                    THEN pg_catalog.substr(t, 1, n - 1) || '…' ELSE t END)
$$;
COMMENT ON FUNCTION segment_internal.report_label(text, integer) IS
    'A text cut to n characters with an ellipsis, HTML-escaped (internal)';

-- A horizontal bar chart as an SVG element: one rect.bar per label (its
-- data-segment the label), its length proportional to its value, the shown
-- text at its end.
CREATE FUNCTION segment_internal.report_bars(chart_id text, caption text, labels text[], vals double precision[],
                                    shown text[], colours text[])
    RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n     integer := coalesce(pg_catalog.cardinality(labels), 0);
    top   double precision;
    out   text;
    w     double precision;
    y     integer;
BEGIN
    SELECT pg_catalog.max(v) INTO top FROM pg_catalog.unnest(vals) AS v;
    IF top IS NULL OR NOT top > 0 THEN
        top := 1;
    END IF;
    out := format('<svg id="%s" class="chart bars" role="img" width="760" height="%s" viewBox="0 0 760 %s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>',
                  segment_internal.html_escape(chart_id), 24 * n + 8, 24 * n + 8, segment_internal.html_escape(caption));
    FOR i IN 1 .. n LOOP
        y := 4 + 24 * (i - 1);
        w := CASE WHEN coalesce(vals[i], 0) > 0 THEN greatest(1, 420 * vals[i] / top) ELSE 0 END;
        out := out || format('<text class="label" x="206" y="%s" text-anchor="end">%s<title>%s</title></text>'
                             '<rect class="bar" data-segment="%s" x="214" y="%s" width="%s" height="18" fill="%s"><title>%s: %s</title></rect>'
                             '<text class="value" x="%s" y="%s">%s</text>',
                             y + 14, segment_internal.report_label(labels[i], 30), segment_internal.html_escape(labels[i]),
                             segment_internal.html_escape(labels[i]), y, pg_catalog.round(w::numeric, 1),
                             segment_internal.html_escape(colours[i]), segment_internal.html_escape(labels[i]),
                             segment_internal.html_escape(shown[i]),
                             pg_catalog.round((220 + w)::numeric, 1), y + 14, segment_internal.html_escape(shown[i]));
    END LOOP;
    RETURN out || '</svg>';
END
$$;
COMMENT ON FUNCTION segment_internal.report_bars(text, text, text[], double precision[], text[], text[]) IS
    'SVG horizontal bar chart of the report: one rect.bar per label, length by value (internal)';

-- The colour of a share (0..1) of a scale from pale to deep blue.
CREATE FUNCTION segment_internal.report_shade(share double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('rgb(%s,%s,%s)',
                  pg_catalog.round(239 - 205 * x), pg_catalog.round(246 - 148 * x), pg_catalog.round(255 - 85 * x))
      FROM (SELECT least(1, greatest(0, coalesce(share, 0)))::numeric AS x) AS s
$$;
COMMENT ON FUNCTION segment_internal.report_shade(double precision) IS
    'The fill colour of an RFM grid cell for a share of the largest value (internal)';

-- The page's style sheet: readable on screen, printable on A4.
CREATE FUNCTION segment_internal.report_css() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT $css$
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2330; margin: 24px auto; max-width: 980px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 6px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
p.note, p.sub { color: #5b6475; font-size: 13px; margin: 4px 0 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { border: 1px solid #d8dde6; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.card span { color: #5b6475; font-size: 12px; }
svg.chart { display: block; max-width: 100%; height: auto; font-size: 12px; }
svg text { fill: #1d2330; }
svg text.value, svg text.axis { fill: #5b6475; }
svg text.seg { font-size: 10px; }
svg text.count { font-size: 13px; font-weight: 600; }
svg g.dark text { fill: #ffffff; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceff4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
section { break-inside: avoid; page-break-inside: avoid; }
footer { margin-top: 28px; color: #5b6475; font-size: 12px; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
$css$
$$;
COMMENT ON FUNCTION segment_internal.report_css() IS
    'The inline style sheet of segment.report() (internal)';

CREATE FUNCTION segment.report(segmentation text DEFAULT NULL, grid_colour text DEFAULT 'monetary')
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s        segment.segmentations := segment_internal.segmentation_row(segmentation);
    r        segment.refreshes;
    prev     bigint;
    palette  text[] := '{#4e79a7,#f28e2b,#e15759,#76b7b2,#59a14f,#edc948,#b07aa1,#ff9da7,#9c755f,#bab0ac,#1f77b4,#8c564b}';
    page     text;
    body     text;
    labels   text[];
    sizes    double precision[];
    revenue  double precision[];
    shown_n  text[];
    shown_m  text[];
    colours  text[];
    total    bigint;
    buyers   bigint;
    rev      numeric;
    cells    jsonb;
    top      double precision;
    c        jsonb;
    gx       integer;
    gy       integer;
    b        integer;
    grid     text;
    moved    bigint;
    trs      text;
    nrows    integer;
    extra    integer;
    cl       record;
    bins     jsonb;
    lo       double precision;
    hi       double precision;
    nbins    constant integer := 20;
    bw       double precision;
    hist     text;
    state    text;
    msg      text;
BEGIN
    IF grid_colour IS NULL THEN
        RAISE EXCEPTION 'grid_colour must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Use ''monetary'' (the default) or ''customers''.';
    END IF;
    IF grid_colour NOT IN ('monetary', 'customers') THEN
        RAISE EXCEPTION 'invalid grid_colour "%"', grid_colour
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''monetary'' (colour the RFM grid by mean spend) or ''customers'' (by number of customers).';
    END IF;
    SELECT * INTO r FROM segment.refreshes AS x WHERE x.id = s.last_refresh;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'segmentation "%" has not been refreshed yet', s.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Run SELECT segment.refresh(%L); first.', s.name);
    END IF;
    b := r.buckets;

    -- 1. Segment sizes and revenue, in rule priority order, then RFM map order.
    EXECUTE format($q$
        SELECT pg_catalog.array_agg(g.seg ORDER BY g.ord, g.seg),
               pg_catalog.array_agg(g.n::double precision ORDER BY g.ord, g.seg),
               pg_catalog.array_agg(g.m::double precision ORDER BY g.ord, g.seg),
               pg_catalog.sum(g.n)::bigint, pg_catalog.sum(g.buyers)::bigint, pg_catalog.sum(g.m)
          FROM (SELECT coalesce(p.segment, '(none)') AS seg, pg_catalog.count(*) AS n,
                       pg_catalog.count(*) FILTER (WHERE p.frequency > 0) AS buyers,
                       coalesce(pg_catalog.sum(p.monetary), 0) AS m,
                       coalesce((SELECT pg_catalog.min(ru.priority) FROM segment.rules AS ru
                                  WHERE ru.segmentation = $1 AND ru.name = p.segment),
                                100000 + (SELECT pg_catalog.min(mp.priority) FROM segment.rfm_segment_map AS mp
                                           WHERE mp.segment = p.segment),
                                1000000) AS ord
                  FROM segment.%I AS p
                 GROUP BY p.segment) AS g$q$, s.profile)
        INTO labels, sizes, revenue, total, buyers, rev
        USING s.name;
    labels := coalesce(labels, '{}');
    SELECT pg_catalog.array_agg(segment_internal.report_number(v::numeric) ORDER BY i),
           pg_catalog.array_agg(format('%s (%s%%)', segment_internal.report_number(v::numeric),
                                       segment_internal.report_number((100 * v / greatest(total, 1))::numeric, 1))
                                ORDER BY i),
           pg_catalog.array_agg(palette[1 + (i - 1) % pg_catalog.cardinality(palette)] ORDER BY i)
      INTO shown_m, shown_n, colours
      FROM pg_catalog.unnest(sizes) WITH ORDINALITY AS u(v, i);
    SELECT pg_catalog.array_agg(segment_internal.report_number(v::numeric) ORDER BY i) INTO shown_m
      FROM pg_catalog.unnest(revenue) WITH ORDINALITY AS u(v, i);

    body := format('<h1>Segment report: %s</h1><p class="sub">Refresh %s, as of %s (finished %s, %s refresh)</p>',
                   segment_internal.html_escape(s.name), r.id,
                   segment_internal.html_escape(pg_catalog.to_char(r.as_of, 'YYYY-MM-DD HH24:MI TZ')),
                   segment_internal.html_escape(coalesce(pg_catalog.to_char(r.finished_at, 'YYYY-MM-DD HH24:MI TZ'), '–')),
                   segment_internal.html_escape(coalesce(r.mode, 'full')));
    body := body || format('<div class="cards"><div class="card" id="card-customers"><b>%s</b><span>customers</span></div>'
                           '<div class="card" id="card-buyers"><b>%s</b><span>with orders</span></div>'
                           '<div class="card" id="card-revenue"><b>%s</b><span>revenue (monetary)</span></div>'
                           '<div class="card" id="card-segments"><b>%s</b><span>segments</span></div></div>',
                           segment_internal.report_number(coalesce(total, 0)), segment_internal.report_number(coalesce(buyers, 0)),
                           segment_internal.report_number(coalesce(rev, 0)), pg_catalog.cardinality(labels));
    body := body || '<section id="sizes"><h2>Segment sizes</h2>'
                 || '<p class="note">Customers in each final segment (the first rule that holds, else the RFM segment).</p>'
                 || segment_internal.report_bars('segment-sizes', 'Customers per segment', labels, sizes, shown_n, colours)
                 || '</section><section id="revenue"><h2>Revenue by segment</h2>'
                 || '<p class="note">Sum of the customers'' monetary value (their kept orders) in each segment.</p>'
                 || segment_internal.report_bars('segment-revenue', 'Revenue per segment', labels, revenue, shown_m, colours)
                 || '</section>';

    -- 2. The RFM grid: R (rows, best on top) by F (columns), buyers only.
    EXECUTE format($q$
        SELECT pg_catalog.jsonb_object_agg(p.r || ',' || p.f,
                   pg_catalog.jsonb_build_object('n', p.n, 'm', p.m))
          FROM (SELECT p.r, p.f, pg_catalog.count(*) AS n, pg_catalog.avg(p.monetary) AS m
                  FROM segment.%I AS p
                 WHERE p.r IS NOT NULL AND p.f IS NOT NULL
                 GROUP BY p.r, p.f) AS p$q$, s.profile)
        INTO cells;
    cells := coalesce(cells, '{}');
    SELECT pg_catalog.max(CASE WHEN grid_colour = 'customers' THEN (e.value->>'n')::double precision
                               ELSE (e.value->>'m')::double precision END)
      INTO top FROM pg_catalog.jsonb_each(cells) AS e;
    grid := format('<svg id="rfm-grid" class="chart grid" role="img" width="%s" height="%s" viewBox="0 0 %s %s" xmlns="http://www.w3.org/2000/svg"><title>RFM grid: recency score by frequency score</title>',
                   60 + 110 * b, 60 + 64 * b, 60 + 110 * b, 60 + 64 * b);
    FOR gy IN REVERSE b .. 1 LOOP
        grid := grid || format('<text class="axis" x="40" y="%s" text-anchor="end">R %s</text>',
                               28 + 64 * (b - gy) + 36, gy);
        FOR gx IN 1 .. b LOOP
            c := cells -> (gy || ',' || gx);
            SELECT grid || format(
                '<g class="%s"><rect class="cell" data-r="%s" data-f="%s" data-customers="%s" data-mean-monetary="%s" x="%s" y="%s" width="106" height="60" rx="3" fill="%s"><title>R %s, F %s: %s customers, mean monetary %s; RFM map: %s</title></rect>'
                '<text class="count" x="%s" y="%s" text-anchor="middle">%s</text>'
                '<text class="value" x="%s" y="%s" text-anchor="middle">%s</text>'
                '<text class="seg" x="%s" y="%s" text-anchor="middle">%s</text></g>',
                CASE WHEN (CASE WHEN grid_colour = 'customers' THEN (c->>'n')::double precision
                                ELSE (c->>'m')::double precision END) / greatest(top, 1e-9) > 0.6
                     THEN 'dark' ELSE 'light' END,
                gy, gx, coalesce((c->>'n')::bigint, 0),
                coalesce(pg_catalog.round((c->>'m')::numeric, 2)::text, ''),
                50 + 110 * (gx - 1), 28 + 64 * (b - gy),
                CASE WHEN c IS NULL THEN '#f7f8fa'
                     ELSE segment_internal.report_shade(CASE WHEN grid_colour = 'customers' THEN (c->>'n')::double precision
                                                    ELSE (c->>'m')::double precision END / greatest(top, 1e-9))
                END,
                gy, gx, segment_internal.report_number(coalesce((c->>'n')::numeric, 0)),
                segment_internal.report_number((c->>'m')::numeric, 2),
                segment_internal.html_escape(coalesce(mp.names, 'none')),
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 20, segment_internal.report_number(coalesce((c->>'n')::numeric, 0)),
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 36,
                CASE WHEN c IS NULL THEN '' ELSE 'mean ' || segment_internal.report_number((c->>'m')::numeric) END,
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 52, segment_internal.report_label(mp.first_name, 18))
              INTO grid
              FROM (SELECT pg_catalog.string_agg(u.segment, ', ' ORDER BY u.p) AS names,
                           (pg_catalog.array_agg(u.segment ORDER BY u.p))[1] AS first_name
                      FROM (SELECT m.segment, pg_catalog.min(m.priority) AS p
                              FROM segment.rfm_segment_map AS m
                             WHERE gy BETWEEN m.r_min AND m.r_max AND gx BETWEEN m.f_min AND m.f_max
                               AND m.m_min <= b
                             GROUP BY m.segment) AS u) AS mp;
        END LOOP;
    END LOOP;
    FOR gx IN 1 .. b LOOP
        grid := grid || format('<text class="axis" x="%s" y="%s" text-anchor="middle">F %s</text>',
                               50 + 110 * (gx - 1) + 53, 28 + 64 * b + 18, gx);
    END LOOP;
    grid := grid || format('<text class="axis" x="%s" y="16" text-anchor="middle">frequency score →  (cells: customers, mean monetary, RFM map segment)</text></svg>',
                           50 + 55 * b);
    body := body || '<section id="rfm"><h2>RFM grid</h2>'
                 || format('<p class="note">Customers with orders by recency score R (rows, %s = most recent) and frequency score F (columns, %s = most orders); colour: %s. The name is the RFM map''s segment of the cell (hover for all of them: the monetary score decides between them).</p>',
                           b, b, CASE grid_colour WHEN 'customers' THEN 'number of customers' ELSE 'mean monetary value' END)
                 || grid || '</section>';

    -- 3. Movement between the last two refreshes: the history rows of the
    -- last one are exactly the customers whose segment changed since the one
    -- before (what segment.transitions() rebuilds from the whole history).
    SELECT pg_catalog.max(x.id) INTO prev FROM segment.refreshes AS x
     WHERE x.segmentation = s.name AND x.id < r.id;
    body := body || '<section id="movement"><h2>Movement since the previous refresh</h2>';
    IF prev IS NULL THEN
        body := body || '<p class="note" id="movement-none">This is the first refresh of the segmentation: movement needs two.</p>';
    ELSE
        SELECT pg_catalog.count(*), pg_catalog.sum(t.customers) FILTER (WHERE t.from_segment IS DISTINCT FROM t.to_segment),
               pg_catalog.string_agg(format('<tr class="move" data-from="%s" data-to="%s"><td>%s</td><td>→</td><td>%s</td><td class="num">%s</td>'
                                            '<td><svg width="160" height="12"><rect class="move-bar" width="%s" height="12" fill="#4e79a7"/></svg></td></tr>',
                                            segment_internal.html_escape(coalesce(t.from_segment, '')),
                                            segment_internal.html_escape(coalesce(t.to_segment, '')),
                                            segment_internal.html_escape(coalesce(t.from_segment, '(new)')),
                                            segment_internal.html_escape(coalesce(t.to_segment, '(gone)')),
                                            segment_internal.report_number(t.customers),
                                            pg_catalog.round(160.0 * t.customers / greatest(t.top, 1), 1)),
                                     '' ORDER BY t.customers DESC, t.from_segment NULLS FIRST, t.to_segment NULLS FIRST)
                   FILTER (WHERE t.rank <= 25)
          INTO nrows, moved, trs
          FROM (SELECT tr.*, pg_catalog.max(tr.customers) OVER () AS top,
                       pg_catalog.row_number() OVER (ORDER BY tr.customers DESC, tr.from_segment NULLS FIRST,
                                                     tr.to_segment NULLS FIRST) AS rank
                  FROM (SELECT h.from_segment, h.to_segment, pg_catalog.count(*) AS customers
                          FROM segment.history AS h
                         WHERE h.segmentation = s.name AND h.refresh_id = r.id
                           AND h.from_segment IS DISTINCT FROM h.to_segment
                         GROUP BY h.from_segment, h.to_segment) AS tr) AS t;
        extra := greatest(nrows - 25, 0);
        body := body || format('<p class="note">From refresh %s to refresh %s: %s customers changed segment (new: came into the profile; gone: left it). The largest moves:</p>',
                               prev, r.id, segment_internal.report_number(coalesce(moved, 0)));
        IF trs IS NULL THEN
            body := body || '<p class="note" id="movement-none">No customer changed segment.</p>';
        ELSE
            body := body || '<table id="movement-table"><thead><tr><th>from</th><th></th><th>to</th><th class="num">customers</th><th></th></tr></thead><tbody>'
                         || trs || '</tbody></table>'
                         || CASE WHEN extra > 0 THEN format('<p class="note">… and %s smaller moves (segment.transitions() lists them all).</p>', extra) ELSE '' END;
        END IF;
    END IF;
    body := body || '</section>';

    -- 4. Cluster profiles, where the segmentation has clusters.
    IF s.clusters IS NOT NULL THEN
        body := body || '<section id="clusters"><h2>Clusters</h2>';
        BEGIN
            trs := '';
            FOR cl IN SELECT d.* FROM segment.describe_clusters(s.name) AS d ORDER BY d.cluster LOOP
                trs := trs || format('<tr class="cluster" data-cluster="%s"><td class="num">%s</td><td>%s</td><td class="num">%s</td>'
                                       '<td><svg width="120" height="12"><rect class="share-bar" width="%s" height="12" fill="%s"/></svg> %s%%</td>'
                                       '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>',
                                       cl.cluster, cl.cluster, segment_internal.html_escape(coalesce(cl.name, '')),
                                       segment_internal.report_number(cl.customers),
                                       pg_catalog.round((120 * coalesce(cl.share, 0))::numeric, 1),
                                       palette[1 + (cl.cluster - 1) % pg_catalog.cardinality(palette)],
                                       segment_internal.report_number((100 * cl.share)::numeric, 1),
                                       segment_internal.report_number(cl.mean_recency_days::numeric),
                                       segment_internal.report_number(cl.mean_frequency::numeric, 1),
                                       segment_internal.report_number(cl.mean_monetary::numeric),
                                       segment_internal.report_number(cl.mean_clv::numeric),
                                       segment_internal.html_escape(coalesce(
                                           (SELECT pg_catalog.string_agg(format('%s %s%%', e.key,
                                                       pg_catalog.round(100 * e.value::numeric)), ', '
                                                       ORDER BY e.value::numeric DESC, e.key)
                                              FROM (SELECT * FROM pg_catalog.jsonb_each(cl.rfm_segments) AS j
                                                     ORDER BY j.value::numeric DESC, j.key LIMIT 3) AS e), '')));
            END LOOP;
            body := body || '<p class="note">k-means clusters of the customers with orders (segment.describe_clusters()): size and mean figures; names are set with segment.name_cluster().</p>'
                         || '<table id="cluster-table"><thead><tr><th class="num">cluster</th><th>name</th><th class="num">customers</th><th>share</th>'
                         || '<th class="num">mean recency (days)</th><th class="num">mean orders</th><th class="num">mean monetary</th><th class="num">mean CLV</th><th>main RFM segments</th></tr></thead><tbody>'
                         || trs || '</tbody></table>';
        EXCEPTION WHEN no_data_found OR object_not_in_prerequisite_state THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            body := body || format('<p class="note" id="clusters-none">No clusters: %s.</p>', segment_internal.html_escape(msg));
        END;
        body := body || '</section>';
    END IF;

    -- 5. The lifetime-value distribution, where the segmentation computes it:
    -- nbins bins from 0 to the 99th percentile, the last one open-ended.
    IF s.clv THEN
        body := body || '<section id="clv"><h2>Lifetime value</h2>';
        EXECUTE format($q$
            SELECT least(0, pg_catalog.min(p.clv)),
                   pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY p.clv)
              FROM segment.%I AS p
             WHERE p.frequency > 0 AND p.clv IS NOT NULL$q$, s.profile)
            INTO lo, hi;
        IF hi IS NULL THEN
            body := body || format('<p class="note" id="clv-none">No lifetime values in this refresh%s.</p>',
                                   CASE WHEN r.clv_note IS NOT NULL THEN ': ' || segment_internal.html_escape(r.clv_note) ELSE '' END);
        ELSE
            IF NOT hi > lo THEN
                hi := lo + 1;
            END IF;
            bw := (hi - lo) / nbins;
            EXECUTE format($q$
                SELECT pg_catalog.jsonb_object_agg(g.bin, g.n)
                  FROM (SELECT least(pg_catalog.width_bucket(p.clv, $1, $2, $3), $3) AS bin,
                               pg_catalog.count(*) AS n
                          FROM segment.%I AS p
                         WHERE p.frequency > 0 AND p.clv IS NOT NULL
                         GROUP BY 1) AS g$q$, s.profile)
                INTO bins USING lo, hi, nbins;
            SELECT pg_catalog.max(e.value::bigint) INTO top FROM pg_catalog.jsonb_each_text(bins) AS e;
            hist := format('<svg id="clv-histogram" class="chart histogram" role="img" width="760" height="230" viewBox="0 0 760 230" xmlns="http://www.w3.org/2000/svg"><title>Customers by %s-month lifetime value</title>',
                           s.clv_months);
            FOR gx IN 1 .. nbins LOOP
                c := bins -> gx::text;
                hist := hist || format('<rect class="bin" data-from="%s" data-to="%s" data-customers="%s" x="%s" y="%s" width="32" height="%s" fill="#59a14f"><title>%s – %s: %s customers</title></rect>',
                                       pg_catalog.round((lo + (gx - 1) * bw)::numeric, 2),
                                       CASE WHEN gx = nbins THEN '' ELSE pg_catalog.round((lo + gx * bw)::numeric, 2)::text END,
                                       coalesce(c::bigint, 0), 40 + 35 * (gx - 1),
                                       pg_catalog.round((190 - 170 * coalesce(c::double precision, 0) / greatest(top, 1))::numeric, 1),
                                       pg_catalog.round((170 * coalesce(c::double precision, 0) / greatest(top, 1))::numeric, 1),
                                       segment_internal.report_number((lo + (gx - 1) * bw)::numeric),
                                       CASE WHEN gx = nbins THEN 'more' ELSE segment_internal.report_number((lo + gx * bw)::numeric) END,
                                       segment_internal.report_number(coalesce(c::numeric, 0)));
                IF gx % 4 = 1 OR gx = nbins THEN
                    hist := hist || format('<text class="axis" x="%s" y="206" text-anchor="middle">%s%s</text>',
                                           40 + 35 * (gx - 1) + 16, segment_internal.report_number((lo + (gx - 1) * bw)::numeric),
                                           CASE WHEN gx = nbins THEN '+' ELSE '' END);
                END IF;
            END LOOP;
            hist := hist || format('<text class="axis" x="40" y="14">%s customers in the largest bin</text><line x1="38" y1="190" x2="740" y2="190" stroke="#8a93a3"/></svg>',
                                   segment_internal.report_number(top::numeric));
            body := body || format('<p class="note">Customers with orders by predicted %s-month lifetime value (BG/NBD and Gamma-Gamma%s), in %s bins up to the 99th percentile; the last bin holds everything above.</p>',
                                   s.clv_months, CASE WHEN r.clv_status = 'partial' THEN ', partial fit' ELSE '' END, nbins)
                         || hist;
        END IF;
        body := body || '</section>';
    END IF;

    page := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            || '<meta name="viewport" content="width=device-width, initial-scale=1">'
            || format('<title>Segment report: %s, as of %s</title>', segment_internal.html_escape(s.name),
                      segment_internal.html_escape(pg_catalog.to_char(r.as_of, 'YYYY-MM-DD')))
            || '<style>' || segment_internal.report_css() || '</style></head><body>'
            || body
            || format('<footer>Generated %s by segment.report() of the PostgreSQL extension segment from the segmentation''s profile, segment.refreshes and segment.history.</footer>',
                      segment_internal.html_escape(pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI TZ')))
            || '</body></html>';
    RETURN page;
END
$$;
COMMENT ON FUNCTION segment.report(text, text) IS
    'One self-contained HTML page (inline CSS and SVG, no script) on a segmentation (NULL: the default one) as of its latest refresh: segment sizes and revenue, the RFM grid coloured by grid_colour (''monetary'' or ''customers''), movement since the previous refresh, clusters and the lifetime-value distribution where configured; runs with the caller''s privileges';
