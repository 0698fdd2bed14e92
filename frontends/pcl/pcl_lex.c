/*
 * pcl_lex.c - the PCL lexer.
 *
 * Pull-based: the parser asks for one token at a time, so a large file is
 * never held twice as a token array. Positions are tracked incrementally
 * (a column counts code points: every byte that is not a UTF-8 continuation
 * byte), so lexing stays linear even on a single 60 MB line.
 *
 * Lexical errors are reported and lexing continues, so one run reports all
 * of them: a run of stray bytes is one error; a string with a bad escape or
 * a raw newline is reported and ends there, as if closed.
 *
 * Speed: bytes are classified by one table lookup; runs of plain ASCII
 * (whitespace, identifiers, strings without escapes) advance the column by
 * their length at once; only strings with escapes or non-ASCII bytes take
 * the careful path. Identifiers and short strings are interned: a program
 * of 10^5 modules names the same fields and packages over and over, and
 * keeps one copy of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/utf8.h"
#include "pcl_internal.h"

void pcl_lex_init(struct pcl_lexer *lx, struct pcl_program *p, const char *file, const char *buf, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->prog = p;
	lx->file = file;
	lx->buf = (const unsigned char *)buf;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
	/* A UTF-8 byte order mark is not content. */
	if (len >= 3 && lx->buf[0] == 0xEF && lx->buf[1] == 0xBB && lx->buf[2] == 0xBF)
		lx->pos = 3;
}

void pcl_lex_fini(struct pcl_lexer *lx)
{
	sbuf_free(&lx->scratch);
	VEC_FREE(&lx->interps);
	VEC_FREE(&lx->iparts);
	VEC_FREE(&lx->ilocs);
}

/* Every lexical error goes through here, so the parser can tell. */
#define pcl_error(p, loc, code, ...) (lx->errors++, pcl_error((p), (loc), (code), __VA_ARGS__))

static struct pcl_loc here(const struct pcl_lexer *lx)
{
	return (struct pcl_loc){lx->file, lx->line, lx->col};
}

/* Advances over n bytes that contain no newline. */
static void advance(struct pcl_lexer *lx, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((lx->buf[lx->pos] & 0xC0) != 0x80)
			lx->col++;
		lx->pos++;
	}
}

static void newline(struct pcl_lexer *lx)
{
	lx->pos++;
	lx->line++;
	lx->col = 1;
}

/* Byte classes. */
enum {
	C_START = 1,  /* begins an identifier */
	C_IDENT = 2,  /* continues one */
	C_DIGIT = 4,
	C_BEGINS = 8, /* begins some token, whitespace or a comment */
	C_PLAIN = 16, /* stands for itself inside a string: printable ASCII but '"' and '\\', or tab */
};

#define LETTER (C_START | C_IDENT | C_BEGINS | C_PLAIN)
#define PUNCT (C_BEGINS | C_PLAIN)
static const unsigned char cls[256] = {
	['\t'] = PUNCT,
	['\n'] = C_BEGINS,
	['\r'] = C_BEGINS,
	[' '] = PUNCT,
	['!'] = C_PLAIN,
	['"'] = C_BEGINS,
	['#'] = PUNCT,
	['$' ... '+'] = C_PLAIN,
	[','] = PUNCT,
	['-'] = C_IDENT | PUNCT,
	['.'] = PUNCT,
	['/'] = C_PLAIN,
	['0' ... '9'] = C_IDENT | C_DIGIT | PUNCT,
	[':'] = C_PLAIN,
	[';'] = PUNCT,
	['<'] = C_PLAIN,
	['='] = PUNCT,
	['>' ... '@'] = C_PLAIN,
	['A' ... 'Z'] = LETTER,
	['['] = PUNCT,
	[']'] = PUNCT,
	['^'] = C_PLAIN,
	['_'] = LETTER,
	['`'] = C_PLAIN,
	['a' ... 'z'] = LETTER,
	['{'] = PUNCT,
	['|'] = C_PLAIN,
	['}'] = PUNCT,
	['~'] = C_PLAIN,
};
#undef PUNCT
#undef LETTER

static int is_ident_start(int c)
{
	return cls[c] & C_START;
}

static int is_ident_char(int c)
{
	return cls[c] & C_IDENT;
}

static int is_digit(int c)
{
	return cls[c] & C_DIGIT;
}

