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
 * GETs rq->url (http, https or file; redirects followed, at most 10;
 * connecting may take rq->set's connect_secs, default 30; aborted below
 * 1 KiB/s for its stall_secs, default 60; at most rq->max bytes; an HTTP
 * status >= 400 fails) from rq->resume_from on (a Range request), into
 * sink, with rq->header (or NULL) sent to url's host only; HTTPS checked
 * against rq->set's ca_file if it names one. A fetch_transfer_fn
 * (store/store_fetch.h).
 */
int fetch_transfer(const struct fetch_request *rq, fetch_sink_fn sink, void *arg, struct sbuf *err);

/*
 * The settings of downloads (store/store_fetch.h), from env (NAME=VALUE,
 * NULL-terminated: the environment the CLI was started with, read here
 * once; the library calls no getenv): PUNIX_FETCH_STALL_SECS and
 * PUNIX_FETCH_CONNECT_SECS (whole seconds, 1 to 86400), and the CA bundle
 * CURL_CA_BUNDLE names, else SSL_CERT_FILE (as curl(1) takes them; an
 * empty one is unset). ca_file points into env. 0, or -EINVAL with err
 * naming the variable and what it must be. progress is left NULL.
 */
int fetch_settings_from_env(char *const *env, struct fetch_settings *set, struct sbuf *err);

/*
 * Reads an archive of format f (only the compression and the format f
 * names) from src with libarchive, handing each entry to each; it writes
 * nothing. An unpack_read_fn (store/store_unpack.h).
 */
int fetch_archive_read(enum unpack_format f, struct unpack_source *src, unpack_each_fn each, void *arg,
		       struct sbuf *err);

#endif
