-- Inbound message ids are kept for duplicate detection only for a while
-- (`messageIdDays`): the janitor deletes the older ones by first-seen time.
CREATE INDEX seen_at ON seen (at_ms);
