/*
 * ssh_config.c - OpenSSH's ssh_config(5) and known_hosts read from bytes
 * (ssh_config.h). Pure: no effects. The rules are those of OpenSSH's
 * readconf.c and hostfile.c, so that a config ssh reads means the same
 * here, and one it refuses is refused here, with the place.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/xalloc.h"
#include "ssh_config.h"

enum {
	LINE_MAX_BYTES = 4096,
	MAX_DEPTH = 16,              /* OpenSSH's READCONF_MAX_DEPTH */
	MAX_IDENTITIES = 100,        /* SSH_MAX_IDENTITY_FILES: ssh stops there too */
	MAX_HOSTS_FILES = 32,        /* SSH_MAX_HOSTS_FILES */
	POS_MAX = 3 * MAX_DEPTH + 2, /* the Includes of a file MAX_DEPTH deep have a place too */
};

/*
 * Where a value was read: its line in the top file, or the Include's line,
 * argument and file among the pattern's matches, then the same inside that
 * file... Ordered component by component, positions order values as ssh
 * reads them, whatever order the caller fed the included files in.
 */
struct pos {
	size_t c[POS_MAX];
	size_t n;
};

static int pos_cmp(const struct pos *a, const struct pos *b)
{
	for (size_t i = 0; i < a->n && i < b->n; i++)
		if (a->c[i] != b->c[i])
			return a->c[i] < b->c[i] ? -1 : 1;
	return (a->n > b->n) - (a->n < b->n);
}

/* A value as written; set when where is. */
struct val {
	char *s;
	int n;
	struct pos at;
	char *where; /* "path:line", for the warnings its expansion may give */
};

/* The keywords read; the first NVAL take one value each, in raw->v[keyword]. */
enum kw { K_HOSTNAME, K_USER, K_PORT, K_UKHF, K_STRICT, K_IDENTITYFILE, K_HOST, K_MATCH, K_INCLUDE, NKW };
#define NVAL (K_STRICT + 1)
static const char *const keywords[NKW] = {
    "HostName", "User",  "Port",   "UserKnownHostsFile", "StrictHostKeyChecking", "IdentityFile",
    "Host",     "Match", "Include"};

struct ssh_config_raw {
	char *alias, *home, *local_user;
	struct val v[NVAL];
	struct val *ids;
	size_t nids;
	struct val *incs; /* c->includes, with their places */
	size_t nincs;
	char **notes; /* warnings found while reading; those of expanding are made again each time */
	size_t nnotes;
};

/* The reading of one file. */
struct rd {
	struct ssh_host_config *c;
	const char *path;
	struct pos at; /* of the line being read: the file's base, then its line */
	size_t line;
	bool active;
	struct sbuf *err;
};

#define is_ws(ch) ((ch) == ' ' || (ch) == '\t' || (ch) == '\r' || (ch) == '\n')

static size_t skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && is_ws(p[i]))
		i++;
	return i;
}

/* A list doubles when its length reaches a power of two: growing it one by one copies it log n times, not n. */
#define GROW(list, n) ((n) & ((n)-1) ? (list) : xreallocarray((list), (n) ? 2 * (n) : 1, sizeof(*(list))))

static void push(char ***list, size_t *n, char *s)
{
	*list = GROW(*list, *n);
	(*list)[(*n)++] = s;
}

static void list_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

/* The index of word w in a space-separated list, or -1: the tables of names are such lists. */
static int word_index(const char *list, const char *w, bool icase)
{
	size_t n = strlen(w);
	for (int i = 0; *list; i++, list += strcspn(list, " ") + (list[strcspn(list, " ")] == ' '))
		if (strcspn(list, " ") == n && (icase ? strncasecmp(list, w, n) : strncmp(list, w, n)) == 0)
			return i;
	return -1;
}

/* A message about the line being read: an error (-EBADMSG), or with warn a warning (0). */
__attribute__((format(printf, 3, 4))) static int say(struct rd *r, bool warn, const char *fmt, ...)
{
	struct sbuf b = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_printf(&b, "%s:%zu: ", r->path, r->line);
	sbuf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (warn)
		push(&r->c->raw->notes, &r->c->raw->nnotes, sbuf_detach(&b, NULL));
	else
		sbuf_puts(r->err, sbuf_str(&b));
	sbuf_free(&b);
	return warn ? 0 : -EBADMSG;
}
#define bad(r, ...) say(r, false, __VA_ARGS__)

