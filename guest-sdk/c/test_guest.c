// The C kit's edge cases: the same `input.case` names and answers as the
// Rust test guest (guest-sdk/test-guest), so tests/cases/kits runs one set
// of cases against every language's guest.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbot.h"

/* Chunks `alloc` holds on to (so the compiler keeps every allocation). */
static char *volatile kept;

static unsigned long long number(const char *input, const char *key) {
  const char *p = strstr(input, key);
  if (!p) return 0;
  p = strchr(p + strlen(key), ':');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

int sb_run(const char *input, sb_string *output, sb_error *error) {
  char *which = sb_json_get_string(input, "case");
  const char *c = which ? which : "noop";
  unsigned long long n = number(input, "\"n\"");
  if (!strcmp(c, "noop")) {
    sb_set_string(output, "null");
  } else if (!strcmp(c, "session")) {
    char *counter = sb_session_get("counter");
    long long was = counter ? atoll(counter) : 0;
    char text[64];
    snprintf(text, sizeof text, "%lld", was + 1);
    if (sb_session_set("counter", text, error) || sb_session_set("user.address.city", "\"Ghent\"", error) ||
        sb_session_set("items[0]", "\"a\"", error) || sb_session_set("items[1]", "{\"sku\":\"b\"}", error) ||
        sb_session_remove("obsolete", error))
      return 1;
    char *seen = sb_session_get("user.address.city");
    snprintf(text, sizeof text, "counter was %lld", was);
    if (sb_say_text(text, error)) return 1;
    sb_goto("first");
    char *next = sb_json_get_string(input, "next");
    sb_goto(next ? next : "done");
    sb_log(SB_INFO, "session case done");
    char out[128];
    snprintf(out, sizeof out, "{\"seen\":%s}", seen ? seen : "null");
    sb_set_string(output, out);
  } else if (!strcmp(c, "write_internal")) {
    if (sb_session_set("internal.botId", "\"stolen\"", error)) return 1;
    sb_set_string(output, "null");
  } else if (!strcmp(c, "set_then_fail")) {
    if (sb_session_set("user.flag", "true", error) || sb_say_text("should never be delivered", error)) return 1;
    sb_goto("never");
    return sb_fail(error, "on_purpose", "failing after writes");
  } else if (!strcmp(c, "fetch_result")) {
    char *url = sb_json_get_string(input, "url");
    sb_response r;
    char out[1024];
    if (sb_fetch("GET", url ? url : "https://example.com/", NULL, &r)) {
      char *q = sb_json_quote(r.error);
      snprintf(out, sizeof out, "{\"error\":%s}", q);
    } else {
      snprintf(out, sizeof out, "{\"status\":%u}", r.status);
    }
    sb_set_string(output, out);
  } else if (!strcmp(c, "spin")) {
    volatile unsigned long long x = 0;
    for (;;) x++;
  } else if (!strcmp(c, "work")) {
    volatile unsigned long long x = 0;
    for (unsigned long long i = 0; i < n; i++) x = x * 31 + i;
    char out[32];
    snprintf(out, sizeof out, "%llu", (unsigned long long)x);
    sb_set_string(output, out);
  } else if (!strcmp(c, "alloc")) {
    unsigned long long chunks = 0;
    while (n == 0 || chunks < n) {
      char *chunk = malloc(1 << 20);
      if (!chunk) abort(); /* as Rust does: the host reports memory_limit */
      for (size_t i = 0; i < (1 << 20); i += 4096) chunk[i] = 1; /* touch each page */
      *(char **)chunk = kept; /* keep every chunk reachable */
      kept = chunk;
      chunks++;
    }
    char out[32];
    snprintf(out, sizeof out, "%llu", chunks);
    sb_set_string(output, out);
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "no case `%s`", c);
    return sb_fail(error, "unknown_case", msg);
  }
  return 0;
}
