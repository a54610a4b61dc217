-- A turn's commit and the worker's next step in one round trip: after the
-- commit (sandbot_commit) the conversation's next waiting entry is returned
-- with the lease renewed until p_until, or, none waiting, the lease is given
-- up in the same transaction (as sandbot_take_next does, under the same
-- lock, so a message accepted meanwhile on any node is taken by that node).
-- The parameters are sandbot_commit's, then p_until. One row: the commit's
-- outcome; whether the next step was taken (only for a fenced commit of an
-- inbox entry that applied); the next entry's columns (NULL when none waits).
CREATE FUNCTION sandbot_commit_next(
    p_bot TEXT, p_conversation TEXT, p_fenced BOOLEAN, p_node TEXT, p_epoch BIGINT,
    p_entry BIGINT, p_now BIGINT, p_state JSONB, p_updated BIGINT,
    p_seqs BIGINT[], p_ats BIGINT[], p_events JSONB[],
    p_postback_ids TEXT[], p_postback_targets JSONB[], p_deliveries JSONB[],
    p_state_bytes BIGINT, p_transcript_bytes BIGINT, p_until BIGINT
) RETURNS TABLE (
    o_outcome INTEGER, o_stepped BOOLEAN, o_id BIGINT, o_tenant TEXT, o_accepted BIGINT, o_job JSONB
)
LANGUAGE plpgsql AS $$
DECLARE
    outcome INTEGER;
BEGIN
    outcome := sandbot_commit(p_bot, p_conversation, p_fenced, p_node, p_epoch, p_entry, p_now,
        p_state, p_updated, p_seqs, p_ats, p_events, p_postback_ids, p_postback_targets,
        p_deliveries, p_state_bytes, p_transcript_bytes);
    IF outcome <> 0 OR NOT p_fenced OR p_entry IS NULL THEN
        RETURN QUERY SELECT outcome, FALSE, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::JSONB;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_bot || chr(31) || p_conversation, 0));
    RETURN QUERY
        SELECT 0, TRUE, i.id, i.tenant, i.accepted_ms, i.job
        FROM inbox i
        WHERE i.bot = p_bot AND i.conversation = p_conversation
        ORDER BY i.id LIMIT 1;
    IF FOUND THEN
        UPDATE leases l SET until_ms = p_until
        WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = p_epoch;
    ELSE
        UPDATE leases l SET until_ms = 0
        WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = p_epoch;
        RETURN QUERY SELECT 0, TRUE, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::JSONB;
    END IF;
END $$;