/* ---- patterns ----------------------------------------------------------------------------- */

/* OpenSSH's match_pattern (`*` any run, `?` one character); backtracks to the last `*` only, never exponentially. */
static bool glob_match(const char *s, const char *p, size_t pn, bool icase)
{
	size_t si = 0, pi = 0, star = SIZE_MAX, mark = 0;
	while (s[si]) {
		if (pi < pn && (p[pi] == '?' ||
		                (p[pi] != '*' && (icase ? tolower((unsigned char)p[pi]) == tolower((unsigned char)s[si])
		                                        : p[pi] == s[si])))) {
			si++;
			pi++;
		} else if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/* OpenSSH's match_pattern_list: 1 if a pattern of the comma-separated list matches, -1 if a !pattern does, else 0. */
static int match_list(const char *s, const char *list, bool icase)
{
	int got = 0;
	for (const char *p = list;; p++) {
		bool neg = *p == '!';
		size_t n = strcspn(p + neg, ",");
		if (glob_match(s, p + neg, n, icase)) {
			if (neg)
				return -1;
			got = 1;
		}
		p += neg + n;
		if (!*p)
			return got;
	}
}

/* ---- values ------------------------------------------------------------------------------- */

/* Whether v was set before the line being read: then it wins over this line, and Match sees it. */
static bool so_far(const struct rd *r, const struct val *v)
{
	return v->where && pos_cmp(&v->at, &r->at) < 0;
}

static void set_val(struct rd *r, struct val *v, const char *s, int n, const struct pos *at)
{
	struct sbuf b = SBUF_INIT;
	sbuf_printf(&b, "%s:%zu", r->path, r->line);
	free(v->s);
	free(v->where);
	v->s = s ? xstrdup(s) : NULL;
	v->n = n;
	v->at = *at;
	v->where = sbuf_detach(&b, NULL);
}

/* A new value in a list kept in reading order, where a value read at `at` goes. */
static struct val *insert_val(struct val **list, size_t *n, const struct pos *at)
{
	size_t k = *n;
	while (k > 0 && pos_cmp(&(*list)[k - 1].at, at) > 0)
		k--;
	*list = GROW(*list, *n);
	memmove(&(*list)[k + 1], &(*list)[k], ((*n)++ - k) * sizeof(**list));
	memset(&(*list)[k], 0, sizeof(**list));
	return &(*list)[k];
}

static void val_free(struct val *v)
{
	free(v->s);
	free(v->where);
}

/* The %-tokens a value may hold: ssh refuses others when it expands the value. */
static int check_tokens(struct rd *r, const char *kw, const char *s, const char *allowed)
{
	for (const char *p = strchr(s, '%'); p; p = strchr(p + 2, '%')) {
		if (!p[1])
			return bad(r, "%s %.64s: a %% at the end (%%%% is a percent sign)", kw, s);
		if (p[1] != '%' && !strchr(allowed, p[1]))
			return bad(r, "%s %.64s: unknown token %%%c", kw, s, p[1]);
	}
	return 0;
}

/* IdentityFile adds to a list: in reading order, a duplicate of one read before dropped (as ssh does). */
static int add_identity(struct rd *r, const char *s)
{
	struct ssh_config_raw *w = r->c->raw;
	for (size_t i = 0; i < w->nids; i++) {
		if (strcmp(w->ids[i].s, s) != 0)
			continue;
		if (pos_cmp(&w->ids[i].at, &r->at) < 0)
			return 0;
		val_free(&w->ids[i]);
		memmove(&w->ids[i], &w->ids[i + 1], (w->nids - i - 1) * sizeof(*w->ids));
		w->nids--;
		break;
	}
	if (w->nids == MAX_IDENTITIES)
		return bad(r, "more than %d IdentityFile for this host (ssh stops there too)", MAX_IDENTITIES);
	set_val(r, insert_val(&w->ids, &w->nids, &r->at), s, 0, &r->at);
	return 0;
}

/* Puts s's ~ word into b: home for "~", "~/x", "~local_user/x", else as is, noted in missed. Returns the rest. */
static const char *put_tilde(const struct ssh_config_raw *w, const char *s, struct sbuf *b, struct sbuf *missed)
{
	if (s[0] != '~')
		return s;
	size_t u = strcspn(s + 1, "/");
	if (w->home &&
	    (u == 0 || (w->local_user && strlen(w->local_user) == u && strncmp(s + 1, w->local_user, u) == 0)))
		sbuf_puts(b, w->home); /* as is: a % in the home directory is no token */
	else {
		sbuf_printf(missed, " %.*s", (int)(1 + u), s);
		sbuf_append(b, s, 1 + u);
	}
	return s + 1 + u;
}

static void add_include(struct rd *r, const char *arg, size_t argi)
{
	struct ssh_config_raw *w = r->c->raw;
	struct sbuf b = SBUF_INIT, missed = SBUF_INIT;
	struct pos at = r->at;
	at.c[at.n++] = argi;
	sbuf_puts(&b, put_tilde(w, arg, &b, &missed));
	if (missed.sb_len)
		say(r, true, "Include %.64s: not expanded here:%s", arg, missed.sb_buf);
	set_val(r, insert_val(&w->incs, &w->nincs, &at), sbuf_str(&b), 0, &at);
	sbuf_free(&b);
	sbuf_free(&missed);
}

/* HostName with %h expanded to the alias (validated to hold only %h and %%). */
static char *expand_hostname(const char *s, const char *alias)
{
	struct sbuf b = SBUF_INIT;
	for (; *s; s++) {
		if (s[0] == '%' && (s[1] == 'h' || s[1] == '%'))
			sbuf_puts(&b, *++s == 'h' ? alias : "%");
		else
			sbuf_putc(&b, *s);
	}
	return sbuf_detach(&b, NULL);
}

/* ---- keywords ----------------------------------------------------------------------------- */

/* StrictHostKeyChecking's words, and the value of each */
static const char strict_words[] = "no false off yes true accept-new ask";
static const int strict_value[] = {0, 0, 0, 1, 1, 2, 3};
/* The Match criteria OpenSSH knows; those after host..localuser need what a pure reader has not. */
static const char criteria[] = "host originalhost user localuser canonical final exec localnetwork tagged command "
                               "version sessiontype";

/* A port 1..65535 as ssh's strtonum reads it, or "ssh" (other service names would need /etc/services); else -1. */
static int parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return strcasecmp(s, "ssh") == 0 ? 22 : end != s && !*end && v >= 1 && v <= 65535 ? (int)v : -1;
}

static void do_host(struct rd *r, char **av, size_t ac)
{
	r->active = false;
	for (size_t i = 0; i < ac; i++) {
		bool neg = av[i][0] == '!';
		if (glob_match(r->c->raw->alias, av[i] + neg, strlen(av[i] + neg), false)) {
			r->active = !neg;
			if (neg)
				return; /* a negated match beats the others, whatever their order */
		}
	}
}

static int do_match(struct rd *r, char **av, size_t ac)
{
	struct ssh_config_raw *w = r->c->raw;
	const char *undecided = NULL;
	bool result = true;
	for (size_t i = 0, attributes = 0; i < ac; i++) {
		const char *a = av[i] + (av[i][0] == '!');
		bool neg = a != av[i];
		if (strcasecmp(a, "all") == 0) {
			/* OpenSSH's own rule: after at most one other criterion, and last */
			if (attributes > 1 || i + 1 < ac)
				return bad(r, "Match: %s cannot be combined with other criteria", av[i]);
			result = result && !neg;
			break;
		}
		attributes++;
		if (strcasecmp(a, "canonical") == 0 || strcasecmp(a, "final") == 0) {
			undecided = a;
			continue;
		}
		if (word_index(criteria, a, true) < 0)
			return bad(r, "Match: unknown criterion %.64s", a);
		if (i + 1 == ac)
			return bad(r, "Match %s needs patterns", a);
		const char *list = av[++i], *subject = NULL;
		char *host = NULL;
		if (strcasecmp(a, "host") == 0) /* the HostName so far, as ssh's match_cfg_line takes it */
			subject = host = so_far(r, &w->v[K_HOSTNAME]) ? expand_hostname(w->v[K_HOSTNAME].s, w->alias)
			                                              : xstrdup(w->alias);
		else if (strcasecmp(a, "originalhost") == 0)
			subject = w->alias;
		else if (strcasecmp(a, "user") == 0)
			subject = so_far(r, &w->v[K_USER]) ? w->v[K_USER].s : w->local_user;
		else if (strcasecmp(a, "localuser") == 0)
			subject = w->local_user;
		if (!subject)
			undecided = a;
		else if ((match_list(subject, list, host || strcasecmp(a, "originalhost") == 0) == 1) == neg)
			result = false;
		free(host);
	}
	r->active = result && !undecided;
	if (result && undecided)
		say(r, true, "Match %s cannot be decided here: the block is skipped", undecided);
	return 0;
}

static int do_keyword(struct rd *r, enum kw kw, char **av, size_t ac)
{
	struct ssh_config_raw *w = r->c->raw;
	const char *name = keywords[kw];
	int n = 0, rc;
	if (ac == 0) { /* as ssh: an empty list (a # after the keyword) is a Host matching nothing, no file */
		r->active = kw == K_HOST ? false : r->active;
		return kw == K_HOST || kw == K_INCLUDE || kw == K_UKHF ? 0 : bad(r, "%s needs a value", name);
	}
	for (size_t i = 0; i < ac; i++)
		if (!av[i][0])
			return bad(r, "%s: an empty value", name);
	if (kw < NVAL && kw != K_UKHF && ac > 1)
		return bad(r, "%s takes one value, not %zu", name, ac);
	bool none = (kw == K_IDENTITYFILE || kw == K_UKHF) && strcasecmp(av[0], "none") == 0;
	switch (kw) {
	case K_HOST: do_host(r, av, ac); return 0;
	case K_MATCH: return do_match(r, av, ac);
	case K_INCLUDE:
		for (size_t i = 0; r->active && i < ac; i++)
			add_include(r, av[i], i);
		return 0;
	case K_PORT:
		if ((n = parse_port(av[0])) < 0)
			return bad(r, "Port %.64s is not a number 1..65535 (nor ssh: no other service names here)",
			           av[0]);
		break;
	case K_STRICT:
		if ((n = word_index(strict_words, av[0], true)) < 0)
			return bad(r, "%s %.64s: not yes, no, accept-new, ask or off", name, av[0]);
		n = strict_value[n];
		break;
	case K_UKHF:
		if (ac > MAX_HOSTS_FILES)
			return bad(r, "%s: more than %d files", name, MAX_HOSTS_FILES);
		for (size_t i = 0; ac > 1 && i < ac; i++)
			if (strcasecmp(av[i], "none") == 0)
				return bad(r, "%s: none must be alone", name);
		break;
	default: break;
	}
	if (!r->active || (kw != K_IDENTITYFILE && so_far(r, &w->v[kw])))
		return 0; /* validated as ssh does, but not taken */
	for (size_t i = 0; !none && (kw == K_HOSTNAME || kw == K_IDENTITYFILE || kw == K_UKHF) && i < ac; i++)
		if ((rc = check_tokens(r, name, av[i], kw == K_HOSTNAME ? "h" : "CdhijkLlnpru")) < 0)
			return rc;
	if (kw == K_IDENTITYFILE)
		return add_identity(r, none ? "none" : av[0]);
	set_val(r, &w->v[kw], kw == K_PORT || kw == K_STRICT ? NULL : none ? "none" : av[0], n, &r->at);
	return 0;
}

/* ---- lines -------------------------------------------------------------------------------- */

/*
 * OpenSSH's argv_split: arguments split at blanks; "..." and '...' quote,
 * also inside an argument; a backslash escapes a quote, a backslash and
 * (outside quotes) a space; a # that starts an argument ends the line.
 */
static int split_args(const char *s, size_t n, char ***av, size_t *ac)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t')
			continue;
		if (s[i] == '#')
			break;
		char *a = xmalloc(n - i + 1), quote = 0;
		size_t j = 0;
		for (; i < n; i++) {
			char ch = s[i], next = i + 1 < n ? s[i + 1] : 0;
			if (ch == '\\' && (next == '"' || next == '\'' || next == '\\' || (!quote && next == ' ')))
				a[j++] = s[++i];
			else if (!quote && (ch == ' ' || ch == '\t'))
				break;
			else if (!quote && (ch == '"' || ch == '\''))
				quote = ch;
			else if (quote && ch == quote)
				quote = 0;
			else
				a[j++] = ch;
		}
		a[j] = '\0';
		push(av, ac, a);
		if (quote)
			return -1;
	}
	return 0;
}

