// The IBAN check of examples/plugins/iban, in C with the Sandbot C kit
// (guest-sdk/c/sandbot.h): validates what the user typed (a session
// variable), stores the cleaned-up form and routes the conversation.
//
// Input: {"variable": "user.iban", "onValid": "confirm-payment",
//         "onInvalid": "ask-iban", "namespace": "payment"}
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbot.h"

static int expected_length(const char *cc) {
  static const struct { const char *codes; int len; } table[] = {
    {"NO", 15}, {"BE", 16}, {"DK FI FO GL NL", 18}, {"MK SI", 19},
    {"AT BA EE KZ LT LU XK", 20}, {"CH CR HR LI LV", 21},
    {"BG BH DE GB GE IE ME RS", 22}, {"AE GI IL TL", 23},
    {"AD CZ ES MD PK RO SA SE SK TN VG", 24}, {"PT ST", 25}, {"IS TR", 26},
    {"FR GR IT MC MR SM", 27}, {"AL AZ BY CY DO GT HU LB PL SV", 28},
    {"BR EG PS QA UA", 29}, {"JO KW MU", 30}, {"MT SC", 31}, {"LC", 32},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    for (const char *p = table[i].codes; *p; p += (p[2] ? 3 : 2)) {
      if (p[0] == cc[0] && p[1] == cc[1]) return table[i].len;
    }
  }
  return 0;
}

// The IBAN in electronic form into `out` (NULL reason), or why it is not one.
static const char *check(const char *typed, char *out, size_t cap, char *why, size_t why_cap) {
  size_t n = 0;
  for (const char *p = typed; *p; p++) {
    if (isspace((unsigned char)*p) || *p == '-') continue;
    if (!isalnum((unsigned char)*p) || n + 1 >= cap) return "it should be letters and digits only";
    out[n++] = (char)toupper((unsigned char)*p);
  }
  out[n] = 0;
  if (n < 5) return "it should be letters and digits only";
  if (!isupper((unsigned char)out[0]) || !isupper((unsigned char)out[1]) ||
      !isdigit((unsigned char)out[2]) || !isdigit((unsigned char)out[3]))
    return "it should start with a country code and two check digits";
  int want = expected_length(out);
  if (!want) {
    snprintf(why, why_cap, "`%.2s` is not a country that uses IBANs", out);
    return why;
  }
  if ((size_t)want != n) {
    snprintf(why, why_cap, "an IBAN from %.2s has %d characters, not %zu", out, want, n);
    return why;
  }
  // ISO 13616: the first four characters to the end, letters as 10..35,
  // the number must be 1 modulo 97.
  unsigned rem = 0;
  for (size_t i = 0; i < n; i++) {
    char c = out[(i + 4) % n];
    unsigned v = isdigit((unsigned char)c) ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  if (rem != 1) return "the check digits do not match";
  return NULL;
}

int sb_run(const char *input, sb_string *output, sb_error *error) {
  char *variable = sb_json_get_string(input, "variable");
  char *on_valid = sb_json_get_string(input, "onValid");
  char *on_invalid = sb_json_get_string(input, "onInvalid");
  char *ns = sb_json_get_string(input, "namespace");
  if (!variable || !on_valid || !on_invalid) {
    return sb_fail(error, "invalid_args", "the input needs `variable`, `onValid` and `onInvalid`");
  }
  if (!ns) ns = strdup("payment");
  char *json = sb_session_get(variable);
  char *typed = json ? sb_json_string_value(json) : NULL;
  if (!typed) {
    char msg[256];
    snprintf(msg, sizeof msg, "session variable `%s` is not set", variable);
    return sb_fail(error, "missing_value", msg);
  }
  char iban[64], why[128], path[128], text[256], value[96];
  const char *reason = check(typed, iban, sizeof iban, why, sizeof why);
  if (!reason) {
    size_t n = strlen(iban), k = 0;
    char grouped[96];
    for (size_t i = 0; i < n; i++) {
      if (i && i % 4 == 0) grouped[k++] = ' ';
      grouped[k++] = iban[i];
    }
    grouped[k] = 0;
    snprintf(path, sizeof path, "%s.iban", ns);
    snprintf(value, sizeof value, "\"%s\"", grouped);
    if (sb_session_set(path, value, error)) return 1;
    snprintf(path, sizeof path, "%s.ibanCountry", ns);
    snprintf(value, sizeof value, "\"%.2s\"", iban);
    if (sb_session_set(path, value, error)) return 1;
    snprintf(path, sizeof path, "%s.ibanValid", ns);
    if (sb_session_set(path, "true", error)) return 1;
    sb_goto(on_valid);
    snprintf(text, sizeof text, "{\"valid\":true,\"iban\":\"%s\"}", iban);
  } else {
    snprintf(path, sizeof path, "%s.ibanValid", ns);
    if (sb_session_set(path, "false", error)) return 1;
    char say[256];
    snprintf(say, sizeof say, "That IBAN does not look right (%s). Could you check it and type it again?", reason);
    if (sb_say_text(say, error)) return 1;
    sb_goto(on_invalid);
    snprintf(text, sizeof text, "{\"valid\":false,\"reason\":\"%s\"}", reason);
  }
  sb_set_string(output, text);
  return 0;
}