/* Can byte c begin some token, or whitespace, or a comment? */
static int starts_something(int c)
{
	return cls[c] & C_BEGINS;
}

/* ---- interning ------------------------------------------------------------ */

static uint64_t intern_hash(const unsigned char *s, size_t len)
{
	/* FNV-1a over 8 bytes at a time: short keys, no adversary with a reason to collide them */
	uint64_t h = 1469598103934665603ULL ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 1099511628211ULL;
		h ^= h >> 29;
	}
	uint64_t w = 0;
	memcpy(&w, s + i, len - i);
	h = (h ^ w) * 1099511628211ULL;
	return h ^ (h >> 32);
}

static struct pcl_intern_slot *intern_slot(const struct pcl_intern *in, uint64_t h, const unsigned char *s, size_t len)
{
	size_t mask = in->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct pcl_intern_slot *slot = &in->slots[i];
		if (!slot->s || (slot->hash == h && memcmp(slot->s, s, len) == 0 && slot->s[len] == '\0'))
			return slot;
	}
}

/* The program's one copy of the len bytes at s (which hold no NUL). */
static const char *intern(struct pcl_program *p, const unsigned char *s, size_t len)
{
	struct pcl_intern *in = &p->intern;
	if ((in->n + 1) * 2 > in->cap) {
		struct pcl_intern old = *in;
		in->cap = old.cap ? old.cap * 2 : 1024;
		in->slots = xcalloc(in->cap, sizeof(*in->slots));
		for (size_t i = 0; i < old.cap; i++)
			if (old.slots[i].s) {
				size_t j = (size_t)old.slots[i].hash & (in->cap - 1);
				while (in->slots[j].s)
					j = (j + 1) & (in->cap - 1);
				in->slots[j] = old.slots[i];
			}
		free(old.slots);
	}
	uint64_t h = intern_hash(s, len);
	struct pcl_intern_slot *r = &in->recent[(h >> 20) & 511];
	if (r->s && r->hash == h && memcmp(r->s, s, len) == 0 && r->s[len] == '\0')
		return r->s;
	struct pcl_intern_slot *slot = intern_slot(in, h, s, len);
	if (!slot->s) {
		slot->s = arena_strndup(&p->arena, (const char *)s, len);
		slot->hash = h;
		in->n++;
	}
	*r = *slot;
	return slot->s;
}

/* Strings longer than this are rarely repeated: they are copied, not looked up. */
#define INTERN_MAX 64

static const char *keep_string(struct pcl_program *p, const unsigned char *s, size_t len)
{
	if (len <= INTERN_MAX)
		return intern(p, s, len);
	return arena_strndup(&p->arena, (const char *)s, len);
}

static void skip_comment(struct pcl_lexer *lx)
{
	bool reported = false;
	while (lx->pos < lx->len && lx->buf[lx->pos] != '\n') {
		unsigned char c = lx->buf[lx->pos];
		if (c < 0x80) {
			advance(lx, 1);
			continue;
		}
		uint32_t cp;
		size_t n = utf8_decode(lx->buf + lx->pos, lx->len - lx->pos, &cp);
		if (!n) {
			if (!reported)
				pcl_error(lx->prog, here(lx), PCL_E0, "invalid UTF-8 byte 0x%02X in comment", c);
			reported = true;
			lx->pos++;
			lx->col++;
			continue;
		}
		advance(lx, n);
	}
}

static bool is_blank(const struct pcl_lexer *lx)
{
	return lx->pos < lx->len && (lx->buf[lx->pos] == ' ' || lx->buf[lx->pos] == '\t');
}

static void skip_blanks(struct pcl_lexer *lx)
{
	while (is_blank(lx))
		advance(lx, 1);
}

/*
 * "${" at lx->pos, in a string whose literal text so far is 'at' bytes:
 * reads "${ Module.field... }" into lx->interps. Returns false after
 * reporting a malformed one (or leaving an unterminated string to the
 * caller), having skipped to its '}' if it has one on the line.
 */
