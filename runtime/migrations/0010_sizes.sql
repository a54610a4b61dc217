-- What each conversation holds (the JSON of its state and of its transcript
-- entries, as the embedded store counts them), for the tenants' storage
-- quotas: kept on the conversation's row by the commit that changes it, so
-- no shared counter row serializes the commits of a deployment.
ALTER TABLE conversations
    ADD COLUMN state_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN transcript_bytes BIGINT NOT NULL DEFAULT 0;

-- Rows from before: counted once (jsonb's text differs from the JSON the
-- nodes sent by its spacing; close enough for a quota).
UPDATE conversations SET state_bytes = octet_length(state::text);
UPDATE conversations c SET transcript_bytes = t.n
FROM (SELECT bot, conversation, sum(octet_length(event::text) + 30) AS n
      FROM transcripts GROUP BY bot, conversation) t
WHERE c.bot = t.bot AND c.conversation = t.conversation;

DROP FUNCTION sandbot_commit(TEXT, TEXT, BOOLEAN, TEXT, BIGINT, BIGINT, BIGINT, JSONB, BIGINT,
    BIGINT[], BIGINT[], JSONB[], TEXT[], JSONB[], JSONB[]);

-- A turn's commit: 0 when applied; 1 when this node's lease is gone (nothing
-- applied); 2 when its inbox entry was already done (nothing applied).
-- p_state_bytes: the state's JSON length; p_transcript_bytes: the added
-- transcript entries' JSON lengths together.
CREATE FUNCTION sandbot_commit(
    p_bot TEXT, p_conversation TEXT, p_fenced BOOLEAN, p_node TEXT, p_epoch BIGINT,
    p_entry BIGINT, p_now BIGINT, p_state JSONB, p_updated BIGINT,
    p_seqs BIGINT[], p_ats BIGINT[], p_events JSONB[],
    p_postback_ids TEXT[], p_postback_targets JSONB[], p_deliveries JSONB[],
    p_state_bytes BIGINT, p_transcript_bytes BIGINT
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
    INSERT INTO postbacks (bot, id, target)
    SELECT p_bot, i, t FROM UNNEST(p_postback_ids, p_postback_targets) AS u(i, t)
    ON CONFLICT (bot, id) DO NOTHING;
    INSERT INTO outbox (bot, conversation, delivery)
    SELECT p_bot, p_conversation, d FROM UNNEST(p_deliveries) WITH ORDINALITY AS u(d, n) ORDER BY n;
    RETURN 0;
END $$;
