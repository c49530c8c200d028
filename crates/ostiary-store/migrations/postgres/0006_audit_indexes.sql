-- The audit log is read newest first by user (the account page) or by session, and pruned
-- oldest first by id: indexes by user and by session in id order, and none by time (one
-- B-tree fewer for every event written). Old instances keep working beside these indexes.
DROP INDEX audit_events_user;
DROP INDEX audit_events_sid;
DROP INDEX audit_events_at;
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_sid ON audit_events (sid, id);
