/*
 * fetch_curl.c - fetch_transfer with libcurl (fetch.h).
 *
 * libcurl is loaded with dlopen the first time a build fetches, as libssh2
 * is for SSH (engine/ssh2_api.h): linked, it brings some thirty shared
 * libraries (OpenSSL, GnuTLS, Kerberos, LDAP, ...) into the start of every
 * command, a rollback's included. The table of the functions used is
 * filled once (pthread_once) and never written again.
 *
 * A header (a url source's token, "Authorization: Bearer ...") is given
 * to libcurl as a custom header. libcurl sends a custom Authorization
 * header to the URL's host only: since 7.58.0 (CVE-2018-1000007) not to
 * another host a redirect leads to, and since 7.83.0 (CVE-2022-27776) not
 * on a change of port or protocol either, unless CURLOPT_UNRESTRICTED_AUTH
 * is set, which it never is here (tests/conformance/test_fetch.c,
 * "token_not_sent_across_hosts", checks a redirect to another host name).
 */
#define CURL_DISABLE_TYPECHECK /* plain calls through the table, not curl.h's checking macros */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch.h"

#define CURL_LIBRARY "libcurl.so.4"

#define CURL_FUNCTIONS(X)                                                                                             \
	X(curl_global_init)                                                                                           \
	X(curl_easy_init)                                                                                             \
	X(curl_easy_setopt)                                                                                           \
	X(curl_easy_perform)                                                                                          \
	X(curl_easy_getinfo)                                                                                          \
	X(curl_easy_cleanup)                                                                                          \
	X(curl_easy_strerror)                                                                                         \
	X(curl_slist_append)                                                                                          \
	X(curl_slist_free_all)

struct curl_api {
#define CURL_MEMBER(f) __typeof__(f) *f;
	CURL_FUNCTIONS(CURL_MEMBER)
#undef CURL_MEMBER
	int ok;
	char why[256];
};

#define FETCH_MAX_REDIRECTS 10L
#define FETCH_CONNECT_TIMEOUT_S 30L
#define FETCH_LOW_SPEED_BYTES 1024L
#define FETCH_LOW_SPEED_S 60L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static struct curl_api api; /* written once, in curl_init */

static void curl_init(void)
{
	void *h = dlopen(CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(api.why, sizeof(api.why), "cannot load %s (%s): install libcurl (Debian: libcurl4)", CURL_LIBRARY,
			 e ? e : "not found");
		return;
	}
#define CURL_FILL(f)                                                                                                  \
	*(void **)&api.f = dlsym(h, #f);                                                                              \
	if (!api.f) {                                                                                                 \
		snprintf(api.why, sizeof(api.why), "%s has no %s", CURL_LIBRARY, #f);                                \
		return;                                                                                               \
	}
	CURL_FUNCTIONS(CURL_FILL)
#undef CURL_FILL
	CURLcode rc = api.curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(api.why, sizeof(api.why), "cannot start libcurl: %s", api.curl_easy_strerror(rc));
		return;
	}
	api.ok = 1;
}

struct xfer {
	fetch_sink_fn sink;
	void *arg;
	uint64_t max, got;
	bool too_big, sink_failed;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (x->got + len > x->max) {
		x->too_big = true;
		return 0;
	}
	x->got += len;
	if (x->sink(x->arg, p, len) < 0) {
		x->sink_failed = true;
		return 0;
	}
	return len;
}

/* Zeroes the copies libcurl made of the headers (they may hold a token), then frees them. */
static void free_headers(const struct curl_api *k, struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next) {
		volatile char *p = l->data;
		while (p && *p)
			*p++ = 0;
	}
	k->curl_slist_free_all(list);
}

int fetch_transfer(const char *url, const char *header, uint64_t max, fetch_sink_fn sink, void *arg,
		   struct sbuf *err)
{
	pthread_once(&curl_once, curl_init);
	if (!api.ok) {
		sbuf_puts(err, api.why);
		return -1;
	}
	const struct curl_api *k = &api;
	CURL *c = k->curl_easy_init();
	if (!c) {
		sbuf_puts(err, "cannot start libcurl");
		return -1;
	}
	struct curl_slist *headers = NULL;
	if (header && !(headers = k->curl_slist_append(NULL, header))) {
		k->curl_easy_cleanup(c);
		sbuf_puts(err, "cannot start libcurl: out of memory");
		return -1;
	}
	struct xfer x = {sink, arg, max, 0, false, false};
	char msg[CURL_ERROR_SIZE] = "";
	k->curl_easy_setopt(c, CURLOPT_URL, url);
	k->curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
	k->curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	k->curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	k->curl_easy_setopt(c, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
	k->curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_CONNECT_TIMEOUT_S);
	k->curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FETCH_LOW_SPEED_BYTES);
	k->curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, FETCH_LOW_SPEED_S);
	k->curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	k->curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	k->curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	k->curl_easy_setopt(c, CURLOPT_USERAGENT, "punix/" PUNIX_VERSION_TEXT);
	k->curl_easy_setopt(c, CURLOPT_ERRORBUFFER, msg);
	k->curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	k->curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	/* never CURLOPT_UNRESTRICTED_AUTH: the header goes to url's host only */
	k->curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	if (headers)
		k->curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	CURLcode rc = k->curl_easy_perform(c);
	int r = 0;
	if (rc != CURLE_OK) {
		long status = 0;
		k->curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED)
			sbuf_printf(err, "it is larger than %llu bytes, the limit for a download", (unsigned long long)max);
		else if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400)
			sbuf_printf(err, "HTTP %ld", status);
		else if (!x.sink_failed)
			sbuf_printf(err, "%s", msg[0] ? msg : k->curl_easy_strerror(rc));
		r = -1;
	}
	k->curl_easy_cleanup(c);
	free_headers(k, headers);
	return r;
}
