-- One message's statements as a node sends them (accept taking the idle
-- conversation's lease, the turn's commit with its three transcript rows and
-- one delivery, the delivery's settlement), for pgbench, against a database
-- a node has migrated (start `sandbot serve` on it once). Used for
-- docs/BENCHMARKS.md ("a commit that writes its delivery once"):
--
--   psql "$DB" -c "delete from outbox" -c "delete from leases" -c "delete from inbox"
--   PGOPTIONS="-c synchronous_commit=off" pgbench -n -M prepared -c 1 -T 5 \
--     -f runtime/benches/pg-message.sql "$DB"
--
-- and the server time per call from pg_stat_statements.
\set c random(1, 24)
\set s random(1, 1000000000000)
SELECT o_result AS r, o_epoch AS e, o_id AS id FROM sandbot_enqueue_take('t', 'load', 'c' || :c, NULL, (extract(epoch from clock_timestamp())*1000)::bigint, '{"channel":"webhook","bot":"load","conversation":"c1","message":{"textMessage":{"text":"m9"}},"receivedMs":1796599454424,"channelId":"load"}'::jsonb, 1000, 100000, 'n1', (extract(epoch from clock_timestamp())*1000)::bigint + 30000, (extract(epoch from clock_timestamp())*1000)::bigint, 0) \gset
SELECT o_outcome AS oc, coalesce(o_delivery_id, 0) AS did FROM sandbot_commit_next('load', 'c' || :c, true, 'n1', :e, :id, (extract(epoch from clock_timestamp())*1000)::bigint, '{"paused": false, "session": {"last": {"text": "m9"}, "count": 5, "internal": {"nlp": {"intent": {"name": null, "score": 0}, "intents": [], "entities": [], "expression": "m9"}, "botId": "load", "locale": "en", "channel": "webHook", "offload": null, "version": "LIVE", "isPaused": false, "sessionId": "c1", "messageType": "text", "messageContent": "m9", "preferredLanguage": "en", "currentDialogstate": {"id": "answer", "name": "answer", "type": "action"}, "previousDialogstate": {"id": "answer", "name": "answer", "type": "action"}}}, "waiting": null, "createdMs": 1796599454424, "updatedMs": 1796599454566, "transcriptLen": 15, "messageCounter": 5}'::jsonb, (extract(epoch from clock_timestamp())*1000)::bigint, ARRAY[:s::bigint, :s::bigint + 1, :s::bigint + 2], ARRAY[1796599454424, 1796599454424, 1796599454424]::bigint[], ARRAY['{"user": "m9"}', '{"block": "answer"}', '{"bot": {"type": "text", "config": {"textMessages": [{"text": "You said m9"}]}}}']::jsonb[], '{}'::text[], '{}'::jsonb[], ARRAY['{"id": 0, "bot": "load", "url": "http://127.0.0.1:9/x", "auth": null, "body": {"nlp": {"intent": {"name": null, "score": 0}}, "message": {"text": "You said m3"}, "senderId": "c1", "recipient": {"id": "c1"}, "verifyToken": "v", "messageCounter": 2}, "headers": [], "attempts": 0, "notBeforeMs": 0, "conversation": "c1"}']::jsonb[], 585, 200, (extract(epoch from clock_timestamp())*1000)::bigint + 30000, (extract(epoch from clock_timestamp())*1000)::bigint + 30000) \gset
DELETE FROM outbox WHERE id = :did AND claimed_by = 'n1';
