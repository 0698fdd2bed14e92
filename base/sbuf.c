/*
 * sbuf.c - growable byte string (see sbuf.h).
 */
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void sbuf_init(struct sbuf *sb)
{
	sb->sb_buf = NULL;
	sb->sb_len = sb->sb_cap = 0;
}

void sbuf_free(struct sbuf *sb)
{
	free(sb->sb_buf);
	sbuf_init(sb);
}

void sbuf_reset(struct sbuf *sb)
{
	sb->sb_len = 0;
	if (sb->sb_buf)
		sb->sb_buf[0] = '\0';
}

static void sbuf_grow(struct sbuf *sb, size_t extra)
{
	size_t need = sb->sb_len + extra + 1;
	if (need < extra)
		xalloc_die();
	if (need <= sb->sb_cap)
		return;
	size_t cap = sb->sb_cap ? sb->sb_cap : 64;
	while (cap < need) {
		if (cap > (size_t)-1 / 2)
			xalloc_die();
		cap *= 2;
	}
	sb->sb_buf = xrealloc(sb->sb_buf, cap);
	sb->sb_cap = cap;
}

void sbuf_append(struct sbuf *sb, const void *p, size_t len)
{
	sbuf_grow(sb, len);
	if (len)
		memcpy(sb->sb_buf + sb->sb_len, p, len);
	sb->sb_len += len;
	sb->sb_buf[sb->sb_len] = '\0';
}

void sbuf_puts(struct sbuf *sb, const char *s)
{
	sbuf_append(sb, s, strlen(s));
}

void sbuf_putc(struct sbuf *sb, char c)
{
	sbuf_append(sb, &c, 1);
}

void sbuf_vprintf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sbuf_grow(sb, (size_t)n);
	vsnprintf(sb->sb_buf + sb->sb_len, (size_t)n + 1, fmt, ap);
	sb->sb_len += (size_t)n;
}

void sbuf_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
}

char *sbuf_detach(struct sbuf *sb, size_t *len)
{
	sbuf_grow(sb, 0);
	char *p = sb->sb_buf;
	if (len)
		*len = sb->sb_len;
	sbuf_init(sb);
	return p;
}

const char *sbuf_str(const struct sbuf *sb)
{
	return sb->sb_buf ? sb->sb_buf : "";
}

void sbuf_shell_quote(struct sbuf *sb, const char *w)
{
	sbuf_putc(sb, '\'');
	for (; *w; w++) {
		if (*w == '\'')
			sbuf_puts(sb, "'\\''");
		else
			sbuf_putc(sb, *w);
	}
	sbuf_putc(sb, '\'');
}
