-- The audit log is read newest first by user (the account page) or by session, and pruned
-- oldest first by id: indexes by user and by session in id order, and none by time (one
-- B-tree fewer for every event written). Old instances keep working beside these indexes.
-- On a large log, building them here holds back writes to audit_events (every rotation
-- writes one) until they are built: create them first with CREATE INDEX CONCURRENTLY under
-- these names (DEPLOYMENT.md), and this migration only drops the old ones.
CREATE INDEX IF NOT EXISTS audit_events_user_id ON audit_events (user_id, id);
CREATE INDEX IF NOT EXISTS audit_events_sid_id ON audit_events (sid, id);
DROP INDEX audit_events_user;
DROP INDEX audit_events_sid;
DROP INDEX audit_events_at;
