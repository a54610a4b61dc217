-- A turn's commit in one function body, its first delivery inserted already
-- claimed when the conversation has none older.
--
-- Before, sandbot_commit_next called sandbot_commit (a nested PL/pgSQL call
-- with 17 arguments) and then claimed the conversation's head with an
-- UPDATE … FOR UPDATE SKIP LOCKED, writing the new outbox row a second time.
-- Now, when no older delivery of the conversation is visible, the first
-- delivery is inserted with this node's claim (it is the head, as the head
-- claim below would find it from the same view); with an older one
-- visible, the head is claimed as before. Measured with pgbench on one
-- connection (a message's accept, commit and settlement): the commit's
-- server time 0.24 → 0.20 ms.
--
-- sandbot_commit stays for the 18-parameter sandbot_commit_next (0011),
-- which nodes of older versions call while the nodes are upgraded one at a
-- time.

DROP FUNCTION sandbot_commit_next(TEXT, TEXT, BOOLEAN, TEXT, BIGINT, BIGINT, BIGINT, JSONB,
    BIGINT, BIGINT[], BIGINT[], JSONB[], TEXT[], JSONB[], JSONB[], BIGINT, BIGINT, BIGINT, BIGINT);

-- o_outcome: 0 applied; 1 this node's lease is gone; 2 the inbox entry was
-- already done (nothing applied for 1 and 2). o_stepped: a fenced commit of
-- an inbox entry took the worker's next step: o_id… the conversation's next
-- waiting entry under the renewed lease, or NULL with the lease given up.
-- o_delivery_id…: the delivery claimed for p_node until p_claim_until, NULL
-- when none (an older one still waits or is in flight).
CREATE FUNCTION sandbot_commit_next(
    p_bot TEXT, p_conversation TEXT, p_fenced BOOLEAN, p_node TEXT, p_epoch BIGINT,
    p_entry BIGINT, p_now BIGINT, p_state JSONB, p_updated BIGINT,
    p_seqs BIGINT[], p_ats BIGINT[], p_events JSONB[],
    p_postback_ids TEXT[], p_postback_targets JSONB[], p_deliveries JSONB[],
    p_state_bytes BIGINT, p_transcript_bytes BIGINT, p_until BIGINT, p_claim_until BIGINT,
    OUT o_outcome INTEGER, OUT o_stepped BOOLEAN, OUT o_id BIGINT, OUT o_tenant TEXT,
    OUT o_accepted BIGINT, OUT o_job JSONB,
    OUT o_delivery_id BIGINT, OUT o_delivery JSONB, OUT o_attempts INTEGER, OUT o_not_before BIGINT
)
LANGUAGE plpgsql AS $$
BEGIN
    o_stepped := FALSE;
    IF p_fenced THEN
        PERFORM 1 FROM leases
        WHERE bot = p_bot AND conversation = p_conversation AND node = p_node
          AND epoch = p_epoch AND until_ms >= p_now
        FOR UPDATE;
        IF NOT FOUND THEN
            o_outcome := 1;
            RETURN;
        END IF;
        IF p_entry IS NOT NULL THEN
            DELETE FROM inbox WHERE id = p_entry;
            IF NOT FOUND THEN
                o_outcome := 2;
                RETURN;
            END IF;
        END IF;
    END IF;
    o_outcome := 0;
    INSERT INTO conversations AS c (bot, conversation, state, updated_ms, state_bytes, transcript_bytes)
    VALUES (p_bot, p_conversation, p_state, p_updated, p_state_bytes, p_transcript_bytes)
    ON CONFLICT (bot, conversation) DO UPDATE SET
        state = EXCLUDED.state,
        updated_ms = EXCLUDED.updated_ms,
        state_bytes = EXCLUDED.state_bytes,
        transcript_bytes = c.transcript_bytes + EXCLUDED.transcript_bytes;
    INSERT INTO transcripts (bot, conversation, seq, at_ms, event)
    SELECT p_bot, p_conversation, s, a, e FROM UNNEST(p_seqs, p_ats, p_events) AS u(s, a, e)
    ON CONFLICT (bot, conversation, seq) DO UPDATE SET at_ms = EXCLUDED.at_ms, event = EXCLUDED.event;
    IF cardinality(p_postback_ids) > 0 THEN
        INSERT INTO postbacks (bot, id, target)
        SELECT p_bot, i, t FROM UNNEST(p_postback_ids, p_postback_targets) AS u(i, t)
        ON CONFLICT (bot, id) DO NOTHING;
    END IF;
    IF cardinality(p_deliveries) > 0 THEN
        IF NOT EXISTS (SELECT 1 FROM outbox h WHERE h.bot = p_bot AND h.conversation = p_conversation) THEN
            -- The first is the conversation's head: inserted claimed.
            WITH queued AS (
                INSERT INTO outbox (bot, conversation, delivery, claimed_by, claimed_until)
                SELECT p_bot, p_conversation, d,
                       CASE WHEN n = 1 THEN p_node END,
                       CASE WHEN n = 1 THEN p_claim_until ELSE 0 END
                FROM UNNEST(p_deliveries) WITH ORDINALITY AS u(d, n) ORDER BY n
                RETURNING id, delivery, attempts, not_before_ms, claimed_by)
            SELECT q.id, q.delivery, q.attempts, q.not_before_ms
            INTO o_delivery_id, o_delivery, o_attempts, o_not_before
            FROM queued q WHERE q.claimed_by IS NOT NULL;
        ELSE
            INSERT INTO outbox (bot, conversation, delivery)
            SELECT p_bot, p_conversation, d FROM UNNEST(p_deliveries) WITH ORDINALITY AS u(d, n) ORDER BY n;
            -- The head is found first, then locked: skipping a locked head
            -- must not claim the delivery after it. Only a free head is
            -- locked: one in flight elsewhere stays unlocked for its node's
            -- settlement, which would otherwise wait for this commit's WAL
            -- flush.
            UPDATE outbox o SET claimed_by = p_node, claimed_until = p_claim_until
            FROM (SELECT x.id FROM outbox x
                  WHERE x.id = (SELECT h.id FROM outbox h
                                WHERE h.bot = p_bot AND h.conversation = p_conversation
                                ORDER BY h.id LIMIT 1)
                    AND x.not_before_ms <= p_now AND x.claimed_until < p_now
                  FOR UPDATE SKIP LOCKED) f
            WHERE o.id = f.id AND o.not_before_ms <= p_now AND o.claimed_until < p_now
            RETURNING o.id, o.delivery, o.attempts, o.not_before_ms
            INTO o_delivery_id, o_delivery, o_attempts, o_not_before;
        END IF;
    END IF;
    IF NOT p_fenced OR p_entry IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_bot || chr(31) || p_conversation, 0));
    o_stepped := TRUE;
    SELECT i.id, i.tenant, i.accepted_ms, i.job INTO o_id, o_tenant, o_accepted, o_job
    FROM inbox i WHERE i.bot = p_bot AND i.conversation = p_conversation
    ORDER BY i.id LIMIT 1;
    -- Renewed for the next entry, or given up when none waits.
    UPDATE leases l SET until_ms = CASE WHEN o_id IS NULL THEN 0 ELSE p_until END
    WHERE l.bot = p_bot AND l.conversation = p_conversation AND l.node = p_node AND l.epoch = p_epoch;
END $$;
