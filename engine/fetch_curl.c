/*
 * fetch_curl.c - fetch_transfer with libcurl (fetch.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch.h"

#define FETCH_MAX_REDIRECTS 10L
#define FETCH_CONNECT_TIMEOUT_S 30L
#define FETCH_LOW_SPEED_BYTES 1024L
#define FETCH_LOW_SPEED_S 60L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
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

int fetch_transfer(const char *url, uint64_t max, fetch_sink_fn sink, void *arg, struct sbuf *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		sbuf_printf(err, "cannot start libcurl: %s", curl_easy_strerror(curl_init_rc));
		return -1;
	}
	CURL *c = curl_easy_init();
	if (!c) {
		sbuf_puts(err, "cannot start libcurl");
		return -1;
	}
	struct xfer x = {sink, arg, max, 0, false, false};
	char msg[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRECTS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, FETCH_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FETCH_LOW_SPEED_BYTES);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, FETCH_LOW_SPEED_S);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "punix/" PUNIX_VERSION_TEXT);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, msg);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	CURLcode rc = curl_easy_perform(c);
	int r = 0;
	if (rc != CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED)
			sbuf_printf(err, "it is larger than %llu bytes, the limit for a download", (unsigned long long)max);
		else if (rc == CURLE_HTTP_RETURNED_ERROR && status >= 400)
			sbuf_printf(err, "HTTP %ld", status);
		else if (!x.sink_failed)
			sbuf_printf(err, "%s", msg[0] ? msg : curl_easy_strerror(rc));
		r = -1;
	}
	curl_easy_cleanup(c);
	return r;
}
