/* The Sandbot C kit: write an action plugin in C.
 *
 * Implement `sb_run`; the kit exports it as the sandbot:action world's `run`
 * and gives you the host's calls with C strings (NUL-terminated UTF-8).
 * Strings the kit returns are malloc'd: free() them when done (or not: the
 * instance is dropped after the call). Values cross as JSON text.
 *
 *   int sb_run(const char *input_json, sb_string *output, sb_error *error) {
 *     char *name = sb_json_get_string(input_json, "name");
 *     sb_say_text("Hello!", error);
 *     sb_set_string(output, "{\"ok\":true}");
 *     return 0;                       // 1 with `error` set: the action fails
 *   }
 *
 * Build (Debian: clang, lld, wasi-libc): see examples/plugins/iban-c/build.sh.
 */
#ifndef SANDBOT_H
#define SANDBOT_H

#include <stddef.h>
#include <stdint.h>

/* The action's output: JSON text (set it with sb_set_string). */
typedef struct { uint8_t *ptr; size_t len; } sb_string;

/* Your own failure: a code and a message (set them with sb_fail). */
typedef struct { sb_string code; sb_string message; } sb_error;

typedef enum { SB_DEBUG, SB_INFO, SB_WARN, SB_ERROR } sb_level;

/* The action: return 0 with `output` set, or 1 with `error` set (then
 * nothing the action wrote applies and the flow goes to Error occurred). */
int sb_run(const char *input_json, sb_string *output, sb_error *error);

void sb_set_string(sb_string *out, const char *text);
/* Sets `error` and returns 1, so `return sb_fail(error, "code", "why");`. */
int sb_fail(sb_error *error, const char *code, const char *message);

/* The session (paths like `user.address.city`, `items[0]`). */
char *sb_session_get(const char *path);                       /* JSON text, or NULL */
int sb_session_set(const char *path, const char *json, sb_error *error); /* 0, or 1 with error */
int sb_session_remove(const char *path, sb_error *error);

/* The conversation. */
int sb_say(const char *message_json, sb_error *error);        /* a Chatlayer message object */
int sb_say_text(const char *text, sb_error *error);
void sb_goto(const char *block);
void sb_log(sb_level level, const char *text);

/* HTTP under the tenant's egress policy. A refusal is a value: `error` says
 * `egress denied: why`, `request timed out`, `too large: …`, `invalid
 * request: …` or `transport error: …` (as the Rust SDK's http::describe),
 * and `status` is 0. */
typedef struct {
  uint16_t status;
  char *body;          /* NUL-terminated, `body_len` bytes before it */
  size_t body_len;
  char *error;         /* NULL on success */
} sb_response;
int sb_fetch(const char *method, const char *url, const char *body, sb_response *out); /* 0 ok */

typedef struct { uint64_t fuel; uint64_t wall_ms; uint32_t http_calls; uint64_t memory_bytes; } sb_budget;
sb_budget sb_budget_remaining(void);

/* Small JSON helpers for flat objects. */
char *sb_json_get_string(const char *json, const char *key); /* a string member, or NULL */
char *sb_json_string_value(const char *json);                /* `"text"` → text, or NULL */
char *sb_json_quote(const char *text);                       /* text → `"text"` (escaped) */

#endif
