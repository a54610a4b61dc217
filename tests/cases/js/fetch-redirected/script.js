const moved = await fetch(`${args.base}/redirect?to=/json`);
const direct = await fetch(`${args.base}/json`);
return { redirected: moved.redirected, url: moved.url.endsWith("/json"), status: moved.status, direct: direct.redirected };
