/*
 * vault.c - the vault file and resolving one secret (vault.h).
 *
 * The vault's JSON is parsed here rather than with jansson: a parser that
 * copies strings through buffers it grows and frees would leave the
 * secrets' bytes in freed memory. This one decodes each string once into a
 * buffer of its final size, and every buffer that held a value is wiped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/utf8.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "desc.h"
#include "vault.h"

void secret_wipe(void *p, size_t n)
{
	if (!p)
		return;
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

struct jp {
	const char *s;
	size_t n, i;
	struct sbuf *err;
	bool failed;
};

static unsigned line_at(const struct jp *p, size_t at)
{
	unsigned line = 1;
	for (size_t k = 0; k < at && k < p->n; k++)
		line += p->s[k] == '\n';
	return line;
}

__attribute__((format(printf, 3, 4))) static void jp_fail(struct jp *p, size_t at, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	sbuf_printf(p->err, "line %u: ", line_at(p, at));
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(p->err, fmt, ap);
	va_end(ap);
}

static void skip_ws(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int k = 0; k < 4; k++) {
		char c = s[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The JSON string at p->i (its opening quote), decoded into a buffer of
 * the raw span's size (never regrown): malloc'd, or NULL after jp_fail.
 * what names it in messages ("a name", "the value of \"X\"").
 */
static char *parse_string(struct jp *p, size_t *len, const char *what)
{
	size_t start = p->i;
	if (p->i >= p->n || p->s[p->i] != '"') {
		jp_fail(p, p->i, "expected %s (a string in double quotes)", what);
		return NULL;
	}
	size_t end = ++p->i;
	while (end < p->n && p->s[end] != '"')
		end += p->s[end] == '\\' ? 2 : 1;
	if (end >= p->n) {
		jp_fail(p, start, "%s has no closing quote", what);
		return NULL;
	}
	char *out = xmalloc(end - p->i + 1);
	size_t o = 0;
	const char *why = NULL;
	while (p->i < end && !why) {
		unsigned char c = (unsigned char)p->s[p->i];
		if (c == '\n' || c == '\r') {
			why = "holds a line break";
		} else if (c < 0x20) {
			why = "holds a control character (JSON needs it escaped)";
		} else if (c != '\\') {
			uint32_t cp;
			size_t k = utf8_decode((const unsigned char *)p->s + p->i, end - p->i, &cp);
			if (!k) {
				why = "is not valid UTF-8";
				break;
			}
			memcpy(out + o, p->s + p->i, k);
			o += k;
			p->i += k;
			continue;
		} else {
			char e = p->s[p->i + 1];
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e && simple) {
				out[o++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
				p->i += 2;
				continue;
			}
			uint32_t cp, lo;
			if (e != 'u' || end - p->i < 6 || hex4(p->s + p->i + 2, &cp) < 0) {
				why = "holds an invalid escape";
				break;
			}
			p->i += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				why = "holds an unpaired surrogate escape";
				break;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
				    hex4(p->s + p->i + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
					why = "holds an unpaired surrogate escape";
					break;
				}
				p->i += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0) {
				why = "holds a NUL (\\u0000)";
				break;
			}
			o += put_utf8(out + o, cp);
		}
	}
	out[o] = '\0';
	if (why) {
		jp_fail(p, p->i, "%s %s", what, why);
		secret_wipe(out, end - start);
		free(out);
		return NULL;
	}
	p->i = end + 1;
	*len = o;
	return out;
}

static void free_entries(struct vault_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		secret_wipe(e[i].value, e[i].len);
		free(e[i].value);
		free(e[i].name);
	}
	free(e);
}

int vault_parse(const char *buf, size_t len, struct vault *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct jp p = {buf, len, 0, err, false};
	VEC(struct vault_entry) v = {0};
	skip_ws(&p);
	if (p.i >= p.n || p.s[p.i] != '{') {
		jp_fail(&p, p.i, "not a JSON object: a vault file is {\"NAME\": \"value\", ...}");
		goto bad;
	}
	p.i++;
	skip_ws(&p);
	if (p.i < p.n && p.s[p.i] == '}') {
		p.i++;
	} else {
		for (;;) {
			skip_ws(&p);
			size_t at = p.i, nlen, vlen;
			char *name = parse_string(&p, &nlen, "a name");
			if (!name)
				goto bad;
			for (size_t k = 0; k < v.n; k++)
				if (!strcmp(v.v[k].name, name)) {
					jp_fail(&p, at, "\"%s\" is given twice", name);
					free(name);
					goto bad;
				}
			skip_ws(&p);
			if (p.i >= p.n || p.s[p.i] != ':') {
				jp_fail(&p, p.i, "expected ':' after \"%s\"", name);
				free(name);
				goto bad;
			}
			p.i++;
			skip_ws(&p);
			struct sbuf what = SBUF_INIT;
			sbuf_printf(&what, "the value of \"%s\"", name);
			char *value = p.i < p.n && p.s[p.i] == '"' ? parse_string(&p, &vlen, what.sb_buf) : NULL;
			if (!value && !p.failed)
				jp_fail(&p, p.i, "%s is not a string: vault values are single-line strings", what.sb_buf);
			else if (value && memchr(value, '\n', vlen))
				jp_fail(&p, at, "%s is not a single line: vault values are single-line strings", what.sb_buf);
			else if (value && memchr(value, '\r', vlen))
				jp_fail(&p, at, "%s holds a carriage return: vault values are single-line strings",
					what.sb_buf);
			sbuf_free(&what);
			struct vault_entry e = {name, value, value ? vlen : 0};
			VEC_PUSH(&v, e);
			if (p.failed)
				goto bad;
			skip_ws(&p);
			if (p.i < p.n && p.s[p.i] == ',') {
				p.i++;
				continue;
			}
			if (p.i < p.n && p.s[p.i] == '}') {
				p.i++;
				break;
			}
			jp_fail(&p, p.i, "expected ',' or '}'");
			goto bad;
		}
	}
	skip_ws(&p);
	if (p.i != p.n) {
		jp_fail(&p, p.i, "something follows the object");
		goto bad;
	}
	out->entries = v.v;
	out->n = v.n;
	return 0;
bad:
	free_entries(v.v, v.n);
	return -EBADMSG;
}

