const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
const enc = new TextEncoder();
const uuid = crypto.randomUUID();
const bytes = crypto.getRandomValues(new Uint8Array(32));
let quota;
try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { quota = e.name; }
const key = await crypto.subtle.importKey("raw", enc.encode("Jefe"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
const mac = await crypto.subtle.sign("HMAC", key, enc.encode("what do ya want for nothing?"));
let unsupported;
try { await crypto.subtle.digest("MD5", enc.encode("x")); } catch (e) { unsupported = e.name; }
return {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid),
  distinct: crypto.randomUUID() !== uuid,
  random: bytes.length === 32 && bytes.some((b) => b !== 0),
  quota,
  sha256: hex(await crypto.subtle.digest("SHA-256", enc.encode("abc"))),
  sha1: hex(await crypto.subtle.digest({ name: "SHA-1" }, enc.encode("abc"))),
  hmac: hex(mac),
  verified: await crypto.subtle.verify("HMAC", key, mac, enc.encode("what do ya want for nothing?")),
  forged: await crypto.subtle.verify("HMAC", key, mac, enc.encode("something else")),
  unsupported,
};
