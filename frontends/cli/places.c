/*
 * places.c - where punix keeps things (docs/cli.md, "Places").
 *
 *   home   $PUNIX_HOME, else /var/lib/punix for root, else ~/.punix
 *   store  --store-root, else $PUNIX_STORE_DIR, else <home>/store
 *   logs   <home>/logs
 *   cache  <home>/cache (url sources' downloads)
 */
#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../base/path.h"
#include "../../base/sbuf.h"
#include "../../base/xalloc.h"
#include "../../engine/engine.h"
#include "../../engine/target.h"
#include "../../engine/vault.h"
#include "cli.h"

static char *user_home(void)
{
	const char *h = getenv("HOME");
	if (h && h[0])
		return xstrdup(h);
	struct passwd *pw = getpwuid(getuid());
	return xstrdup(pw && pw->pw_dir ? pw->pw_dir : "/");
}

/* The canonical form of a root the operator named, or an error naming it. */
static int canon(struct cli_ctx *cx, char **out, const char *what, const char *p)
{
	char cwd[4096];
	const char *why;
	char *c = path_canonical(p, getcwd(cwd, sizeof(cwd)) ? cwd : NULL, &why);
	if (!c)
		return cli_fail(cx, EXIT_USAGE, "%s '%s' cannot be used: %s", what, p, why);
	free(*out);
	*out = c;
	return EXIT_OK;
}

int cli_places_init(struct cli_ctx *cx, struct cli_places *pl, const char *store_root)
{
	memset(pl, 0, sizeof(*pl));
	const char *env = getenv("PUNIX_HOME");
	struct sbuf sb = SBUF_INIT;
	if (env && env[0]) {
		sbuf_puts(&sb, env);
	} else if (geteuid() == 0) {
		/*
		 * root deploys for services that run as other users: the store
		 * must be readable and executable by them, which root's 0700
		 * home is not (docs/cli.md, "Places").
		 */
		sbuf_puts(&sb, PUNIX_SYSTEM_HOME);
	} else {
		char *h = user_home();
		sbuf_printf(&sb, "%s/.punix", h);
		free(h);
	}
	int rc = canon(cx, &pl->home, env && env[0] ? "PUNIX_HOME" : "the home", sb.sb_buf);
	sbuf_free(&sb);
	if (rc != EXIT_OK)
		return rc;
	const char *store_env = getenv("PUNIX_STORE_DIR");
	if (store_root && store_root[0])
		rc = canon(cx, &pl->store, "--store-root", store_root);
	else if (store_env && store_env[0])
		rc = canon(cx, &pl->store, "PUNIX_STORE_DIR", store_env);
	else {
		sbuf_printf(&sb, "%s/store", strcmp(pl->home, "/") ? pl->home : "");
		pl->store = sbuf_detach(&sb, NULL);
	}
	if (rc != EXIT_OK)
		return rc;
	sbuf_printf(&sb, "%s/logs", strcmp(pl->home, "/") ? pl->home : "");
	pl->logs = sbuf_detach(&sb, NULL);
	/*
	 * PUNIX_HOST_ROOT: this machine's state is under a root (host mode's
	 * server sets it for its commands when the deployer deploys with
	 * --transport-root): the store is opened beneath it.
	 */
	const char *hroot = getenv("PUNIX_HOST_ROOT");
	if (hroot && hroot[0]) {
		rc = canon(cx, &pl->host_root, "PUNIX_HOST_ROOT", hroot);
		if (rc != EXIT_OK)
			return rc;
		struct sbuf err = SBUF_INIT;
		int r = ops_mkdir_p(ops_local(), pl->host_root, 0755);
		pl->host_ops = r == 0 ? ops_beneath(pl->host_root, &err) : NULL;
		if (!pl->host_ops) {
			rc = cli_fail(cx, EXIT_USAGE, "PUNIX_HOST_ROOT '%s' cannot be used: %s", pl->host_root,
				      r < 0 ? strerror(-r) : err.sb_buf);
			sbuf_free(&err);
			return rc;
		}
	}
	/* a static build of this punix, to bootstrap targets that have none (docs/hosts.md) */
	const char *st = getenv("PUNIX_STATIC");
	if (st && st[0]) {
		pl->static_punix = xstrdup(st);
	} else {
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			char *dir = ops_dirname(self);
			const char *cands[] = {"%s/punix-static", "%s/../lib/punix/punix-static"};
			for (size_t i = 0; i < 2 && !pl->static_punix; i++) {
				sbuf_printf(&sb, cands[i], dir);
				if (access(sb.sb_buf, R_OK) == 0)
					pl->static_punix = sbuf_detach(&sb, NULL);
				sbuf_reset(&sb);
			}
			free(dir);
		}
	}
	sbuf_free(&sb);
	sbuf_printf(&sb, "%s/deployments", strcmp(pl->home, "/") ? pl->home : "");
	pl->deployments = sbuf_detach(&sb, NULL);
	pl->deployments_default = true;
	/* the tests' fault injection and crash points: read here, once, and handed down */
	const char *eio = getenv("PUNIX_FAULT_EIO_AT"), *kill_at = getenv("PUNIX_FAULT_KILL_AT");
	const char *forever = getenv("PUNIX_FAULT_EIO_FOREVER"), *lossy = getenv("PUNIX_FAULT_LOSSY");
	struct fault_config fc = {
		.eio_at = eio ? atol(eio) : 0,
		.kill_at = kill_at ? atol(kill_at) : 0,
		.forever = forever && atoi(forever),
		.lossy = lossy && atoi(lossy),
	};
	pl->fault = fault_plan_new(&fc);
	const char *crash = getenv("PUNIX_CRASH_AT");
	pl->crash_at = crash && *crash ? xstrdup(crash) : NULL;
	pl->ssh_home = user_home();
	const char *agent = getenv("SSH_AUTH_SOCK");
	pl->ssh_agent = agent && *agent ? xstrdup(agent) : NULL;
	struct passwd *pw = getpwuid(geteuid());
	pl->local_user = xstrdup(pw && pw->pw_name ? pw->pw_name : "root");
	pl->ssh = (struct ssh_defaults){pl->ssh_home, pl->ssh_agent, pl->local_user};
	const char *state_env = getenv("PUNIX_STATE_DIR");
	if (state_env && state_env[0])
		return canon(cx, &pl->state, "PUNIX_STATE_DIR", state_env);
	sbuf_printf(&sb, "%s/journal", strcmp(pl->home, "/") ? pl->home : "");
	pl->state = sbuf_detach(&sb, NULL);
	return EXIT_OK;
}

