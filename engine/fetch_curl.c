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
#define FETCH_LOW_SPEED_BYTES 1024L
#define FETCH_PROGRESS_BYTES ((uint64_t)64 << 10)

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
	const struct fetch_request *rq;
	uint64_t max, got; /* got: the bytes had, resume_from's included */
	uint64_t total;    /* the whole size, once the server said it (else 0) */
	uint64_t shown;    /* got when progress was last told */
	bool told, too_big, sink_failed;
};

static void tell(struct xfer *x)
{
	const struct fetch_settings *set = x->rq->set;
	if (!set || !set->progress)
		return;
	x->shown = x->got;
	x->told = true;
	set->progress(set->progress_arg, x->rq->name ? x->rq->name : "", x->got, x->total);
}

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

/* libcurl's progress callback (often: several times a second): progress told about every 64 KiB. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dlnow, (void)ultotal, (void)ulnow;
	struct xfer *x = arg;
	uint64_t total = dltotal > 0 ? x->rq->resume_from + (uint64_t)dltotal : 0;
	bool news = total != x->total;
	x->total = total;
	if (!x->told || news || x->got - x->shown >= FETCH_PROGRESS_BYTES)
		tell(x);
	return 0;
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

/* Why a transfer that was not CURLE_OK failed, in a few words, into err. */
static void say_why(const struct curl_api *k, CURL *c, CURLcode rc, const struct xfer *x, long stall, long connect,
		    const char *msg, struct sbuf *err)
{
	long status = 0;
	k->curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	const char *what = msg[0] ? msg : k->curl_easy_strerror(rc);
	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		sbuf_printf(err, "it is larger than %llu bytes, the limit for a download", (unsigned long long)x->max);
	} else if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400) {
		sbuf_printf(err, "HTTP %ld", status);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t connected = 0;
		k->curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
		if (connected > 0)
			sbuf_printf(err,
				    "the download stalled: less than %ld bytes a second for %ld s, after %llu bytes "
				    "(PUNIX_FETCH_STALL_SECS)%s",
				    FETCH_LOW_SPEED_BYTES, stall, (unsigned long long)x->got,
				    x->got ? "; what it got is kept, and the next fetch resumes it" : "");
		else
			sbuf_printf(err, "cannot connect within %ld s (PUNIX_FETCH_CONNECT_SECS): %s", connect, what);
	} else if (rc == CURLE_PEER_FAILED_VERIFICATION) {
		sbuf_printf(err,
			    "certificate verification failed: %s (name the CA bundle that signed the server's certificate "
			    "with SSL_CERT_FILE or CURL_CA_BUNDLE)",
			    what);
	} else if (rc == CURLE_SSL_CACERT_BADFILE) {
		sbuf_printf(err, "cannot use the CA bundle (SSL_CERT_FILE or CURL_CA_BUNDLE): %s", what);
	} else if (!x->sink_failed) {
		sbuf_printf(err, "%s", what);
	}
}

int fetch_transfer(const struct fetch_request *rq, fetch_sink_fn sink, void *arg, struct sbuf *err)
{
	pthread_once(&curl_once, curl_init);
	if (!api.ok) {
		sbuf_puts(err, api.why);
		return -1;
	}
	if (rq->resume_from >= rq->max) {
		sbuf_printf(err, "it is larger than %llu bytes, the limit for a download", (unsigned long long)rq->max);
		return FETCH_TOO_BIG;
	}
	const struct curl_api *k = &api;
	CURL *c = k->curl_easy_init();
	if (!c) {
		sbuf_puts(err, "cannot start libcurl");
		return -1;
	}
	struct curl_slist *headers = NULL;
	if (rq->header && !(headers = k->curl_slist_append(NULL, rq->header))) {
		k->curl_easy_cleanup(c);
		sbuf_puts(err, "cannot start libcurl: out of memory");
		return -1;
	}
	const struct fetch_settings *set = rq->set;
	long stall = set && set->stall_secs > 0 ? set->stall_secs : FETCH_STALL_SECS;
	long connect = set && set->connect_secs > 0 ? set->connect_secs : FETCH_CONNECT_SECS;
	struct xfer x = {.sink = sink, .arg = arg, .rq = rq, .max = rq->max, .got = rq->resume_from};
	char msg[CURL_ERROR_SIZE] = "";
	k->curl_easy_setopt(c, CURLOPT_URL, rq->url);
	k->curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
	k->curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	k->curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	k->curl_easy_setopt(c, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
	k->curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect);
	k->curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FETCH_LOW_SPEED_BYTES);
	k->curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall);
	/* libcurl checks the size the server announces for what it sends: the rest */
	k->curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(rq->max - rq->resume_from));
	if (rq->resume_from > 0)
		k->curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)rq->resume_from);
	if (set && set->ca_file)
		k->curl_easy_setopt(c, CURLOPT_CAINFO, set->ca_file);
	k->curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	k->curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	k->curl_easy_setopt(c, CURLOPT_USERAGENT, "punix/" PUNIX_VERSION_TEXT);
	k->curl_easy_setopt(c, CURLOPT_ERRORBUFFER, msg);
	k->curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	k->curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	if (set && set->progress) {
		k->curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		k->curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
		k->curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	/* never CURLOPT_UNRESTRICTED_AUTH: the header goes to url's host only */
	k->curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	if (headers)
		k->curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	CURLcode rc = k->curl_easy_perform(c);
	long status = 0;
	k->curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	int r = 0;
	if (rq->resume_from > 0 && x.got == rq->resume_from &&
	    (rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME || status == 416 ||
	     (rc == CURLE_OK && status == 200))) {
		/*
		 * The server would not go on from there: it ignored the Range (200;
		 * libcurl refuses the whole file then, or takes it as already had
		 * when its size is resume_from), or said it cannot be had (416).
		 */
		r = FETCH_NO_RESUME;
	} else if (rc != CURLE_OK) {
		say_why(k, c, rc, &x, stall, connect, msg, err);
		r = x.too_big || rc == CURLE_FILESIZE_EXCEEDED ? FETCH_TOO_BIG : -1;
	} else if (set && set->progress) {
		x.total = x.got; /* the last word: all of it */
		tell(&x);
	}
	k->curl_easy_cleanup(c);
	free_headers(k, headers);
	return r;
}
