-- DPoP (RFC 9449): the proofs seen within their window, so that none is accepted twice
-- (§11.1; keyed by the key's thumbprint and a hash of the proof's jti, pruned after expiry),
-- and the key a public client's refresh family is bound to (§5).
CREATE TABLE dpop_proofs (
    jkt TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti_hash)
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
