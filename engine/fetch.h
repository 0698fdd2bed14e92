/*
 * fetch.h - the seams of url sources: a download, and the reading of an
 * archive.
 *
 * punix fills them with libcurl (fetch_curl.c) and libarchive
 * (fetch_archive.c), both loaded with dlopen; punix-static, which never
 * builds (it only serves hosts), with stubs that say so (fetch_none.c).
 * Everything else a fetch does (the cache, its lock, the hash check) is
 * files, through the ops table (store/store_fetch.c), and so is the
 * writing of an archive's entries (store/store_unpack.c).
 */
#ifndef PUNIX_ENGINE_FETCH_H
#define PUNIX_ENGINE_FETCH_H

#include "../store/store_fetch.h"
#include "../store/store_unpack.h"

/*
 * GETs url (http, https or file; redirects followed, at most 10; connect
 * timeout 30 s; abort below 1 KiB/s for 60 s; at most max bytes; an HTTP
 * status >= 400 fails) into sink, with header (or NULL) sent to url's host
 * only. A fetch_transfer_fn.
 */
int fetch_transfer(const char *url, const char *header, uint64_t max, fetch_sink_fn sink, void *arg,
		   struct sbuf *err);

/*
 * Reads an archive of format f (only the compression and the format f
 * names) from src with libarchive, handing each entry to each; it writes
 * nothing. An unpack_read_fn (store/store_unpack.h).
 */
int fetch_archive_read(enum unpack_format f, struct unpack_source *src, unpack_each_fn each, void *arg,
		       struct sbuf *err);

#endif
