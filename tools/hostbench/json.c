// A small JSON emitter: objects one member per line, arrays of scalars on one line,
// arrays of objects one element per line. Strings are escaped per RFC 8259.
#include "hostbench.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void put(json_t *j, const char *s, size_t n) {
  if (j->len + n + 1 > j->cap) {
    size_t cap = j->cap ? j->cap : 65536;
    while (j->len + n + 1 > cap) cap *= 2;
    char *nb = realloc(j->buf, cap);
    if (!nb) die("out of memory building the JSON output");
    j->buf = nb;
    j->cap = cap;
  }
  memcpy(j->buf + j->len, s, n);
  j->len += n;
  j->buf[j->len] = 0;
}

static void puts_(json_t *j, const char *s) { put(j, s, strlen(s)); }

static void putf(json_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(json_t *j, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(j, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void newline(json_t *j) {
  put(j, "\n", 1);
  for (int i = 0; i < j->depth; i++) put(j, "  ", 2);
}

// Separator and layout before a value (or a key, in an object).
static void before_value(json_t *j, bool is_container_obj) {
  if (j->after_key) {
    j->after_key = false;
    return;
  }
  if (j->depth == 0) return;
  bool first = j->first[j->depth];
  j->first[j->depth] = false;
  if (j->in_array[j->depth]) {
    if (!first) put(j, ",", 1);
    if (is_container_obj) {
      j->array_has_obj[j->depth] = true;
      newline(j);
    } else if (!first) {
      put(j, " ", 1);
    }
  } else {
    if (!first) put(j, ",", 1);
    newline(j);
  }
}

void j_init(json_t *j) { memset(j, 0, sizeof *j); }

static void open_(json_t *j, bool array) {
  before_value(j, !array);
  put(j, array ? "[" : "{", 1);
  if (j->depth + 1 >= 64) die("JSON nesting too deep");
  j->depth++;
  j->first[j->depth] = true;
  j->in_array[j->depth] = array;
  j->array_has_obj[j->depth] = false;
}

static void close_(json_t *j, bool array) {
  bool empty = j->first[j->depth];
  bool multiline = array ? j->array_has_obj[j->depth] : true;
  j->depth--;
  if (!empty && multiline) newline(j);
  put(j, array ? "]" : "}", 1);
}

void j_obj(json_t *j) { open_(j, false); }
void j_obj_end(json_t *j) { close_(j, false); }
void j_arr(json_t *j) { open_(j, true); }
void j_arr_end(json_t *j) { close_(j, true); }

static void raw_str(json_t *j, const char *s) {
  put(j, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': puts_(j, "\\\""); break;
      case '\\': puts_(j, "\\\\"); break;
      case '\b': puts_(j, "\\b"); break;
      case '\f': puts_(j, "\\f"); break;
      case '\n': puts_(j, "\\n"); break;
      case '\r': puts_(j, "\\r"); break;
      case '\t': puts_(j, "\\t"); break;
      default:
        if (*p < 0x20) putf(j, "\\u%04x", *p);
        else put(j, (const char *)p, 1);  // UTF-8 bytes pass through
    }
  }
  put(j, "\"", 1);
}

void j_key(json_t *j, const char *k) {
  before_value(j, false);
  raw_str(j, k);
  put(j, ": ", 2);
  j->after_key = true;
}

void j_str(json_t *j, const char *s) {
  before_value(j, false);
  if (s) raw_str(j, s);
  else puts_(j, "null");
}

void j_int(json_t *j, int64_t v) {
  before_value(j, false);
  putf(j, "%lld", (long long)v);
}

void j_num(json_t *j, double v) {
  before_value(j, false);
  if (v != v || v > 1e300 || v < -1e300) puts_(j, "null");  // NaN / inf
  else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
    putf(j, "%lld", (long long)v);
  else putf(j, "%.10g", v);
}

void j_bool(json_t *j, bool v) {
  before_value(j, false);
  puts_(j, v ? "true" : "false");
}

void j_kstr(json_t *j, const char *k, const char *s) { j_key(j, k); j_str(j, s); }
void j_kint(json_t *j, const char *k, int64_t v) { j_key(j, k); j_int(j, v); }
void j_knum(json_t *j, const char *k, double v) { j_key(j, k); j_num(j, v); }
void j_kbool(json_t *j, const char *k, bool v) { j_key(j, k); j_bool(j, v); }

void j_kvlist(json_t *j, const char *k, const kvlist_t *l) {
  j_key(j, k);
  j_obj(j);
  for (int i = 0; i < l->n; i++) j_kint(j, l->keys[i], l->d[i]);
  j_obj_end(j);
}
