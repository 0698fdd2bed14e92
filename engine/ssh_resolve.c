/*
 * ssh_resolve.c - reaching a target the way `ssh HOST` would: the URL,
 * ~/.ssh/config and what it Includes (read through this machine's table,
 * parsed by ssh_config.c), then OpenSSH's defaults.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/sbuf.h"
#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"
#include "ssh.h"
#include "ssh_config.h"

static char *in_home(const char *home, const char *rel)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/%s", strcmp(home, "/") ? home : "", rel);
	return sbuf_detach(&sb, NULL);
}

/* The files an Include pattern names, in lexical order: a wildcard is allowed in the last component. */
static int include_files(struct punix_ops *l, const char *pattern, char ***files, size_t *n)
{
	*files = NULL;
	*n = 0;
	const char *slash = strrchr(pattern, '/');
	if (!strpbrk(pattern, "*?[")) {
		struct ops_stat st;
		if (l->stat(l, pattern, 1, &st) == 0)
			plan_list_add(files, n, pattern);
		return 0;
	}
	if (!slash || strpbrk(pattern, "*?[") < slash)
		return -ENOTSUP; /* a wildcard in a directory: not followed */
	char *dir = xstrndup(pattern, (size_t)(slash - pattern));
	char **names = NULL;
	size_t nn = 0;
	int r = l->list_dir(l, dir[0] ? dir : "/", &names, &nn);
	if (r == -ENOENT)
		r = 0;
	for (size_t i = 0; r == 0 && i < nn; i++) {
		if (names[i][0] == '.' || fnmatch(slash + 1, names[i], 0) != 0)
			continue;
		struct sbuf p = SBUF_INIT;
		sbuf_printf(&p, "%s/%s", dir, names[i]);
		plan_list_add(files, n, p.sb_buf);
		sbuf_free(&p);
	}
	ops_free_names(names, nn);
	free(dir);
	return r; /* list_dir gives names sorted: lexical order, as glob(7) */
}

/* ~/.ssh/config for alias, and what it Includes; *have if there was one. */
static int read_config(struct punix_ops *l, const struct ssh_defaults *d, const char *alias, struct ssh_host_config *hc,
		       bool *have, struct sbuf *err)
{
	if (!d->home)
		return 0;
	char *path = in_home(d->home, ".ssh/config");
	char *buf = NULL;
	size_t len = 0;
	int r = l->read_file(l, path, 1 << 22, &buf, &len);
	if (r == -ENOENT) {
		free(path);
		return 0;
	}
	if (r < 0) {
		sbuf_printf(err, "cannot read %s: %s", path, ops_strerror(r));
		free(path);
		return -1;
	}
	r = ssh_config_resolve(path, buf, len, alias, d->home, d->local_user, hc, err);
	free(buf);
	if (r < 0) {
		free(path);
		return -1;
	}
	/* the list grows behind the index as included files include more (ssh_config.h) */
	for (size_t i = 0; i < hc->ninclude; i++) {
		const char *pat = hc->includes[i].pattern;
		char *full = pat[0] == '/' ? xstrdup(pat) : in_home(d->home, ".ssh/");
		if (pat[0] != '/') {
			struct sbuf sb = SBUF_INIT;
			sbuf_printf(&sb, "%s%s", full, pat);
			free(full);
			full = sbuf_detach(&sb, NULL);
		}
		char **files;
		size_t nf;
		r = include_files(l, full, &files, &nf);
		if (r < 0) {
			sbuf_printf(err, "%s: Include %s: %s", hc->includes[i].where, pat,
				    r == -ENOTSUP ? "a wildcard in a directory is not followed by punix" : ops_strerror(r));
			free(full);
			ssh_host_config_free(hc);
			free(path);
			return -1;
		}
		for (size_t k = 0; k < nf && r == 0; k++) {
			r = l->read_file(l, files[k], 1 << 22, &buf, &len);
			if (r < 0) {
				sbuf_printf(err, "cannot read %s (included by %s): %s", files[k], hc->includes[i].where,
					    ops_strerror(r));
				ssh_host_config_free(hc);
			} else {
				r = ssh_config_feed(hc, i, k, files[k], buf, len, err); /* frees hc on error */
				free(buf);
			}
		}
		for (size_t k = 0; k < nf; k++)
			free(files[k]);
		free(files);
		free(full);
		if (r < 0) {
			free(path);
			return -1;
		}
	}
	free(path);
	*have = true;
	return 0;
}