static bool lex_interp(struct pcl_lexer *lx, size_t at)
{
	struct pcl_interp in = {.at = at, .loc = here(lx)};
	size_t base = lx->iparts.n;
	advance(lx, 2);
	skip_blanks(lx);
	bool dot = false; /* a '.' with no name after it */
	while (lx->pos < lx->len && is_ident_start(lx->buf[lx->pos])) {
		VEC_PUSH(&lx->ilocs, here(lx));
		size_t start = lx->pos;
		while (lx->pos < lx->len && is_ident_char(lx->buf[lx->pos]))
			lx->pos++;
		lx->col += (uint32_t)(lx->pos - start);
		VEC_PUSH(&lx->iparts, intern(lx->prog, lx->buf + start, lx->pos - start));
		dot = lx->pos < lx->len && lx->buf[lx->pos] == '.';
		if (!dot)
			break;
		advance(lx, 1);
	}
	in.n = lx->iparts.n - base;
	skip_blanks(lx);
	unsigned char c = lx->pos < lx->len ? lx->buf[lx->pos] : '\n';
	if (c == '}' && in.n && !dot) {
		advance(lx, 1);
		VEC_PUSH(&lx->interps, in);
		return true;
	}
	lx->iparts.n = lx->ilocs.n = base;
	if (c == '\n')
		return false; /* the string is cut short: that is the error to report */
	struct pcl_diag *d;
	if (c == '"')
		d = pcl_error(lx->prog, in.loc, PCL_E0, "unterminated '${' in a string: no '}' before the string ends");
	else if (c == '}' && !in.n)
		d = pcl_error(lx->prog, in.loc, PCL_E0, "empty '${}' in a string");
	else
		d = pcl_error(lx->prog, in.loc, PCL_E0,
			      "'${' in a string must hold a reference (Module.field) and then '}'");
	pcl_diag_hint(d, "write '$${' for a literal '${'");
	while (lx->pos < lx->len && !strchr("}\"\n\\", lx->buf[lx->pos]))
		advance(lx, 1);
	if (lx->pos < lx->len && lx->buf[lx->pos] == '}')
		advance(lx, 1);
	return false;
}

/* The ${...} read into lx->interps, kept with the token. */
static void keep_interps(struct pcl_lexer *lx, struct pcl_token *t)
{
	struct arena *a = &lx->prog->arena;
	size_t n = lx->interps.n;
	struct pcl_interp *in = arena_memdup(a, lx->interps.v, n * sizeof(*in));
	const char **parts = arena_memdup(a, lx->iparts.v, lx->iparts.n * sizeof(*parts));
	struct pcl_loc *locs = arena_memdup(a, lx->ilocs.v, lx->ilocs.n * sizeof(*locs));
	for (size_t i = 0, k = 0; i < n; k += in[i].n, i++) {
		in[i].parts = parts + k;
		in[i].locs = locs + k;
	}
	t->interp = in;
	t->ninterp = n;
}

/* Is the '$' at i the start of "${" or "$${"? Then the string takes the careful path. */
static bool dollar_special(const struct pcl_lexer *lx, size_t i)
{
	return lx->buf[i] == '$' && i + 1 < lx->len && (lx->buf[i + 1] == '{' || lx->buf[i + 1] == '$');
}

