-- A turn's commit claims the delivery it queued (and a settlement, in the
-- node's statement, the next delivery of each conversation it finished):
-- in the steady state a delivery costs no claim of its own (the claim query
-- reads every conversation's head; it now runs only now and then, for what
-- is left: retries come due, claims of a node that died, re-queued dead
-- letters).
-- Only free deliveries are claimed (due, and nobody's claim running): what
-- a node claimed is handed to its worker once, never offered again.

-- The 18-parameter sandbot_commit_next (0011) stays: nodes of the version
-- before keep committing while the nodes are upgraded one at a time (their
-- claim query skips what the new nodes claim on the way).

-- sandbot_commit_next as before (0011), and, when the commit applied and
-- queued deliveries, the conversation's oldest delivery claimed for p_node
-- until p_claim_until if it is due and nobody's (a row another transaction
-- holds is skipped, never waited for): its columns in o_delivery_id…, NULL
-- when nothing was claimed (an older delivery still waits or is in flight).
CREATE FUNCTION sandbot_commit_next(
    p_bot TEXT, p_conversation TEXT, p_fenced BOOLEAN, p_node TEXT, p_epoch BIGINT,
    p_entry BIGINT, p_now BIGINT, p_state JSONB, p_updated BIGINT,
    p_seqs BIGINT[], p_ats BIGINT[], p_events JSONB[],
    p_postback_ids TEXT[], p_postback_targets JSONB[], p_deliveries JSONB[],
    p_state_bytes BIGINT, p_transcript_bytes BIGINT, p_until BIGINT, p_claim_until BIGINT
) RETURNS TABLE (
    o_outcome INTEGER, o_stepped BOOLEAN, o_id BIGINT, o_tenant TEXT, o_accepted BIGINT, o_job JSONB,
    o_delivery_id BIGINT, o_delivery JSONB, o_attempts INTEGER, o_not_before BIGINT
)
LANGUAGE plpgsql AS $$
DECLARE
    outcome INTEGER;
    d_id BIGINT;
    d_delivery JSONB;
    d_attempts INTEGER;
    d_not_before BIGINT;
BEGIN
    outcome := sandbot_commit(p_bot, p_conversation, p_fenced, p_node, p_epoch, p_entry, p_now,
        p_state, p_updated, p_seqs, p_ats, p_events, p_postback_ids, p_postback_targets,
        p_deliveries, p_state_bytes, p_transcript_bytes);
    IF outcome = 0 AND cardinality(p_deliveries) > 0 THEN
        -- The head is found first, then locked: skipping a locked head must
        -- not claim the delivery after it. Only a free head is locked: one
        -- in flight elsewhere stays unlocked for its node's settlement,
        -- which would otherwise wait for this commit's WAL flush.
        UPDATE outbox o SET claimed_by = p_node, claimed_until = p_claim_until
        FROM (SELECT x.id FROM outbox x
              WHERE x.id = (SELECT h.id FROM outbox h
                            WHERE h.bot = p_bot AND h.conversation = p_conversation
                            ORDER BY h.id LIMIT 1)
                AND x.not_before_ms <= p_now AND x.claimed_until < p_now
              FOR UPDATE SKIP LOCKED) f
        WHERE o.id = f.id AND o.not_before_ms <= p_now AND o.claimed_until < p_now
        RETURNING o.id, o.delivery, o.attempts, o.not_before_ms INTO d_id, d_delivery, d_attempts, d_not_before;
    END IF;
    IF outcome <> 0 OR NOT p_fenced OR p_entry IS NULL THEN
        RETURN QUERY SELECT outcome, FALSE, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::JSONB,
            d_id, d_delivery, d_attempts, d_not_before;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_bot || chr(31) || p_conversation, 0));
    RETURN QUERY
        SELECT 0, TRUE, i.id, i.tenant, i.accepted_ms, i.job,
            d_id, d_delivery, d_attempts, d_not_before
        FROM inbox i
        WHERE i.bot = p_bot AND i.conversation = p_conversation
        ORDER BY i.id LIMIT 1;
    IF FOUND THEN
        UPDATE leases l SET until_ms = p_until
        WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = p_epoch;
    ELSE
        UPDATE leases l SET until_ms = 0
        WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = p_epoch;
        RETURN QUERY SELECT 0, TRUE, NULL::BIGINT, NULL::TEXT, NULL::BIGINT, NULL::JSONB,
            d_id, d_delivery, d_attempts, d_not_before;
    END IF;
END $$;
