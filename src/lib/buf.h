/* A growable byte buffer with a hard maximum (curl's dynbuf): anything
 * filled from outside says how big it may get, and growing past that
 * fails with -BCDR_ERR_TOO_BIG instead of eating memory. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

struct buf {
	char *data; /* always NUL-terminated when not NULL */
	size_t len;
	size_t cap;
	size_t max; /* hard limit on len */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
/* A plain byte array (*buf, *cap) grown to at least need bytes, and by
 * half its capacity at least; contents kept. */
int bytes_reserve(uint8_t **buf, size_t *cap, size_t need);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Hands the contents to the caller (free() them) and empties b. */
char *buf_steal(struct buf *b, size_t *ret_len);
