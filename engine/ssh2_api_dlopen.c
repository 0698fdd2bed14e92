/*
 * ssh2_api_dlopen.c - the libssh2 table, from libssh2.so.1 loaded with
 * dlopen the first time an op needs SSH (ssh2_api.h says why).
 *
 * The table is filled once under pthread_once and never written again:
 * it is process state in the way the loaded library itself is, and every
 * engine reads the same one.
 */
#define PUNIX_SSH2_API_IMPL
#include "ssh2_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define SSH2_LIBRARY "libssh2.so.1"

struct loaded {
	struct ssh2_api api;
	int ok;
	char why[256];
};

static struct loaded loaded; /* written once, in load_once */
static pthread_once_t load_guard = PTHREAD_ONCE_INIT;

static void load_once(void)
{
	void *h = dlopen(SSH2_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(loaded.why, sizeof(loaded.why), "cannot load %s (%s): install libssh2 (Debian: libssh2-1)",
			 SSH2_LIBRARY, e ? e : "not found");
		return;
	}
#define SSH2_FILL(f)                                                                                                  \
	*(void **)&loaded.api.f = dlsym(h, #f);                                                                       \
	if (!loaded.api.f) {                                                                                          \
		snprintf(loaded.why, sizeof(loaded.why), "%s has no %s: libssh2 1.10 or newer is needed",            \
			 SSH2_LIBRARY, #f);                                                                           \
		return;                                                                                               \
	}
	SSH2_FUNCTIONS(SSH2_FILL)
#undef SSH2_FILL
	loaded.ok = 1;
}

const struct ssh2_api *ssh2_load(struct sbuf *err)
{
	pthread_once(&load_guard, load_once);
	if (!loaded.ok) {
		if (err)
			sbuf_puts(err, loaded.why);
		return NULL;
	}
	return &loaded.api;
}

const struct ssh2_api *ssh2_api(void)
{
	return &loaded.api;
}