struct engine *cli_engine(struct cli_ctx *cx, const struct cli_places *pl, struct store *st)
{
	extern char **environ;
	struct engine_config cfg = {
		.state_dir = pl->state,
		.store = st,
		.fault = pl->fault,
		.crash_at = pl->crash_at,
		.env = environ,
		.vault_path = pl->vault,
		.ssh = pl->ssh,
		.static_punix = pl->static_punix,
	};
	struct sbuf err = SBUF_INIT;
	/*
	 * The home's own deployments root exists once this home has run an op,
	 * even one that deployed elsewhere (--transport-root): so a collection
	 * tells a home with no local stack from one whose root went missing,
	 * which it refuses (docs/gc.md).
	 */
	if (pl->deployments_default && !pl->host_root) {
		int r = ops_mkdir_p(ops_local(), pl->deployments, 0755);
		if (r < 0) {
			cli_fail(cx, EXIT_FAILURE_, "cannot make the deployments root %s: %s", pl->deployments, ops_strerror(r));
			return NULL;
		}
	}
	struct engine *e = engine_open(&cfg, &err);
	if (!e)
		cli_fail(cx, EXIT_FAILURE_, "%s", cli_reason(err.sb_buf, "the engine could not start"));
	sbuf_free(&err);
	return e;
}

int cli_places_set(struct cli_ctx *cx, struct cli_places *pl, const char *deployments, const char *state)
{
	int rc = EXIT_OK;
	if (deployments) {
		rc = canon(cx, &pl->deployments, "--deployments-root", deployments);
		pl->deployments_default = false;
	}
	if (rc == EXIT_OK && state)
		rc = canon(cx, &pl->state, "--state-dir", state);
	return rc;
}