static void lex_string(struct pcl_lexer *lx, struct pcl_token *t)
{
	/* The common case: plain ASCII up to the closing quote, kept as it is. */
	size_t end = lx->pos + 1;
	while (end < lx->len && (cls[lx->buf[end]] & C_PLAIN) && !dollar_special(lx, end))
		end++;
	if (end < lx->len && lx->buf[end] == '"') {
		t->kind = PCL_T_STRING;
		t->len = end - lx->pos - 1;
		t->text = keep_string(lx->prog, lx->buf + lx->pos + 1, t->len);
		lx->col += (uint32_t)(end + 1 - lx->pos);
		lx->pos = end + 1;
		return;
	}
	struct sbuf *sb = &lx->scratch;
	sbuf_reset(sb);
	lx->interps.n = lx->iparts.n = lx->ilocs.n = 0;
	t->kind = PCL_T_STRING;
	advance(lx, 1); /* the opening quote */
	for (;;) {
		if (lx->pos >= lx->len) {
			pcl_error(lx->prog, t->loc, PCL_E0, "unterminated string");
			t->kind = PCL_T_BAD;
			return;
		}
		unsigned char c = lx->buf[lx->pos];
		if (c == '"') {
			advance(lx, 1);
			break;
		}
		if (c == '\n') {
			struct pcl_diag *d = pcl_error(lx->prog, here(lx), PCL_E0, "newline inside a string");
			pcl_diag_hint(d, "close the string on the same line, or write \\n for a newline");
			t->kind = PCL_T_BAD;
			return; /* the newline is left for the caller: the next line lexes normally */
		}
		if (c == '\\') {
			struct pcl_loc at = here(lx);
			if (lx->pos + 1 >= lx->len) {
				advance(lx, 1);
				continue; /* the unterminated-string error follows */
			}
			unsigned char e = lx->buf[lx->pos + 1];
			const char *out = NULL;
			switch (e) {
			case 'n': out = "\n"; break;
			case 't': out = "\t"; break;
			case 'r': out = "\r"; break;
			case '"': out = "\""; break;
			case '\\': out = "\\"; break;
			}
			if (!out) {
				struct pcl_diag *d;
				if (e >= 0x21 && e < 0x7F)
					d = pcl_error(lx->prog, at, PCL_E0, "unknown escape '\\%c' in string", e);
				else
					d = pcl_error(lx->prog, at, PCL_E0, "unknown escape in string (a backslash before byte 0x%02X)", e);
				pcl_diag_hint(d, "the escapes are \\n \\t \\r \\\" \\\\; '$' needs none ('$${' is a literal '${')");
				t->kind = PCL_T_BAD;
				advance(lx, 1);
				continue;
			}
			sbuf_puts(sb, out);
			advance(lx, 2);
			continue;
		}
		if (c == '$' && dollar_special(lx, lx->pos)) {
			if (lx->buf[lx->pos + 1] == '{') {
				if (!lex_interp(lx, sb->sb_len))
					t->kind = PCL_T_BAD;
				continue;
			}
			if (lx->pos + 2 < lx->len && lx->buf[lx->pos + 2] == '{') {
				sbuf_puts(sb, "${"); /* "$${": a literal "${" */
				advance(lx, 3);
				continue;
			}
		}
		if (c < 0x20 && c != '\t') {
			pcl_error(lx->prog, here(lx), PCL_E0, "control character 0x%02X inside a string", c);
			t->kind = PCL_T_BAD;
			lx->pos++;
			lx->col++;
			continue;
		}
		if (c < 0x80) {
			sbuf_putc(sb, (char)c);
			advance(lx, 1);
			continue;
		}
		uint32_t cp;
		size_t n = utf8_decode(lx->buf + lx->pos, lx->len - lx->pos, &cp);
		if (!n) {
			pcl_error(lx->prog, here(lx), PCL_E0, "invalid UTF-8 byte 0x%02X in string", c);
			t->kind = PCL_T_BAD;
			/* One error for a broken sequence, not one per byte. */
			do {
				lx->pos++;
				lx->col++;
			} while (lx->pos < lx->len && (lx->buf[lx->pos] & 0xC0) == 0x80);
			continue;
		}
		sbuf_append(sb, lx->buf + lx->pos, n);
		advance(lx, n);
	}
	if (t->kind == PCL_T_STRING) {
		t->text = keep_string(lx->prog, (const unsigned char *)sbuf_str(sb), sb->sb_len);
		t->len = sb->sb_len;
		if (lx->interps.n)
			keep_interps(lx, t);
	}
}

static void lex_number(struct pcl_lexer *lx, struct pcl_token *t)
{
	size_t start = lx->pos;
	bool neg = lx->buf[lx->pos] == '-';
	if (neg)
		advance(lx, 1);
	if (lx->pos >= lx->len || !is_digit(lx->buf[lx->pos])) {
		pcl_error(lx->prog, t->loc, PCL_E0, "'-' must be followed by digits");
		t->kind = PCL_T_BAD;
		return;
	}
	/* Accumulate as a negative number: -2^63 has no positive twin. */
	int64_t v = 0;
	bool overflow = false;
	while (lx->pos < lx->len && is_digit(lx->buf[lx->pos])) {
		int d = lx->buf[lx->pos] - '0';
		if (v < (INT64_MIN + d) / 10)
			overflow = true;
		else
			v = v * 10 - d;
		advance(lx, 1);
	}
	if (!neg && v == INT64_MIN)
		overflow = true;
	if (lx->pos < lx->len && is_ident_char(lx->buf[lx->pos])) {
		while (lx->pos < lx->len && is_ident_char(lx->buf[lx->pos]))
			advance(lx, 1);
		pcl_error(lx->prog, t->loc, PCL_E0, "malformed number '%.*s'", (int)(lx->pos - start > 40 ? 40 : lx->pos - start),
			  (const char *)lx->buf + start);
		t->kind = PCL_T_BAD;
		return;
	}
	if (overflow) {
		pcl_error(lx->prog, t->loc, PCL_E0, "integer literal out of range (integers are 64-bit signed)");
		t->kind = PCL_T_BAD;
		return;
	}
	t->kind = PCL_T_INT;
	t->ival = neg ? v : -v;
}