static int do_line(struct rd *r, const char *p, size_t n)
{
	if (n > LINE_MAX_BYTES)
		return bad(r, "the line is over %d bytes", LINE_MAX_BYTES);
	if (memchr(p, '\0', n))
		return bad(r, "the line holds a NUL byte");
	while (n && (is_ws(p[n - 1]) || p[n - 1] == '\f'))
		n--;
	/* ssh's strdelim also takes a '=' before the keyword, and ignores a line whose keyword is empty */
	size_t i = skip_ws(p, n, 0), k, end;
	i = skip_ws(p, n, i + (i < n && p[i] == '='));
	for (k = i; i < n && !is_ws(p[i]) && p[i] != '=';)
		i++;
	if ((end = i) == k || p[k] == '#')
		return 0;
	i = skip_ws(p, n, i);
	i = skip_ws(p, n, i + (i < n && p[i] == '=')); /* blanks, at most one '=', blanks */
	if (i == n)
		return bad(r, "%.*s has no value", (int)(end - k > 64 ? 64 : end - k), p + k);
	char **av = NULL;
	size_t ac = 0;
	int rc = split_args(p + i, n - i, &av, &ac) < 0 ? bad(r, "an unterminated quote") : 0;
	for (size_t j = 0; rc == 0 && j < NKW; j++)
		if (strlen(keywords[j]) == end - k && strncasecmp(p + k, keywords[j], end - k) == 0)
			rc = do_keyword(r, (enum kw)j, av, ac);
	list_free(av, ac);
	return rc;
}

