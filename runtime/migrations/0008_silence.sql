-- Conversations whose *Silence detected* event is due: the timer lives in
-- the state (silenceDueMs); this partial index finds the due ones.
CREATE INDEX conversations_silence ON conversations (((state->>'silenceDueMs')::bigint))
    WHERE state ? 'silenceDueMs';
