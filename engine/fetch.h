/*
 * fetch.h - the network seam of url sources: one function, a download.
 *
 * punix fills it with libcurl (fetch_curl.c); punix-static, which never
 * builds (it only serves hosts), with a stub that says so (fetch_none.c).
 * Everything else a fetch does (the cache, its lock, the hash check) is
 * files, through the ops table (store/store_fetch.c).
 */
#ifndef PUNIX_ENGINE_FETCH_H
#define PUNIX_ENGINE_FETCH_H

#include "../store/store_fetch.h"

/*
 * GETs url (http, https or file; redirects followed, at most 10; connect
 * timeout 30 s; abort below 1 KiB/s for 60 s; at most max bytes; an HTTP
 * status >= 400 fails) into sink, with header (or NULL) sent to url's host
 * only. A fetch_transfer_fn.
 */
int fetch_transfer(const char *url, const char *header, uint64_t max, fetch_sink_fn sink, void *arg,
		   struct sbuf *err);

#endif
