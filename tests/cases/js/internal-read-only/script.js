try { session.set("internal.botId", "x"); } catch (e) { return e.message; }
