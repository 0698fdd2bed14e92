/*
 * pcl_diag.c - diagnostics: recording, ordering, formatting, suggestions.
 *
 * Every error of the front end goes through pcl_error(). At most
 * PCL_MAX_DIAGS are kept (a 100 MB file of garbage must not need gigabytes
 * of messages); all are counted. The order of the kept ones is made
 * independent of evaluation order by sorting on location.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/utf8.h"
#include "pcl_internal.h"

static char *vfmt(const char *fmt, va_list ap)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_vprintf(&sb, fmt, ap);
	return sbuf_detach(&sb, NULL);
}

struct pcl_diag *pcl_verror(struct pcl_program *p, struct pcl_loc loc, int code, const char *fmt, va_list ap)
{
	p->nerrors++;
	/*
	 * Keep the first PCL_MAX_DIAGS in output order, not in the order they
	 * were found: when twice that many are held, sort and drop the tail.
	 */
	if (p->diags.n >= 2 * PCL_MAX_DIAGS)
		pcl_diags_sort(p);
	struct pcl_diag d = {0};
	d.d_loc = loc;
	d.d_code = code;
	d.d_message = vfmt(fmt, ap);
	VEC_PUSH(&p->diags, d);
	return &p->diags.v[p->diags.n - 1];
}

struct pcl_diag *pcl_error(struct pcl_program *p, struct pcl_loc loc, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct pcl_diag *d = pcl_verror(p, loc, code, fmt, ap);
	va_end(ap);
	return d;
}

void pcl_diag_hint(struct pcl_diag *d, const char *fmt, ...)
{
	if (!d)
		return;
	va_list ap;
	va_start(ap, fmt);
	free(d->d_hint);
	d->d_hint = vfmt(fmt, ap);
	va_end(ap);
}

void pcl_diag_note(struct pcl_diag *d, struct pcl_loc loc, const char *fmt, ...)
{
	if (!d)
		return;
	va_list ap;
	va_start(ap, fmt);
	free(d->d_note);
	d->d_note = vfmt(fmt, ap);
	d->d_note_loc = loc;
	va_end(ap);
}

static int strcmp_null(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int diag_cmp(const void *pa, const void *pb)
{
	const struct pcl_diag *a = pa, *b = pb;
	int c = strcmp_null(a->d_loc.file, b->d_loc.file);
	if (c)
		return c;
	if (a->d_loc.line != b->d_loc.line)
		return a->d_loc.line < b->d_loc.line ? -1 : 1;
	if (a->d_loc.col != b->d_loc.col)
		return a->d_loc.col < b->d_loc.col ? -1 : 1;
	if (a->d_code != b->d_code)
		return a->d_code < b->d_code ? -1 : 1;
	return strcmp(a->d_message, b->d_message);
}

void pcl_diags_sort(struct pcl_program *p)
{
	if (p->diags.n > 1)
		qsort(p->diags.v, p->diags.n, sizeof(p->diags.v[0]), diag_cmp);
	while (p->diags.n > PCL_MAX_DIAGS) {
		struct pcl_diag *d = &p->diags.v[--p->diags.n];
		free(d->d_message);
		free(d->d_hint);
		free(d->d_note);
	}
}

void pcl_diags_free(struct pcl_program *p)
{
	for (size_t i = 0; i < p->diags.n; i++) {
		free(p->diags.v[i].d_message);
		free(p->diags.v[i].d_hint);
		free(p->diags.v[i].d_note);
	}
	VEC_FREE(&p->diags);
}

static void format_loc(struct sbuf *out, struct pcl_loc loc)
{
	if (!loc.file)
		return;
	if (loc.line)
		sbuf_printf(out, "%s:%u:%u: ", loc.file, loc.line, loc.col);
	else
		sbuf_printf(out, "%s: ", loc.file);
}

void pcl_diag_format(const struct pcl_diag *d, struct sbuf *out)
{
	format_loc(out, d->d_loc);
	sbuf_printf(out, "error: [E%d] %s\n", d->d_code, d->d_message);
	if (d->d_note) {
		format_loc(out, d->d_note_loc);
		sbuf_printf(out, "note: %s\n", d->d_note);
	}
	if (d->d_hint)
		sbuf_printf(out, "hint: %s\n", d->d_hint);
}

/*
 * Optimal string alignment distance (Levenshtein plus adjacent
 * transposition), so "pacakge" is one edit from "package". Bounded: words
 * longer than 64 bytes get no suggestion.
 */
static size_t osa_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *pcl_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t len = strlen(word);
	/*
	 * One edit per three letters, at most three. Names under three letters
	 * get no suggestion: any one-letter name is one edit from any other.
	 */
	size_t limit = len / 3;
	if (limit > 3)
		limit = 3;
	if (limit == 0)
		return NULL;
	const char *best = NULL;
	size_t best_d = limit + 1;
	for (size_t i = 0; i < n; i++) {
		size_t d = osa_distance(word, cands[i]);
		/* Ties go to the smaller name, so the hint is order-independent. */
		if (d < best_d || (d == best_d && best && strcmp(cands[i], best) < 0)) {
			best = cands[i];
			best_d = d;
		}
	}
	return best_d <= limit ? best : NULL;
}

const char *pcl_show(struct pcl_program *p, const char *s)
{
	/* a user's string in a message: one line, valid UTF-8, at most 80 characters */
	struct sbuf sb = SBUF_INIT;
	sbuf_putc(&sb, '"');
	size_t shown = 0;
	const unsigned char *u = (const unsigned char *)s;
	while (*u) {
		if (shown == 80) {
			sbuf_puts(&sb, "...");
			break;
		}
		uint32_t cp;
		size_t n = *u < 0x80 ? 1 : utf8_decode(u, strlen((const char *)u), &cp);
		if (*u == '\n')
			sbuf_puts(&sb, "\\n");
		else if (*u == '\r')
			sbuf_puts(&sb, "\\r");
		else if (*u == '\t')
			sbuf_puts(&sb, "\\t");
		else if (*u == '"' || *u == '\\')
			sbuf_printf(&sb, "\\%c", *u);
		else if (*u == PCL_OUT_OPEN)
			sbuf_puts(&sb, "${"); /* a composed string's store path, as written */
		else if (*u == PCL_OUT_CLOSE)
			sbuf_puts(&sb, ".out}");
		else if (*u < 0x20 || *u == 0x7f || n == 0)
			sbuf_printf(&sb, "\\x%02X", *u);
		else
			sbuf_append(&sb, u, n);
		u += n ? n : 1;
		shown++;
	}
	sbuf_putc(&sb, '"');
	const char *r = arena_strndup(&p->arena, sbuf_str(&sb), sb.sb_len);
	sbuf_free(&sb);
	return r;
}