int cli_engine_exit(const struct cli_ctx *cx, const struct cli_places *pl)
{
	/* engine_open's messages about the vault name "the vault file" (engine/vault.c) */
	return pl->vault && cx->error && strstr(cx->error, "the vault file") ? EXIT_USAGE : EXIT_FAILURE_;
}

int cli_places_vault(struct cli_ctx *cx, struct cli_places *pl, const char *vault)
{
	return vault ? canon(cx, &pl->vault, "--vault-secrets", vault) : EXIT_OK;
}

int cli_read_vault(struct cli_ctx *cx, const struct cli_places *pl, struct vault *v)
{
	memset(v, 0, sizeof(*v));
	if (!pl->vault)
		return EXIT_OK;
	struct sbuf err = SBUF_INIT;
	int r = vault_open(ops_local(), pl->vault, (int64_t)geteuid(), v, &err);
	int rc = r < 0 ? cli_fail(cx, EXIT_USAGE, "%s", cli_reason(err.sb_buf, "the vault file cannot be read")) : EXIT_OK;
	sbuf_free(&err);
	return rc;
}

void cli_places_free(struct cli_places *pl)
{
	free(pl->home);
	free(pl->store);
	free(pl->logs);
	free(pl->deployments);
	free(pl->state);
	free(pl->crash_at);
	free(pl->ssh_home);
	free(pl->ssh_agent);
	free(pl->local_user);
	free(pl->static_punix);
	free(pl->host_root);
	free(pl->vault);
	if (pl->host_ops)
		ops_beneath_free(pl->host_ops);
	fault_plan_free(pl->fault);
	memset(pl, 0, sizeof(*pl));
}

int cli_open_store(struct cli_ctx *cx, struct store *s, const struct cli_places *pl, int flags)
{
	struct sbuf err = SBUF_INIT, real_cache = SBUF_INIT;
	int r;
	if (pl->host_root) {
		struct sbuf real = SBUF_INIT;
		sbuf_printf(&real, "%s%s", pl->host_root, pl->store);
		r = store_open(s, pl->host_ops, pl->store, real.sb_buf, NULL, flags, &err);
		sbuf_free(&real);
	} else {
		r = store_open(s, ops_faulty(pl->fault, ops_local()), pl->store, NULL, pl->logs, flags, &err);
		/* url sources' downloads: <home>/cache (docs/building.md) */
		if (r == 0) {
			sbuf_printf(&real_cache, "%s/cache", strcmp(pl->home, "/") ? pl->home : "");
			s->cache_dir = sbuf_detach(&real_cache, NULL);
		}
	}
	if (r == -ENOENT && (flags & CLI_STORE_MAY_BE_ABSENT)) {
		store_view(s, ops_local(), pl->store);
		r = 0;
	}
	/* no store there, or not one we may touch: the operator's to fix */
	bool refused = r == -ENOENT || r == -ENOTDIR || r == -EXDEV || r == -EBADMSG || r == -EPROTO;
	int rc = r >= 0 ? EXIT_OK : refused ? EXIT_ERROR : EXIT_FAILURE_;
	if (r < 0)
		cli_fail(cx, rc, "%s", sbuf_str(&err));
	sbuf_free(&err);
	return rc;
}

void cli_print_recovered(const struct op_result *r)
{
	if (r->recovered.sb_len)
		fputs(r->recovered.sb_buf, stderr);
}

int cli_parse_mode(struct cli_ctx *cx, const char *arg, enum target_mode *mode)
{
	static const struct {
		const char *name;
		enum target_mode mode;
	} modes[] = {{"auto", MODE_AUTO}, {"host", MODE_HOST}, {"agentless", MODE_AGENTLESS}};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(arg, modes[i].name)) {
			*mode = modes[i].mode;
			return EXIT_OK;
		}
	return cli_fail(cx, EXIT_USAGE, "--mode is host, agentless or auto, not '%s'", arg);
}
