/*
 * places.c - where punix keeps things (docs/cli.md, "Places").
 *
 *   home   ~/.punix, or $PUNIX_HOME
 *   store  --store-root, else $PUNIX_STORE_DIR, else <home>/store
 *   logs   <home>/logs
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../base/sbuf.h"
#include "../../base/xalloc.h"
#include "cli.h"

static char *user_home(void)
{
	const char *h = getenv("HOME");
	if (h && h[0])
		return xstrdup(h);
	struct passwd *pw = getpwuid(getuid());
	return xstrdup(pw && pw->pw_dir ? pw->pw_dir : "/");
}

int cli_places_init(struct cli_places *pl, const char *store_root)
{
	memset(pl, 0, sizeof(*pl));
	const char *env = getenv("PUNIX_HOME");
	if (env && env[0]) {
		pl->home = xstrdup(env);
	} else {
		char *h = user_home();
		struct sbuf sb = SBUF_INIT;
		sbuf_printf(&sb, "%s/.punix", h);
		pl->home = sbuf_detach(&sb, NULL);
		free(h);
	}
	const char *store_env = getenv("PUNIX_STORE_DIR");
	struct sbuf sb = SBUF_INIT;
	if (store_root && store_root[0])
		pl->store = xstrdup(store_root);
	else if (store_env && store_env[0])
		pl->store = xstrdup(store_env);
	else {
		sbuf_printf(&sb, "%s/store", pl->home);
		pl->store = sbuf_detach(&sb, NULL);
	}
	sbuf_printf(&sb, "%s/logs", pl->home);
	pl->logs = sbuf_detach(&sb, NULL);
	sbuf_printf(&sb, "%s/deployments", pl->home);
	pl->deployments = sbuf_detach(&sb, NULL);
	const char *state_env = getenv("PUNIX_STATE_DIR");
	if (state_env && state_env[0]) {
		pl->state = xstrdup(state_env);
	} else {
		sbuf_printf(&sb, "%s/journal", pl->home);
		pl->state = sbuf_detach(&sb, NULL);
	}
	return 0;
}

void cli_places_set(struct cli_places *pl, const char *deployments, const char *state)
{
	if (deployments) {
		free(pl->deployments);
		pl->deployments = xstrdup(deployments);
	}
	if (state) {
		free(pl->state);
		pl->state = xstrdup(state);
	}
}

void cli_places_free(struct cli_places *pl)
{
	free(pl->home);
	free(pl->store);
	free(pl->logs);
	free(pl->deployments);
	free(pl->state);
}

int cli_open_store(struct store *s, const struct cli_places *pl)
{
	struct sbuf err = SBUF_INIT;
	int r = store_open(s, ops_local(), pl->store, pl->logs, &err);
	if (r < 0)
		cli_fail(EXIT_FAILURE_, "%s", sbuf_str(&err));
	sbuf_free(&err);
	return r < 0 ? EXIT_FAILURE_ : EXIT_OK;
}
