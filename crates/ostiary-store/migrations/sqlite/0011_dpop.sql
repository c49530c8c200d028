-- DPoP (RFC 9449): the proofs seen within their window, so that none is accepted twice
-- (§11.1; keyed by the key's thumbprint and a hash of the proof's jti, pruned after expiry),
-- the key a public client's refresh family is bound to (§5), and the key an authorization
-- request named in dpop_jkt (§10), which the code exchange must prove.
CREATE TABLE dpop_proofs (
    jkt TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (jkt, jti_hash)
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
