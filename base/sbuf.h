/*
 * sbuf.h - a growable, always NUL-terminated byte string.
 *
 * Used for messages, canonical encodings and rendered files. The buffer may
 * hold NUL bytes (sb_len counts them); sb_buf is NUL-terminated after every
 * operation so it can be handed to C string functions when it holds text.
 */
#ifndef PUNIX_BASE_SBUF_H
#define PUNIX_BASE_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
	char *sb_buf;
	size_t sb_len;
	size_t sb_cap;
};

#define SBUF_INIT {NULL, 0, 0}

void sbuf_init(struct sbuf *sb);
void sbuf_free(struct sbuf *sb);
void sbuf_reset(struct sbuf *sb);
void sbuf_append(struct sbuf *sb, const void *p, size_t len);
void sbuf_puts(struct sbuf *sb, const char *s);
void sbuf_putc(struct sbuf *sb, char c);
__attribute__((format(printf, 2, 3))) void sbuf_printf(struct sbuf *sb, const char *fmt, ...);
void sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap);
/* Hands the buffer to the caller (never NULL) and resets sb. */
char *sbuf_detach(struct sbuf *sb, size_t *len);
/* Appends w quoted for /bin/sh: '...', each ' inside written as '\''. */
void sbuf_shell_quote(struct sbuf *sb, const char *w);
/* Returns sb_buf, or "" when nothing was ever appended. */
const char *sbuf_str(const struct sbuf *sb);

#endif