/* ---- the result --------------------------------------------------------------------------- */

static void clear_public(struct ssh_host_config *c)
{
	free(c->hostname);
	free(c->user);
	list_free(c->identity_files, c->nidentity);
	free(c->user_known_hosts_file);
	list_free(c->warnings, c->nwarning);
	free(c->includes); /* its strings are those of raw->incs */
	*c = (struct ssh_host_config){.raw = c->raw, .strict_host_key_checking = -1};
}

/* IdentityFile, UserKnownHostsFile: ~, then %-tokens, as ssh does when it uses them; %h n d u r p, in that order. */
static char *expand_path(struct ssh_host_config *c, const char *kw, const struct val *v, const char *const vals[6])
{
	if (strcmp(v->s, "none") == 0)
		return xstrdup("none");
	struct sbuf b = SBUF_INIT, missed = SBUF_INIT;
	sbuf_printf(&missed, "%s: %s %s: not expanded here:", v->where, kw, v->s);
	size_t plain = missed.sb_len;
	const char *s = put_tilde(c->raw, v->s, &b, &missed), *known = "hndurp";
	for (; *s; s++) {
		const char *k = s[0] == '%' && s[1] ? strchr(known, s[1]) : NULL;
		if (s[0] == '%' && s[1] == '%') {
			sbuf_putc(&b, *++s);
		} else if (k && vals[k - known]) {
			sbuf_puts(&b, vals[k - known]);
			s++;
		} else if (s[0] == '%' && s[1]) {
			sbuf_printf(&missed, " %%%c", s[1]);
			sbuf_append(&b, s++, 2);
		} else {
			if (s[0] == '$' && s[1] == '{')
				sbuf_puts(&missed, " ${...}");
			sbuf_putc(&b, *s);
		}
	}
	if (missed.sb_len > plain)
		push(&c->warnings, &c->nwarning, sbuf_detach(&missed, NULL));
	sbuf_free(&missed);
	return sbuf_detach(&b, NULL);
}

