// The IBAN check of examples/plugins/iban, in JavaScript with the Sandbot
// JS kit (guest-sdk/js-kit): validates what the user typed (a session
// variable), stores the cleaned-up form and routes the conversation.
//
// Input: {"variable": "user.iban", "onValid": "confirm-payment",
//         "onInvalid": "ask-iban", "namespace": "payment"}
import { ActionError, action, conversation, session } from "sandbot-kit";

const LENGTHS = {
  15: "NO", 16: "BE", 18: "DK FI FO GL NL", 19: "MK SI", 20: "AT BA EE KZ LT LU XK",
  21: "CH CR HR LI LV", 22: "BG BH DE GB GE IE ME RS", 23: "AE GI IL TL",
  24: "AD CZ ES MD PK RO SA SE SK TN VG", 25: "PT ST", 26: "IS TR", 27: "FR GR IT MC MR SM",
  28: "AL AZ BY CY DO GT HU LB PL SV", 29: "BR EG PS QA UA", 30: "JO KW MU", 31: "MT SC", 32: "LC",
};
const expectedLength = (cc) =>
  Number(Object.keys(LENGTHS).find((n) => LENGTHS[n].split(" ").includes(cc))) || 0;

// The IBAN in electronic form, or throws the reason it is not one.
function check(typed) {
  const iban = typed.replace(/[\s-]/g, "").toUpperCase();
  if (iban.length < 5 || !/^[A-Z0-9]+$/.test(iban)) throw "it should be letters and digits only";
  const cc = iban.slice(0, 2);
  if (!/^[A-Z]{2}[0-9]{2}/.test(iban)) throw "it should start with a country code and two check digits";
  const want = expectedLength(cc);
  if (!want) throw `\`${cc}\` is not a country that uses IBANs`;
  if (want !== iban.length) throw `an IBAN from ${cc} has ${want} characters, not ${iban.length}`;
  // ISO 13616: the first four characters to the end, letters as 10..35,
  // the number must be 1 modulo 97.
  let rem = 0;
  for (const c of iban.slice(4) + iban.slice(0, 4)) {
    const v = parseInt(c, 36);
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  if (rem !== 1) throw "the check digits do not match";
  return iban;
}

export const run = action(({ variable, onValid, onInvalid, namespace: ns = "payment" }) => {
  if (!variable || !onValid || !onInvalid) {
    throw new ActionError("invalid_args", "the input needs `variable`, `onValid` and `onInvalid`");
  }
  const typed = session.get(variable);
  if (typeof typed !== "string") throw new ActionError("missing_value", `session variable \`${variable}\` is not set`);
  let iban;
  try {
    iban = check(typed);
  } catch (reason) {
    if (typeof reason !== "string") throw reason;
    session.set(`${ns}.ibanValid`, false);
    conversation.say(`That IBAN does not look right (${reason}). Could you check it and type it again?`);
    conversation.goto(onInvalid);
    return { valid: false, reason };
  }
  session.set(`${ns}.iban`, iban.match(/.{1,4}/g).join(" "));
  session.set(`${ns}.ibanCountry`, iban.slice(0, 2));
  session.set(`${ns}.ibanValid`, true);
  conversation.goto(onValid);
  return { valid: true, iban };
});
