-- The audit log is read newest first by user (the account page) or by session, and pruned
-- oldest first by id. SQLite ends every index entry with the rowid (the event's id), so an
-- index on user_id alone (and the one on sid) gives a user's events in id order without a
-- sort; none by time is needed (one B-tree fewer for every event written).
DROP INDEX audit_events_user;
DROP INDEX audit_events_at;
CREATE INDEX audit_events_user ON audit_events (user_id);
