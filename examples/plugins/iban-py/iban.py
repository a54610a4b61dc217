"""The IBAN check of examples/plugins/iban, in Python with the Sandbot
Python kit (guest-sdk/py-kit): validates what the user typed (a session
variable), stores the cleaned-up form and routes the conversation.

Input: {"variable": "user.iban", "onValid": "confirm-payment",
        "onInvalid": "ask-iban", "namespace": "payment"}
"""

import re

import sandbot

LENGTHS = {
    15: "NO", 16: "BE", 18: "DK FI FO GL NL", 19: "MK SI", 20: "AT BA EE KZ LT LU XK",
    21: "CH CR HR LI LV", 22: "BG BH DE GB GE IE ME RS", 23: "AE GI IL TL",
    24: "AD CZ ES MD PK RO SA SE SK TN VG", 25: "PT ST", 26: "IS TR", 27: "FR GR IT MC MR SM",
    28: "AL AZ BY CY DO GT HU LB PL SV", 29: "BR EG PS QA UA", 30: "JO KW MU", 31: "MT SC", 32: "LC",
}


class Invalid(Exception):
    pass


def check(typed: str) -> str:
    """The IBAN in electronic form, or raises the reason it is not one."""
    iban = re.sub(r"[\s-]", "", typed).upper()
    if len(iban) < 5 or not re.fullmatch(r"[A-Z0-9]+", iban):
        raise Invalid("it should be letters and digits only")
    cc = iban[:2]
    if not re.match(r"[A-Z]{2}[0-9]{2}", iban):
        raise Invalid("it should start with a country code and two check digits")
    want = next((n for n, codes in LENGTHS.items() if cc in codes.split()), 0)
    if not want:
        raise Invalid(f"`{cc}` is not a country that uses IBANs")
    if want != len(iban):
        raise Invalid(f"an IBAN from {cc} has {want} characters, not {len(iban)}")
    # ISO 13616: the first four characters to the end, letters as 10..35,
    # the number must be 1 modulo 97.
    rem = 0
    for c in iban[4:] + iban[:4]:
        v = int(c, 36)
        rem = (rem * 100 + v) % 97 if v >= 10 else (rem * 10 + v) % 97
    if rem != 1:
        raise Invalid("the check digits do not match")
    return iban


def run(args: dict) -> dict:
    variable, on_valid, on_invalid = args.get("variable"), args.get("onValid"), args.get("onInvalid")
    if not (variable and on_valid and on_invalid):
        raise sandbot.ActionError("invalid_args", "the input needs `variable`, `onValid` and `onInvalid`")
    ns = args.get("namespace", "payment")
    typed = sandbot.session.get(variable)
    if not isinstance(typed, str):
        raise sandbot.ActionError("missing_value", f"session variable `{variable}` is not set")
    try:
        iban = check(typed)
    except Invalid as e:
        reason = str(e)
        sandbot.session.set(f"{ns}.ibanValid", False)
        sandbot.conversation.say(f"That IBAN does not look right ({reason}). Could you check it and type it again?")
        sandbot.conversation.goto(on_invalid)
        return {"valid": False, "reason": reason}
    sandbot.session.set(f"{ns}.iban", " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)))
    sandbot.session.set(f"{ns}.ibanCountry", iban[:2])
    sandbot.session.set(f"{ns}.ibanValid", True)
    sandbot.conversation.goto(on_valid)
    return {"valid": True, "iban": iban}


WitWorld = sandbot.action(run)
