const u = new URL("/api/v1/users?page=2&q=a+b#top", "https://Example.COM:443/base/");
u.searchParams.append("name", "Zoë & co");
u.searchParams.set("page", "3");
const relative = new URL("../x?y=1", "http://h.example/a/b/c");
let invalid;
try { new URL("not a url"); } catch (e) { invalid = e.constructor.name; }
const p = new URLSearchParams({ a: "1", b: "two words" });
p.append("a", "2");
const fromPairs = new URLSearchParams([["k", "v"], ["k", "w"]]);
const set = new URL("http://user:pw@h.example:8080/p");
set.pathname = "/new path";
set.port = "";
set.hash = "frag";
set.search = "?x=1";
return {
  href: u.href,
  parts: [u.protocol, u.host, u.hostname, u.port, u.pathname, u.search, u.hash, u.origin],
  q: u.searchParams.get("q"),
  relative: relative.href,
  invalid,
  canParse: [URL.canParse("https://a.example"), URL.canParse("nope"), URL.canParse("x", "https://a.example/")],
  params: p.toString(),
  all: p.getAll("a"),
  pairs: [...fromPairs].map(([k, v]) => k + "=" + v),
  has: [p.has("b"), p.has("c")],
  set: set.href,
  user: [set.username, set.password],
  json: JSON.stringify({ u: new URL("https://a.example/x") }),
};