/*
 * Who to log in as, where, and with what, as OpenSSH would decide it: the
 * URL, then ~/.ssh/config (HostName, User, Port, IdentityFile,
 * UserKnownHostsFile), then the defaults (the local user, port 22,
 * ~/.ssh/known_hosts; the agent, then ~/.ssh/id_ed25519, id_ecdsa,
 * id_rsa). --key means that key alone; --known-hosts that file.
 */
int ssh_resolve(struct engine *e, const struct target_spec *t, struct ssh_target *st, struct sbuf *err)
{
	static const struct ssh_defaults none = {NULL, NULL, NULL};
	const struct ssh_defaults *d = t->ssh_defaults ? t->ssh_defaults : e ? &e->ssh : &none;
	if (ssh_parse_url(t->ssh, st) < 0) {
		sbuf_printf(err, "'%s' is not a target: ssh://[USER@]HOST[:PORT]", t->ssh);
		return -1;
	}
	st->local = e ? e->local : ops_local();
	st->timeout_ms = 30000;
	struct ssh_host_config hc = {0};
	bool have = false;
	if (read_config(st->local, d, st->host, &hc, &have, err) < 0) {
		ssh_target_free(st);
		return -1;
	}
	if (have) {
		if (hc.hostname) {
			free(st->host);
			st->host = xstrdup(hc.hostname);
		}
		if (!st->user && hc.user)
			st->user = xstrdup(hc.user);
		if (!st->port && hc.port)
			st->port = hc.port;
		if (hc.user_known_hosts_file && strcasecmp(hc.user_known_hosts_file, "none") != 0)
			st->known_hosts = xstrdup(hc.user_known_hosts_file);
		if (!(t->key && *t->key))
			for (size_t i = 0; i < hc.nidentity; i++)
				if (strcasecmp(hc.identity_files[i], "none") != 0)
					plan_list_add(&st->keys, &st->nkeys, hc.identity_files[i]);
		ssh_host_config_free(&hc);
	}
	if (!st->user)
		st->user = xstrdup(d->local_user && *d->local_user ? d->local_user : "root");
	if (!st->port)
		st->port = 22;
	if (t->known_hosts && *t->known_hosts) {
		free(st->known_hosts);
		st->known_hosts = xstrdup(t->known_hosts);
	} else if (!st->known_hosts && d->home) {
		st->known_hosts = in_home(d->home, ".ssh/known_hosts");
	} else if (!st->known_hosts) {
		sbuf_printf(err, "no known_hosts file for %s@%s:%d: give --known-hosts FILE (host keys are never trusted "
				 "on first use)", st->user, st->host, st->port);
		ssh_target_free(st);
		return -1;
	}
	if (t->key && *t->key) {
		for (size_t i = 0; i < st->nkeys; i++)
			free(st->keys[i]);
		st->nkeys = 0;
		plan_list_add(&st->keys, &st->nkeys, t->key);
		return 0;
	}
	if (d->agent_sock && *d->agent_sock)
		st->agent_sock = xstrdup(d->agent_sock);
	if (d->home) {
		static const char *const defaults[] = {".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"};
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
			char *k = in_home(d->home, defaults[i]);
			bool dup = false;
			for (size_t j = 0; j < st->nkeys && !dup; j++)
				dup = !strcmp(st->keys[j], k);
			if (!dup)
				plan_list_add(&st->keys, &st->nkeys, k);
			free(k);
		}
	}
	return 0;
}