int vault_open(struct punix_ops *o, const char *path, int64_t uid, struct vault *out, struct sbuf *err)
{
	memset(out, 0, sizeof(*out));
	struct ops_stat st;
	int r = o->stat(o, path, 1, &st);
	if (r < 0) {
		sbuf_printf(err, "cannot read the vault file %s: %s", path, ops_strerror(r));
		return r;
	}
	if (st.type != OPS_FT_REG) {
		sbuf_printf(err, "the vault file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.uid != uid) {
		sbuf_printf(err,
			    "the vault file %s is not owned by the user punix runs as (uid %lld, the file's %lld): "
			    "chown it to that user, then chmod 600 %s",
			    path, (long long)uid, (long long)st.uid, path);
		return -EPERM;
	}
	if (st.mode & 077) {
		sbuf_printf(err, "the vault file %s can be read or written by its group or others (mode %04o): chmod 600 %s",
			    path, (unsigned)st.mode, path);
		return -EPERM;
	}
	char *buf = NULL;
	size_t len = 0;
	r = o->read_file(o, path, VAULT_MAX_BYTES, &buf, &len);
	if (r < 0) {
		sbuf_printf(err, "cannot read the vault file %s: %s", path,
			    r == -EFBIG ? "larger than 1 MiB" : ops_strerror(r));
		return r;
	}
	/* the file read is the one checked: the same file (device, inode), owner and mode after the read */
	struct ops_stat after;
	if (o->stat(o, path, 1, &after) < 0 || after.dev != st.dev || after.ino != st.ino || after.uid != st.uid ||
	    after.mode != st.mode) {
		secret_wipe(buf, len);
		free(buf);
		sbuf_printf(err, "the vault file %s changed while it was read: read it again when nothing replaces it", path);
		return -EAGAIN;
	}
	struct sbuf why = SBUF_INIT;
	r = vault_parse(buf, len, out, &why);
	secret_wipe(buf, len);
	free(buf);
	if (r < 0)
		sbuf_printf(err, "the vault file %s is not valid: %s", path, sbuf_str(&why));
	else
		out->path = xstrdup(path);
	sbuf_free(&why);
	return r;
}

const char *vault_get(const struct vault *v, const char *name, size_t *len)
{
	for (size_t i = 0; v && i < v->n; i++)
		if (!strcmp(v->entries[i].name, name)) {
			if (len)
				*len = v->entries[i].len;
			return v->entries[i].value;
		}
	return NULL;
}

void vault_free(struct vault *v)
{
	free_entries(v->entries, v->n);
	free(v->path);
	memset(v, 0, sizeof(*v));
}

/* NAME's value in env (NAME=VALUE entries, NULL-terminated), or NULL. */
static const char *env_lookup(char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

int secret_resolve(const struct secret_sources *ss, int kind, const char *name, char **value, size_t *len,
		   struct sbuf *why)
{
	*value = NULL;
	*len = 0;
	const char *x = NULL;
	size_t n = 0;
	switch (kind) {
	case ENV_FROM_ENV:
		if (!(x = env_lookup(ss ? ss->env : NULL, name))) {
			sbuf_puts(why, "not set");
			return -1;
		}
		n = strlen(x);
		break;
	case ENV_FROM_VAULT:
		if (!ss || !ss->vault) {
			sbuf_puts(why, "no vault file was given (--vault-secrets FILE)");
			return -1;
		}
		if (!(x = vault_get(ss->vault, name, &n))) {
			sbuf_printf(why, "not in the vault file %s", ss->vault->path ? ss->vault->path : "given");
			return -1;
		}
		break;
	case ENV_FROM_FILE: {
		if (!ss || !ss->ops) {
			sbuf_puts(why, "no file can be read here");
			return -1;
		}
		char *buf = NULL;
		size_t blen = 0;
		int r = ss->ops->read_file(ss->ops, name, 1 << 16, &buf, &blen);
		if (r < 0) {
			sbuf_puts(why, r == -EFBIG ? "larger than 64 KiB" : ops_strerror(r));
			return -1;
		}
		if (blen && buf[blen - 1] == '\n')
			buf[--blen] = '\0';
		*value = buf;
		*len = blen;
		return 0;
	}
	default:
		sbuf_puts(why, "not a secret");
		return -1;
	}
	*value = xstrndup(x, n);
	*len = n;
	return 0;
}
