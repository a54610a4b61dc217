const before = session.get("user.firstName");
session.set("profile.visits", (session.get("profile.visits") || 0) + 1);
session.remove("tmp");
say(`Hi ${before}`);
say({ type: "media", config: { media: { type: "image", url: "https://example.com/a.png" } } });
goto("menu");
return { before, visits: session.get("profile.visits"), internal: session.get("internal.botId") };
