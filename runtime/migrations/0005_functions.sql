-- Accepting a message and committing a turn, each one round trip (and one
-- transaction): the checks and writes run next to the data.

-- An inbound message into the inbox: its id; 0 for a duplicate message id;
-- -1 when the conversation's backlog is full, -2 when the tenant's is.
CREATE FUNCTION sandbot_enqueue(
    p_tenant TEXT, p_bot TEXT, p_conversation TEXT, p_dedupe TEXT,
    p_accepted BIGINT, p_job JSONB, p_conversation_limit BIGINT, p_tenant_limit BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    new_id BIGINT;
BEGIN
    -- One enqueue per conversation at a time: ids follow commit order.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_bot || chr(31) || p_conversation, 0));
    IF (SELECT count(*) FROM inbox WHERE bot = p_bot AND conversation = p_conversation) >= p_conversation_limit THEN
        RETURN -1;
    END IF;
    IF (SELECT count(*) FROM inbox WHERE tenant = p_tenant) >= p_tenant_limit THEN
        RETURN -2;
    END IF;
    IF p_dedupe IS NOT NULL THEN
        INSERT INTO seen (key, at_ms) VALUES (p_dedupe, p_accepted) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
    END IF;
    INSERT INTO inbox (tenant, bot, conversation, accepted_ms, job)
    VALUES (p_tenant, p_bot, p_conversation, p_accepted, p_job)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

-- A turn's commit: 0 when applied; 1 when this node's lease is gone (nothing
-- applied); 2 when its inbox entry was already done (nothing applied).
CREATE FUNCTION sandbot_commit(
    p_bot TEXT, p_conversation TEXT, p_fenced BOOLEAN, p_node TEXT, p_epoch BIGINT,
    p_entry BIGINT, p_now BIGINT, p_state JSONB, p_updated BIGINT,
    p_seqs BIGINT[], p_ats BIGINT[], p_events JSONB[],
    p_postback_ids TEXT[], p_postback_targets JSONB[], p_deliveries JSONB[]
) RETURNS INTEGER LANGUAGE plpgsql AS $$
BEGIN
    IF p_fenced THEN
        PERFORM 1 FROM leases
        WHERE bot = p_bot AND conversation = p_conversation AND node = p_node
          AND epoch = p_epoch AND until_ms >= p_now
        FOR UPDATE;
        IF NOT FOUND THEN
            RETURN 1;
        END IF;
        IF p_entry IS NOT NULL THEN
            DELETE FROM inbox WHERE id = p_entry;
            IF NOT FOUND THEN
                RETURN 2;
            END IF;
        END IF;
    END IF;
    INSERT INTO conversations (bot, conversation, state, updated_ms)
    VALUES (p_bot, p_conversation, p_state, p_updated)
    ON CONFLICT (bot, conversation) DO UPDATE SET state = EXCLUDED.state, updated_ms = EXCLUDED.updated_ms;
    INSERT INTO transcripts (bot, conversation, seq, at_ms, event)
    SELECT p_bot, p_conversation, s, a, e FROM UNNEST(p_seqs, p_ats, p_events) AS u(s, a, e)
    ON CONFLICT (bot, conversation, seq) DO UPDATE SET at_ms = EXCLUDED.at_ms, event = EXCLUDED.event;
    INSERT INTO postbacks (bot, id, target)
    SELECT p_bot, i, t FROM UNNEST(p_postback_ids, p_postback_targets) AS u(i, t)
    ON CONFLICT (bot, id) DO NOTHING;
    INSERT INTO outbox (bot, conversation, delivery)
    SELECT p_bot, p_conversation, d FROM UNNEST(p_deliveries) WITH ORDINALITY AS u(d, n) ORDER BY n;
    RETURN 0;
END $$;
