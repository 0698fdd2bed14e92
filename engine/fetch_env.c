/*
 * fetch_env.c - the settings of downloads, from the environment the CLI
 * hands the engine (fetch.h: fetch_settings_from_env). Operators set them
 * (a slow mirror, a CA of their own), and the tests shorten the stall.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

#define FETCH_SECS_MAX 86400L

/* NAME's value in env (NAME=VALUE entries, NULL-terminated), or NULL; an empty value is none. */
static const char *env_value(char *const *env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i][n + 1] ? env[i] + n + 1 : NULL;
	return NULL;
}

static int secs(char *const *env, const char *name, long *out, struct sbuf *err)
{
	const char *v = env_value(env, name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || v[0] < '0' || v[0] > '9' || n < 1 || n > FETCH_SECS_MAX) {
		sbuf_printf(err, "%s must be a whole number of seconds from 1 to %ld, not '%s'", name, FETCH_SECS_MAX,
			    v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

int fetch_settings_from_env(char *const *env, struct fetch_settings *set, struct sbuf *err)
{
	memset(set, 0, sizeof(*set));
	set->stall_secs = FETCH_STALL_SECS;
	set->connect_secs = FETCH_CONNECT_SECS;
	int r = secs(env, "PUNIX_FETCH_STALL_SECS", &set->stall_secs, err);
	if (r == 0)
		r = secs(env, "PUNIX_FETCH_CONNECT_SECS", &set->connect_secs, err);
	/* curl(1)'s order: CURL_CA_BUNDLE first, then SSL_CERT_FILE (OpenSSL's own variable) */
	set->ca_file = env_value(env, "CURL_CA_BUNDLE");
	if (!set->ca_file)
		set->ca_file = env_value(env, "SSL_CERT_FILE");
	return r;
}
