-- Hardening after an outside attack (issue 9).

-- Lost-response recovery (see ostiary-core's refresh.rs): whether the current token was
-- handed out again, and whether the previous one had been before it rotated.
ALTER TABLE refresh_families ADD COLUMN current_reissued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_families ADD COLUMN previous_reissued INTEGER NOT NULL DEFAULT 0;