/* Reports a run of bytes that cannot begin any token as one error. */
static void lex_stray(struct pcl_lexer *lx, struct pcl_token *t)
{
	unsigned char c = lx->buf[lx->pos];
	uint32_t cp = 0;
	size_t n = c < 0x80 ? 1 : utf8_decode(lx->buf + lx->pos, lx->len - lx->pos, &cp);
	if (c >= 0x21 && c < 0x7F)
		pcl_error(lx->prog, t->loc, PCL_E0, "unexpected character '%c'", c);
	else if (n > 1)
		pcl_error(lx->prog, t->loc, PCL_E0, "unexpected character U+%04X", cp);
	else if (c >= 0x80)
		pcl_error(lx->prog, t->loc, PCL_E0, "invalid UTF-8 byte 0x%02X", c);
	else
		pcl_error(lx->prog, t->loc, PCL_E0, "unexpected control character 0x%02X", c);
	while (lx->pos < lx->len && !starts_something(lx->buf[lx->pos])) {
		if (lx->buf[lx->pos] >= 0x80) {
			size_t k = utf8_decode(lx->buf + lx->pos, lx->len - lx->pos, &cp);
			if (k) {
				advance(lx, k);
				continue;
			}
			lx->pos++;
			lx->col++;
			continue;
		}
		advance(lx, 1);
	}
	t->kind = PCL_T_BAD;
}

void pcl_lex_next(struct pcl_lexer *lx, struct pcl_token *t)
{
	memset(t, 0, sizeof(*t));
	for (;;) {
		if (lx->pos >= lx->len) {
			t->kind = PCL_T_EOF;
			t->loc = here(lx);
			return;
		}
		unsigned char c = lx->buf[lx->pos];
		if (c == '\n') {
			newline(lx);
		} else if (c == ' ' || c == '\t' || c == '\r') {
			lx->pos++;
			lx->col++;
		} else if (c == '#') {
			skip_comment(lx);
		} else {
			break;
		}
	}
	t->loc = here(lx);
	unsigned char c = lx->buf[lx->pos];
	/* PCL_T_EOF (0) where c is no punctuation */
	static const unsigned char punct[256] = {
		['{'] = PCL_T_LBRACE, ['}'] = PCL_T_RBRACE, ['['] = PCL_T_LBRACK, [']'] = PCL_T_RBRACK,
		['='] = PCL_T_EQ,     [','] = PCL_T_COMMA,  [';'] = PCL_T_SEMI,   ['.'] = PCL_T_DOT,
	};
	if (punct[c]) {
		t->kind = (enum pcl_tok_kind)punct[c];
		lx->pos++;
		lx->col++;
		return;
	}
	if (c == '"') {
		lex_string(lx, t);
	} else if (is_digit(c) || c == '-') {
		lex_number(lx, t);
	} else if (is_ident_start(c)) {
		size_t start = lx->pos;
		while (lx->pos < lx->len && is_ident_char(lx->buf[lx->pos]))
			lx->pos++;
		lx->col += (uint32_t)(lx->pos - start); /* identifiers are ASCII */
		t->kind = PCL_T_IDENT;
		t->len = lx->pos - start;
		t->text = intern(lx->prog, lx->buf + start, t->len);
	} else {
		lex_stray(lx, t);
	}
}

const char *pcl_tok_describe(const struct pcl_token *t, char *buf, size_t size)
{
	switch (t->kind) {
	case PCL_T_EOF: return "end of file";
	case PCL_T_IDENT:
		snprintf(buf, size, "'%.40s'", t->text);
		return buf;
	case PCL_T_STRING: return "a string";
	case PCL_T_INT: return "an integer";
	case PCL_T_LBRACE: return "'{'";
	case PCL_T_RBRACE: return "'}'";
	case PCL_T_LBRACK: return "'['";
	case PCL_T_RBRACK: return "']'";
	case PCL_T_EQ: return "'='";
	case PCL_T_COMMA: return "','";
	case PCL_T_SEMI: return "';'";
	case PCL_T_DOT: return "'.'";
	case PCL_T_BAD: return "an invalid token";
	}
	return "a token";
}
