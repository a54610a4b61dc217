const basic = btoa("demo:s3cret");
let latin1Error;
try { btoa("€"); } catch (e) { latin1Error = `${e.name} ${e instanceof DOMException}`; }
let badBase64;
try { atob("abc*"); } catch (e) { badBase64 = e.name; }
const bytes = new TextEncoder().encode("héllo €😀");
let fatal;
try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff, 0x41])); } catch (e) { fatal = e.constructor.name; }
let label;
try { new TextDecoder("latin1"); } catch (e) { label = e.constructor.name; }
return {
  basic,
  back: atob(basic),
  padding: [btoa(""), btoa("f"), btoa("fo"), btoa("foo"), atob("Zm8"), atob(" Zm9v\n")],
  latin1Error,
  badBase64,
  bytes: Array.from(bytes),
  text: new TextDecoder().decode(bytes),
  bom: new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69])),
  lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62])),
  fatal,
  label,
  encoding: new TextEncoder().encoding,
};