/* Makes the public fields from the values as written: again after each file fed, as %h may change. */
static void finish(struct ssh_host_config *c)
{
	struct ssh_config_raw *w = c->raw;
	struct val *v = w->v;
	clear_public(c);
	for (size_t i = 0; i < w->nnotes; i++)
		push(&c->warnings, &c->nwarning, xstrdup(w->notes[i]));
	c->includes = xcalloc(w->nincs + 1, sizeof(*c->includes));
	for (; c->ninclude < w->nincs; c->ninclude++)
		c->includes[c->ninclude] =
		    (struct ssh_config_include){w->incs[c->ninclude].s, w->incs[c->ninclude].where};
	char *h = v[K_HOSTNAME].where ? expand_hostname(v[K_HOSTNAME].s, w->alias) : xstrdup(w->alias);
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p); /* as ssh uses it: to connect, and in %h */
	c->hostname = v[K_HOSTNAME].where ? xstrdup(h) : NULL;
	c->user = v[K_USER].where ? xstrdup(v[K_USER].s) : NULL;
	c->port = v[K_PORT].where ? v[K_PORT].n : 0;
	c->strict_host_key_checking = v[K_STRICT].where ? v[K_STRICT].n : -1;
	char port[16];
	snprintf(port, sizeof(port), "%d", c->port ? c->port : 22);
	const char *vals[6] = {h, w->alias, w->home, w->local_user, c->user ? c->user : w->local_user, port};
	for (size_t i = 0; i < w->nids; i++)
		push(&c->identity_files, &c->nidentity, expand_path(c, "IdentityFile", &w->ids[i], vals));
	if (v[K_UKHF].where)
		c->user_known_hosts_file = expand_path(c, "UserKnownHostsFile", &v[K_UKHF], vals);
	free(h);
}

