/*
 * ssh_config.c - ssh_config(5) and known_hosts read from bytes (ssh_config.h). Pure. The rules are those of
 * OpenSSH's readconf.c and hostfile.c: what ssh reads means the same here, what it refuses is refused here.
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
	POS_MAX = 3 * MAX_DEPTH + 2, /* the Includes of a file MAX_DEPTH deep have a place too */
};

/*
 * Where an Include or a fed file is: the Include's line in the top file and argument, then the file among the
 * pattern's matches, then the same inside that file... In component order, the order in which ssh reads them.
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

/* A file's text: the top one (at the empty position), or one fed in (at its Include's position, then nth). */
struct fed {
	struct pos at;
	char *path, *text;
	size_t len;
};

/* A value as written; set when where is. */
struct val {
	char *s;
	int n;
	char *where; /* "path:line", for the warnings its expansion may give */
};

/* The keywords read; the first NVAL take one value each, in raw->v[keyword]. */
enum kw { K_HOSTNAME, K_USER, K_PORT, K_UKHF, K_STRICT, K_IDENTITYFILE, K_HOST, K_MATCH, K_INCLUDE };
#define NVAL (K_STRICT + 1)
static const char keywords[] =
    "HostName User Port UserKnownHostsFile StrictHostKeyChecking IdentityFile Host Match Include";

/*
 * The texts, and what the last reading of them found. Each file fed in makes a new reading of all, in ssh's
 * order, so that a value, a Match or an Include after an Include sees what the included file set.
 */
struct ssh_config_raw {
	char *alias, *home, *local_user;
	struct fed *fed; /* by position: the top file first */
	size_t nfed;
	struct val v[NVAL];
	struct val *ids;
	size_t nids;
	struct pos *ipos; /* where each of c->includes is */
};

