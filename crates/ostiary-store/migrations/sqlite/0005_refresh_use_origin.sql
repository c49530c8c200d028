-- Where the current refresh token of a family was issued to (IP and user agent of the request
-- that got it): the other half of the evidence when an older token comes back.
ALTER TABLE refresh_families ADD COLUMN last_use_ip TEXT;
ALTER TABLE refresh_families ADD COLUMN last_use_user_agent TEXT;
