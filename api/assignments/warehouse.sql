-- The `sha256` assignment rule as one query per warehouse dialect, handed to callers by
-- `GET /v1/experiments/{id}/assignment-rule` (never run by the service). Each reads a table `units(unit)` and
-- returns `unit, channel, arm` for every unit in every channel of one experiment. `{channels}` is filled with
-- one row per channel: its name, the message prefix UTF-8(salt ␟ channel ␟) written in hex (so no salt needs
-- quoting) and the integer threshold; `{experiment_id}` with the experiment's id (a UUID).

-- name: postgresql
-- Counterfact experiment {experiment_id}, assignment rule sha256, PostgreSQL 11 or later.
-- h = the first 13 hex digits of SHA-256(prefix || UTF-8(unit)) as an integer; holdout when h < threshold.
WITH channels (channel, prefix, threshold) AS (
    VALUES
{channels}
)
SELECT u.unit, c.channel,
       CASE
           WHEN ('x' || substr(encode(sha256(c.prefix || convert_to(u.unit::text, 'UTF8')), 'hex'), 1, 13))::bit(52)::bigint
                < c.threshold THEN 'holdout'
           ELSE 'treatment'
       END AS arm
FROM units AS u
CROSS JOIN channels AS c;

-- name: duckdb
-- Counterfact experiment {experiment_id}, assignment rule sha256, DuckDB 1.1 or later.
-- h = the first 13 hex digits of SHA-256(prefix || UTF-8(unit)) as an integer; holdout when h < threshold.
WITH channels (channel, prefix, threshold) AS (
    VALUES
{channels}
)
SELECT u.unit, c.channel,
       CASE
           WHEN CAST('0x' || substr(sha256(c.prefix || encode(CAST(u.unit AS VARCHAR))), 1, 13) AS BIGINT) < c.threshold
               THEN 'holdout'
           ELSE 'treatment'
       END AS arm
FROM units AS u
CROSS JOIN channels AS c;

-- name: bigquery
-- Counterfact experiment {experiment_id}, assignment rule sha256, BigQuery (GoogleSQL). Not run by Counterfact's
-- tests (no BigQuery here): the same arithmetic as the tested PostgreSQL and DuckDB queries. Qualify `units`
-- with its dataset.
-- h = the first 13 hex digits of SHA-256(prefix || UTF-8(unit)) as an integer; holdout when h < threshold.
WITH channels AS (
{channels}
)
SELECT u.unit, c.channel,
       IF(
           CAST(CONCAT('0x', SUBSTR(TO_HEX(SHA256(CONCAT(c.prefix, CAST(CAST(u.unit AS STRING) AS BYTES)))), 1, 13)) AS INT64)
               < c.threshold,
           'holdout',
           'treatment'
       ) AS arm
FROM units AS u
CROSS JOIN channels AS c;

-- name: snowflake
-- Counterfact experiment {experiment_id}, assignment rule sha256, Snowflake. Not run by Counterfact's tests (no
-- Snowflake here): the same arithmetic as the tested PostgreSQL and DuckDB queries.
-- h = the first 13 hex digits of SHA-256(prefix || UTF-8(unit)) as an integer; holdout when h < threshold.
WITH channels (channel, prefix, threshold) AS (
{channels}
)
SELECT u.unit, c.channel,
       IFF(
           TO_NUMBER(UPPER(SUBSTR(SHA2(c.prefix || TO_VARCHAR(u.unit), 256), 1, 13)), 'XXXXXXXXXXXXX') < c.threshold,
           'holdout',
           'treatment'
       ) AS arm
FROM units AS u
CROSS JOIN channels AS c;