void ssh_host_config_free(struct ssh_host_config *c)
{
	struct ssh_config_raw *w = c->raw;
	clear_public(c);
	if (w) {
		free(w->alias);
		free(w->home);
		free(w->local_user);
		for (size_t i = 0; i < NVAL; i++)
			val_free(&w->v[i]);
		for (size_t i = 0; i < w->nids; i++)
			val_free(&w->ids[i]);
		for (size_t i = 0; i < w->nincs; i++)
			val_free(&w->incs[i]);
		free(w->ids);
		free(w->incs);
		list_free(w->notes, w->nnotes);
		free(w);
	}
	*c = (struct ssh_host_config){.strict_host_key_checking = -1};
}

/* Reads a file into r->c; an error in any file is one of the config: then r->c is freed. */
static int read_into(struct rd *r, const char *buf, size_t len)
{
	size_t base = r->at.n++;
	for (size_t at = 0, end; at < len; at = end + 1) {
		const char *nl = memchr(buf + at, '\n', len - at);
		end = nl ? (size_t)(nl - buf) : len;
		r->at.c[base] = ++r->line;
		int rc = do_line(r, buf + at, end - at);
		if (rc < 0) {
			ssh_host_config_free(r->c);
			return rc;
		}
	}
	finish(r->c);
	return 0;
}

int ssh_config_resolve(const char *path, const char *buf, size_t len, const char *host, const char *home,
                       const char *local_user, struct ssh_host_config *out, struct sbuf *err)
{
	*out = (struct ssh_host_config){.strict_host_key_checking = -1};
	if (!host || !*host) {
		sbuf_printf(err, "%s: no host to resolve the settings of", path);
		return -EINVAL;
	}
	struct ssh_config_raw *w = out->raw = xcalloc(1, sizeof(*out->raw));
	w->alias = xstrdup(host);
	w->home = home ? xstrdup(home) : NULL;
	w->local_user = local_user ? xstrdup(local_user) : NULL;
	struct rd r = {.c = out, .path = path, .active = true, .err = err};
	return read_into(&r, buf, len);
}

