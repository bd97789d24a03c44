-- name: transaction_timestamp
SELECT now();

-- name: insert_assignments
-- $2: units, $3: holdout masks (bit k set = holdout in the channel at position k), $4: channel count.
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, t.unit, c.position::smallint, ((t.mask >> c.position) & 1)::smallint, now()
FROM unnest($2::text[], $3::bigint[]) AS t (unit, mask)
CROSS JOIN generate_series(0, $4::int - 1) AS c (position)
ON CONFLICT DO NOTHING;

-- name: select_units
SELECT unit, array_agg(arm ORDER BY position) AS arms, array_agg(position ORDER BY position) AS positions,
       min(assigned_at) AS assigned_at
FROM assignments
WHERE experiment_id = $1 AND unit = ANY($2::text[])
GROUP BY unit;

-- name: create_staging
CREATE TEMPORARY TABLE assignment_staging (unit text NOT NULL, mask bigint NOT NULL) ON COMMIT DROP;

-- name: truncate_staging
TRUNCATE assignment_staging;

-- name: insert_from_staging
INSERT INTO assignments (experiment_id, unit, position, arm, assigned_at)
SELECT $1, s.unit, c.position::smallint, ((s.mask >> c.position) & 1)::smallint, now()
FROM assignment_staging AS s
CROSS JOIN generate_series(0, $2::int - 1) AS c (position)
ON CONFLICT DO NOTHING;

-- name: count_by_channel_and_arm
SELECT position, arm, count(*) AS units
FROM assignments
WHERE experiment_id = $1
GROUP BY position, arm;

-- name: list_page
-- Units in order, `limit` per page, after the cursor unit (keyset pagination on the primary key).
SELECT unit, array_agg(arm ORDER BY position) AS arms, array_agg(position ORDER BY position) AS positions,
       min(assigned_at) AS assigned_at
FROM assignments
WHERE experiment_id = $1 AND ($2::text IS NULL OR unit > $2)
GROUP BY unit
ORDER BY unit
LIMIT $3;

-- name: list_all
SELECT unit, array_agg(arm ORDER BY position) AS arms, array_agg(position ORDER BY position) AS positions,
       min(assigned_at) AS assigned_at
FROM assignments
WHERE experiment_id = $1
GROUP BY unit
ORDER BY unit;

-- name: select_unit_with_design
-- One round trip for a single-unit read: the experiment (if in workspace $3, or any when NULL), its channels and
-- the unit's stored arms.
SELECT e.kind, e.status, e.salt, e.assignment_rule,
       (SELECT array_agg(c.name ORDER BY c.position) FROM experiment_channels AS c WHERE c.experiment_id = e.id)
           AS channel_names,
       (SELECT array_agg(c.holdout_fraction ORDER BY c.position) FROM experiment_channels AS c
        WHERE c.experiment_id = e.id) AS holdout_fractions,
       a.positions, a.arms, a.assigned_at
FROM experiments AS e
LEFT JOIN LATERAL (
    SELECT array_agg(s.position ORDER BY s.position) AS positions, array_agg(s.arm ORDER BY s.position) AS arms,
           min(s.assigned_at) AS assigned_at
    FROM assignments AS s
    WHERE s.experiment_id = e.id AND s.unit = $2
) AS a ON true
WHERE e.id = $1 AND ($3::text IS NULL OR e.workspace = $3);

-- name: statistics_outdated
-- Whether the $1 rows a bulk load just wrote are a tenth of the rows the statistics last counted or more
-- (autovacuum's default threshold), or the table was never analysed.
SELECT reltuples < 0 OR $1 >= 0.1 * reltuples FROM pg_class WHERE oid = 'assignments'::regclass;

-- name: vacuum_assignments
-- Outside a transaction: statistics, hint bits and visibility of the rows a bulk load wrote.
VACUUM (ANALYZE, SKIP_LOCKED, INDEX_CLEANUP OFF) assignments;
