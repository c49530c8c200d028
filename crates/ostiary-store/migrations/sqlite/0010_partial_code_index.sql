-- Access tokens minted by a refresh have no code: keep them out of the code's index, so that a
-- rotation writes one B-tree fewer (issue 10). `code_hash = ?` implies `IS NOT NULL`, so the
-- queries by code still use it.
DROP INDEX issued_access_tokens_code;
CREATE INDEX issued_access_tokens_code ON issued_access_tokens (code_hash) WHERE code_hash IS NOT NULL;
