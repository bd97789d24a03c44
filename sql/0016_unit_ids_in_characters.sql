-- A unit id is 1 to 256 characters, not bytes: the OpenAPI document can state a length only in characters
-- (maxLength), and a schema-valid id of 256 multibyte characters was refused. Every id stored so far has at
-- most 256 bytes, so at most 256 characters: the new checks hold for every existing row.
ALTER TABLE assignments DROP CONSTRAINT assignments_unit_check,
    ADD CONSTRAINT assignments_unit_check CHECK (char_length(unit) BETWEEN 1 AND 256);
ALTER TABLE holdout_outcomes DROP CONSTRAINT holdout_outcomes_unit_check,
    ADD CONSTRAINT holdout_outcomes_unit_check CHECK (char_length(unit) BETWEEN 1 AND 256);
