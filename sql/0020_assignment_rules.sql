-- A holdout experiment's assignment rule: how (salt, channel, unit) becomes an arm. `blake2b` is the
-- original rule (BLAKE2b-64, top 53 bits against the fraction); `sha256` is the rule a warehouse can
-- compute (SHA-256, top 52 bits against round(fraction * 2^52)), the default for new experiments. Every
-- existing holdout experiment keeps the rule its units were assigned with, forever: set explicitly here.
ALTER TABLE experiments ADD COLUMN assignment_rule text;
UPDATE experiments SET assignment_rule = 'blake2b' WHERE kind = 'holdout';
ALTER TABLE experiments
    ADD CONSTRAINT experiments_assignment_rule_check CHECK (
        CASE kind WHEN 'holdout' THEN assignment_rule IN ('blake2b', 'sha256') ELSE assignment_rule IS NULL END
    );
