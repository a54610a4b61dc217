-- A conversation worker's step before each turn, in one round trip: take or
-- renew the lease, then the oldest waiting entry, or (none waiting) the
-- lease given up. No row while another node holds the lease; else one row:
-- the epoch, the entry (its columns NULL when none is waiting) and the
-- conversation's state if it was updated since p_cutoff (what the turn reads
-- next: one round trip fewer).
CREATE FUNCTION sandbot_take_next(
    p_bot TEXT, p_conversation TEXT, p_node TEXT, p_until BIGINT, p_now BIGINT, p_cutoff BIGINT
) RETURNS TABLE (
    o_epoch BIGINT, o_id BIGINT, o_tenant TEXT, o_accepted BIGINT, o_job JSONB, o_state JSONB
)
LANGUAGE plpgsql AS $$
DECLARE
    e BIGINT;
BEGIN
    INSERT INTO leases AS l (bot, conversation, node, until_ms, epoch)
    VALUES (p_bot, p_conversation, p_node, p_until, 1)
    ON CONFLICT (bot, conversation) DO UPDATE SET
        node = EXCLUDED.node,
        until_ms = EXCLUDED.until_ms,
        epoch = CASE WHEN l.node = EXCLUDED.node AND l.until_ms >= p_now
                     THEN l.epoch ELSE l.epoch + 1 END
    WHERE l.until_ms < p_now OR l.node = EXCLUDED.node
    RETURNING l.epoch INTO e;
    IF e IS NULL THEN
        RETURN;
    END IF;
    -- Accepting holds this lock until it commits: a message accepted after
    -- the look below finds the lease given up, and its node takes it.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_bot || chr(31) || p_conversation, 0));
    RETURN QUERY
        SELECT e, i.id, i.tenant, i.accepted_ms, i.job,
               (SELECT c.state FROM conversations c
                WHERE c.bot = p_bot AND c.conversation = p_conversation AND c.updated_ms >= p_cutoff)
        FROM inbox i
        WHERE i.bot = p_bot AND i.conversation = p_conversation
        ORDER BY i.id LIMIT 1;
    IF NOT FOUND THEN
        UPDATE leases l SET until_ms = 0
        WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = e;
        RETURN QUERY SELECT e, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::JSONB, NULL::JSONB;
    END IF;
END $$;