int ssh_config_feed(struct ssh_host_config *c, size_t i, size_t nth, const char *path, const char *buf, size_t len,
                    struct sbuf *err)
{
	if (!c->raw || i >= c->ninclude) {
		sbuf_printf(err, "%s: not an Include of this config (%zu of %zu)", path, i, c->ninclude);
		return -EINVAL;
	}
	/* a file starts applying, as ssh reads it only from an Include of a block that applies */
	struct rd r = {.c = c, .path = path, .at = c->raw->incs[i].at, .active = true, .err = err};
	if (r.at.n + 1 > 3 * MAX_DEPTH) {
		sbuf_printf(err, "%s: Include: files included more than %d deep", c->includes[i].where, MAX_DEPTH);
		ssh_host_config_free(c);
		return -EBADMSG;
	}
	r.at.c[r.at.n++] = nth;
	return read_into(&r, buf, len);
}

/* ---- known_hosts -------------------------------------------------------------------------- */

/* The key types OpenSSH reads from known_hosts (sshkey.c): it skips a line with another. */
static const char key_types[] =
    "ssh-ed25519 ssh-rsa ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 sk-ssh-ed25519@openssh.com "
    "sk-ecdsa-sha2-nistp256@openssh.com ssh-dss ssh-xmss@openssh.com ssh-ed25519-cert-v01@openssh.com "
    "ssh-rsa-cert-v01@openssh.com ecdsa-sha2-nistp256-cert-v01@openssh.com ecdsa-sha2-nistp384-cert-v01@openssh.com "
    "ecdsa-sha2-nistp521-cert-v01@openssh.com sk-ssh-ed25519-cert-v01@openssh.com "
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com ssh-dss-cert-v01@openssh.com ssh-xmss-cert-v01@openssh.com";

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Padded standard base64, as OpenSSH writes it, into out (n / 4 * 3 bytes); the length, or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
	if (n == 0 || n % 4)
		return -1;
	size_t pad = s[n - 1] == '=' ? 1 + (s[n - 2] == '=') : 0, o = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n - pad; i++) {
		const char *d = s[i] ? strchr(b64_alphabet, s[i]) : NULL;
		if (!d)
			return -1;
		acc = acc << 6 | (uint32_t)(d - b64_alphabet);
		if (i % 4) /* 6, 12, 18, 24 bits: a byte at each but the first */
			out[o++] = (unsigned char)(acc >> (6 - 2 * (i % 4)));
	}
	return (long)o;
}

#define KH_BAD(err, ...) (sbuf_printf(err, __VA_ARGS__), -EBADMSG)

/* A |1|salt|hash name: both base64 of 20 bytes (HMAC-SHA1), else ssh can never match it. */
static int check_hashed(const char *h, struct sbuf *err)
{
	const char *salt = strncmp(h, "|1|", 3) == 0 ? h + 3 : "", *bar = strchr(salt, '|');
	unsigned char buf[32];
	if (!bar || bar - salt > 40 || strlen(bar + 1) > 40 || b64_decode(salt, (size_t)(bar - salt), buf) != 20 ||
	    b64_decode(bar + 1, strlen(bar + 1), buf) != 20)
		return KH_BAD(err, "hashed host %.64s: not |1|base64(20-byte salt)|base64(20-byte hash)", h);
	return 0;
}

/* Comma-separated patterns, each maybe !negated, a host or [host]:port for a port other than 22. */
static int check_patterns(const char *hosts, struct sbuf *err)
{
	for (const char *p = hosts;; p++) {
		size_t n = strcspn(p, ","), neg = *p == '!';
		const char *end = p + n, *close = memchr(p, ']', n);
		const char *port = close && close + 1 < end && close[1] == ':' ? close + 2 : end;
		size_t pn = (size_t)(end - port);
		if (n == neg || memchr(p, '|', n))
			return KH_BAD(err, "hosts %.64s: an empty pattern, or a | outside a hashed name", hosts);
		if (p[neg] == '[' &&
		    (!close || close == p + neg + 1 || !pn || strspn(port, "0123456789*?") < pn ||
		     (strspn(port, "0123456789") >= pn && (pn > 5 || atoi(port) < 1 || atoi(port) > 65535))))
			return KH_BAD(err, "hosts %.64s: not [host]:port with a port 1..65535", hosts);
		if (!*(p = end))
			return 0;
	}
}