/* The reading of one file. */
struct rd {
	struct ssh_host_config *c;
	const char *path;
	struct pos at; /* of the line being read: the file's, then its line */
	size_t line;
	bool active, never; /* never: a file ssh reads only to check it, from an Include that does not apply */
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

static char *where(const struct rd *r)
{
	struct sbuf b = SBUF_INIT;
	sbuf_printf(&b, "%s:%zu", r->path, r->line);
	return sbuf_detach(&b, NULL);
}

/* A message about the line being read: an error (-EBADMSG), or with warn a warning (0). */
__attribute__((format(printf, 3, 4))) static int say(struct rd *r, bool warn, const char *fmt, ...)
{
	struct sbuf b = SBUF_INIT, *out = warn ? &b : r->err;
	va_list ap;
	va_start(ap, fmt);
	sbuf_printf(out, "%s:%zu: ", r->path, r->line);
	sbuf_vprintf(out, fmt, ap);
	va_end(ap);
	if (warn)
		push(&r->c->warnings, &r->c->nwarning, sbuf_detach(&b, NULL));
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

static void set_val(struct rd *r, struct val *v, const char *s, int n)
{
	*v = (struct val){s ? xstrdup(s) : NULL, n, where(r)};
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

/* IdentityFile adds to a list, a duplicate of one read before dropped (as ssh does). */
static int add_identity(struct rd *r, const char *s)
{
	struct ssh_config_raw *w = r->c->raw;
	for (size_t i = 0; i < w->nids; i++)
		if (strcmp(w->ids[i].s, s) == 0)
			return 0;
	if (w->nids == MAX_IDENTITIES)
		return bad(r, "more than %d IdentityFile for this host (ssh stops there too)", MAX_IDENTITIES);
	w->ids = GROW(w->ids, w->nids);
	set_val(r, &w->ids[w->nids++], s, 0);
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

static int read_file(struct rd *r, const struct fed *f, bool never);

/* Lists an Include's argument, then reads the files fed in for it so far where it stands, as ssh does. */
static int do_include(struct rd *r, const char *arg, size_t argi)
{
	struct ssh_host_config *c = r->c;
	struct ssh_config_raw *w = c->raw;
	struct sbuf b = SBUF_INIT, missed = SBUF_INIT;
	struct pos at = r->at;
	int rc = 0;
	at.c[at.n++] = argi;
	sbuf_puts(&b, put_tilde(w, arg, &b, &missed));
	if (missed.sb_len)
		say(r, true, "Include %.64s: not expanded here:%s", arg, missed.sb_buf);
	c->includes = GROW(c->includes, c->ninclude);
	w->ipos = GROW(w->ipos, c->ninclude);
	w->ipos[c->ninclude] = at;
	c->includes[c->ninclude++] = (struct ssh_config_include){sbuf_detach(&b, NULL), where(r), !r->active};
	for (size_t k = 1; rc == 0 && k < w->nfed; k++)
		if (w->fed[k].at.n == at.n + 1 && memcmp(w->fed[k].at.c, at.c, at.n * sizeof(at.c[0])) == 0)
			rc = read_file(r, &w->fed[k], !r->active);
	sbuf_free(&missed);
	return rc;
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
static const char strict_words[] = "no false off yes true accept-new ask", strict_value[] = "0001123";
/* The Match criteria OpenSSH knows; those after host..localuser need what a pure reader has not. */
static const char criteria[] = "host originalhost user localuser canonical final exec localnetwork tagged command "
                               "version sessiontype";

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
		int k = word_index(criteria, a, true); /* host originalhost user localuser canonical final ... */
		if (k < 0)
			return bad(r, "Match: unknown criterion %.64s", a);
		if (k != 4 && k != 5 && i + 1 == ac) /* all but canonical and final take patterns */
			return bad(r, "Match %s needs patterns", a);
		/* the HostName and User so far, as ssh's match_cfg_line takes them */
		char *host = k == 0 && w->v[K_HOSTNAME].where ? expand_hostname(w->v[K_HOSTNAME].s, w->alias) : NULL;
		const char *subject = k == 0   ? (host ? host : w->alias)
		                      : k == 1 ? w->alias
		                      : k == 2 ? (w->v[K_USER].where ? w->v[K_USER].s : w->local_user)
		                      : k == 3 ? w->local_user
		                               : NULL;
		const char *list = k == 4 || k == 5 ? NULL : av[++i];
		if (!subject)
			undecided = a;
		else if ((match_list(subject, list, k < 2) == 1) == neg)
			result = false;
		free(host);
	}
	r->active = result && !undecided;
	if (result && undecided && !r->never)
		say(r, true, "Match %s cannot be decided here: the block is skipped", undecided);
	return 0;
}

static int do_keyword(struct rd *r, enum kw kw, const char *name, char **av, size_t ac)
{
	struct ssh_config_raw *w = r->c->raw;
	int n = 0, rc = 0;
	char *end = NULL; /* stays NULL for the port named ssh */
	long port;
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
	case K_HOST:
		r->active = false;
		for (size_t i = 0; i < ac; i++) {
			bool neg = av[i][0] == '!';
			if (!glob_match(w->alias, av[i] + neg, strlen(av[i] + neg), false))
				continue;
			r->active = !neg;
			if (neg)
				return 0; /* a negated match beats the others, whatever their order */
		}
		return 0;
	case K_MATCH: return do_match(r, av, ac);
	case K_INCLUDE:
		for (size_t i = 0; rc == 0 && i < ac; i++) /* in a block that does not apply too, as ssh reads it */
			rc = do_include(r, av[i], i);
		return rc;
	case K_PORT: /* as ssh's strtonum reads it; of the service names, only ssh's without /etc/services */
		port = strcasecmp(av[0], "ssh") == 0 ? 22 : strtol(av[0], &end, 10);
		if (end && (end == av[0] || *end || port < 1 || port > 65535))
			return bad(r, "Port %.64s: not 1..65535 or ssh (other service names are not looked up)", av[0]);
		n = (int)port;
		break;
	case K_STRICT:
		if ((n = word_index(strict_words, av[0], true)) < 0)
			return bad(r, "%s %.64s: not yes, no, accept-new, ask or off", name, av[0]);
		n = strict_value[n] - '0';
		break;
	case K_UKHF:
		for (size_t i = 0; ac > 1 && i < ac; i++)
			if (strcasecmp(av[i], "none") == 0)
				return bad(r, "%s: none must be alone", name);
		break;
	default: break;
	}
	if (!r->active || (kw != K_IDENTITYFILE && w->v[kw].where))
		return 0; /* validated as ssh does, but not taken */
	for (size_t i = 0; !none && (kw == K_HOSTNAME || kw == K_IDENTITYFILE || kw == K_UKHF) && i < ac; i++)
		if ((rc = check_tokens(r, name, av[i], kw == K_HOSTNAME ? "h" : "CdhijkLlnpru")) < 0)
			return rc;
	if (kw == K_IDENTITYFILE)
		return add_identity(r, none ? "none" : av[0]);
	set_val(r, &w->v[kw], kw == K_PORT || kw == K_STRICT ? NULL : none ? "none" : av[0], n);
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
	char *kw = xstrndup(p + k, end - k), **av = NULL;
	i = skip_ws(p, n, i);
	i = skip_ws(p, n, i + (i < n && p[i] == '=')); /* blanks, at most one '=', blanks */
	size_t ac = 0;
	int rc = 0, j;
	if (i == n)
		rc = bad(r, "%.64s has no value", kw);
	else if (split_args(p + i, n - i, &av, &ac) < 0)
		rc = bad(r, "an unterminated quote");
	else if ((j = word_index(keywords, kw, true)) >= 0)
		rc = do_keyword(r, (enum kw)j, kw, av, ac);
	r->active = r->active && !r->never; /* in a file read only to check it, nothing applies */
	list_free(av, ac);
	free(kw);
	return rc;
}

/* ---- the result --------------------------------------------------------------------------- */

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

/* The public fields from the values as read: what needs the final HostName, User, Port is expanded now. */
static void finish(struct ssh_host_config *c)
{
	struct ssh_config_raw *w = c->raw;
	struct val *v = w->v;
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

/* Forgets what the last reading found, public or not. */
static void clear(struct ssh_host_config *c)
{
	struct ssh_config_raw *w = c->raw;
	free(c->hostname);
	free(c->user);
	list_free(c->identity_files, c->nidentity);
	free(c->user_known_hosts_file);
	list_free(c->warnings, c->nwarning);
	for (size_t i = 0; i < c->ninclude; i++) {
		free(c->includes[i].pattern);
		free(c->includes[i].where);
	}
	free(c->includes);
	for (size_t i = 0; i < NVAL + w->nids; i++) {
		free(i < NVAL ? w->v[i].s : w->ids[i - NVAL].s);
		free(i < NVAL ? w->v[i].where : w->ids[i - NVAL].where);
	}
	free(w->ids);
	free(w->ipos);
	*w = (struct ssh_config_raw){
	    .alias = w->alias, .home = w->home, .local_user = w->local_user, .fed = w->fed, .nfed = w->nfed};
	*c = (struct ssh_host_config){.raw = w, .strict_host_key_checking = -1};
}

void ssh_host_config_free(struct ssh_host_config *c)
{
	struct ssh_config_raw *w = c->raw;
	if (w) {
		clear(c);
		for (size_t i = 0; i < w->nfed; i++) {
			free(w->fed[i].path);
			free(w->fed[i].text);
		}
		free(w->fed);
		free(w->alias);
		free(w->home);
		free(w->local_user);
		free(w);
	}
	*c = (struct ssh_host_config){.strict_host_key_checking = -1};
}

/* Reads one file, from the top as ssh reads a file: its lines apply until a Host or Match says otherwise. */
static int read_file(struct rd *r, const struct fed *f, bool never)
{
	struct rd in = {.c = r->c, .path = f->path, .at = f->at, .active = !never, .never = never, .err = r->err};
	size_t base = in.at.n++;
	for (size_t at = 0, end; at < f->len; at = end + 1) {
		const char *nl = memchr(f->text + at, '\n', f->len - at);
		end = nl ? (size_t)(nl - f->text) : f->len;
		in.at.c[base] = ++in.line;
		int rc = do_line(&in, f->text + at, end - at);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reads the top file, and each file fed in where its Include stands; an error in any of them frees c. */
static int read_all(struct ssh_host_config *c, struct sbuf *err)
{
	struct rd top = {.c = c, .err = err};
	clear(c);
	int rc = read_file(&top, &c->raw->fed[0], false);
	if (rc < 0)
		ssh_host_config_free(c);
	else
		finish(c);
	return rc;
}

/* Keeps a copy of a file's text at its place among the others (replacing one fed there before). */
static void add_fed(struct ssh_config_raw *w, const struct pos *at, const char *path, const char *buf, size_t len)
{
	size_t k = w->nfed;
	while (k > 0 && pos_cmp(&w->fed[k - 1].at, at) > 0)
		k--;
	if (k > 0 && pos_cmp(&w->fed[k - 1].at, at) == 0) {
		free(w->fed[--k].path);
		free(w->fed[k].text);
	} else {
		w->fed = GROW(w->fed, w->nfed);
		memmove(&w->fed[k + 1], &w->fed[k], (w->nfed++ - k) * sizeof(*w->fed));
	}
	w->fed[k] = (struct fed){*at, xstrdup(path), xmalloc(len + 1), len};
	if (len)
		memcpy(w->fed[k].text, buf, len);
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
	add_fed(w, &(struct pos){.n = 0}, path, buf, len);
	return read_all(out, err);
}

int ssh_config_feed(struct ssh_host_config *c, size_t i, size_t nth, const char *path, const char *buf, size_t len,
                    struct sbuf *err)
{
	if (!c->raw || i >= c->ninclude) {
		sbuf_printf(err, "%s: not an Include of this config (%zu of %zu)", path, i, c->ninclude);
		return -EINVAL;
	}
	struct pos at = c->raw->ipos[i];
	if (at.n + 1 > 3 * MAX_DEPTH) {
		sbuf_printf(err, "%s: Include: files included more than %d deep", c->includes[i].where, MAX_DEPTH);
		ssh_host_config_free(c);
		return -EBADMSG;
	}
	at.c[at.n++] = nth;
	add_fed(c->raw, &at, path, buf, len);
	return read_all(c, err);
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
	char *parts[] = {kh->hosts, kh->key_type, kh->key, kh->comment};
	for (size_t i = 0; i < 4; i++)
		free(parts[i]);
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
	char *m = line[i] == '@' ? field(line, len, &i) : NULL;
	int rc = 0, k = m ? word_index("@cert-authority @revoked", m, false) : -1;
	kh->marker = k < 0 ? SSH_KH_PLAIN : k == 0 ? SSH_KH_CERT_AUTHORITY : SSH_KH_REVOKED;
	if (m && k < 0)
		rc = KH_BAD(err, "unknown marker %.64s (not @cert-authority or @revoked)", m);
	free(m);
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