/* The key: base64 of an SSH key blob whose first string is the key type (as sshkey_read checks). */
static int check_key(const char *type, const char *b64, struct sbuf *err)
{
	if (word_index(key_types, type, false) < 0)
		return KH_BAD(err, "unknown key type %.64s", type);
	size_t n = strlen(b64);
	unsigned char *blob = xmalloc(n / 4 * 3 + 1);
	long bn = b64_decode(b64, n, blob);
	uint32_t tn =
	    bn >= 4 ? (uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 | blob[3] : 0;
	int rc = 0;
	if (bn < 0)
		rc = KH_BAD(err, "the %s key is not valid base64", type);
	else if (bn < 4 || tn >= (size_t)bn - 4 || tn != strlen(type) || memcmp(blob + 4, type, tn) != 0)
		rc = KH_BAD(err, "the key is not an SSH key blob of type %s", type);
	free(blob);
	return rc;
}

void ssh_known_host_free(struct ssh_known_host *kh)
{
	free(kh->hosts);
	free(kh->key_type);
	free(kh->key);
	free(kh->comment);
	memset(kh, 0, sizeof(*kh));
}

/* The next blank-separated field, or NULL at the end of the line. */
static char *field(const char *line, size_t len, size_t *i)
{
	while (*i < len && (line[*i] == ' ' || line[*i] == '\t'))
		(*i)++;
	size_t k = *i;
	while (*i < len && line[*i] != ' ' && line[*i] != '\t')
		(*i)++;
	return *i > k ? xstrndup(line + k, *i - k) : NULL;
}

int ssh_known_hosts_parse_line(const char *line, size_t len, struct ssh_known_host *kh, struct sbuf *err)
{
	memset(kh, 0, sizeof(*kh));
	len -= len && line[len - 1] == '\n';
	len -= len && line[len - 1] == '\r'; /* ssh's base64 reader skips it */
	if (memchr(line, '\0', len))
		return KH_BAD(err, "the line holds a NUL byte");
	size_t i = 0, fields = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#')
		return 0;
	int rc = 0;
	if (line[i] == '@') {
		char *m = field(line, len, &i);
		int k = word_index("@cert-authority @revoked", m, false);
		kh->marker = k == 0 ? SSH_KH_CERT_AUTHORITY : SSH_KH_REVOKED;
		if (k < 0)
			rc = KH_BAD(err, "unknown marker %.64s (not @cert-authority or @revoked)", m);
		free(m);
	}
	char **parts[] = {&kh->hosts, &kh->key_type, &kh->key};
	while (rc == 0 && fields < 3 && (*parts[fields] = field(line, len, &i)) != NULL)
		fields++;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (rc == 0 && fields < 3)
		rc = KH_BAD(err, "%zu of the 3 fields hosts, key type, key", fields);
	if (rc == 0)
		rc = (kh->hashed = kh->hosts[0] == '|') ? check_hashed(kh->hosts, err) : check_patterns(kh->hosts, err);
	if (rc == 0)
		rc = check_key(kh->key_type, kh->key, err);
	if (rc < 0) {
		ssh_known_host_free(kh);
		return rc;
	}
	kh->comment = i < len ? xstrndup(line + i, len - i) : NULL;
	return 1;
}

int ssh_known_hosts_check(const char *path, const char *buf, size_t len, size_t *entries, struct sbuf *err)
{
	size_t bad_lines = 0, line = 0;
	*entries = 0;
	for (size_t at = 0, end; at < len; at = end + 1) {
		struct ssh_known_host kh;
		struct sbuf msg = SBUF_INIT;
		const char *nl = memchr(buf + at, '\n', len - at);
		end = nl ? (size_t)(nl - buf) : len;
		line++;
		int rc = ssh_known_hosts_parse_line(buf + at, end - at, &kh, &msg);
		if (rc > 0)
			(*entries)++;
		else if (rc < 0 && bad_lines++ == 0)
			sbuf_printf(err, "%s:%zu: %s", path, line, msg.sb_buf);
		ssh_known_host_free(&kh);
		sbuf_free(&msg);
	}
	if (bad_lines > 1)
		sbuf_printf(err, " (and %zu more malformed lines)", bad_lines - 1);
	return bad_lines ? -EBADMSG : 0;
}
