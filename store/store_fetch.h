/*
 * store_fetch.h - the download cache of url sources (docs/building.md,
 * "The download cache").
 *
 * A file whose SHA-256 is H is kept as <cache>/sha256-<hex H>, written
 * once: downloaded into a partial file beside it (resumed if an earlier
 * download was cut short), its hash checked against the declared one,
 * fsynced, renamed into place. A cached file is hashed again
 * before each use; one that no longer matches is removed and fetched
 * again. Concurrent fetches of one hash serialise on the flock of
 * <cache>/sha256-<hex H>.lock. Files go through the ops table; the network
 * through the transfer function the caller hands in (engine/fetch.h).
 */
#ifndef PUNIX_STORE_FETCH_H
#define PUNIX_STORE_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "../base/ops.h"
#include "../base/sbuf.h"

/* No download is larger than this (4 GiB). */
#define FETCH_MAX_BYTES ((uint64_t)4 << 30)

/* Takes each piece of a download; 0, or <0 to stop it. */
typedef int (*fetch_sink_fn)(void *arg, const void *buf, size_t n);

/* The defaults of struct fetch_settings (docs/building.md, "The download cache"). */
#define FETCH_STALL_SECS 60L   /* a download slower than 1 KiB/s for this long is aborted */
#define FETCH_CONNECT_SECS 30L /* connecting may take this long */

/*
 * How downloads are made, besides what: read once from the environment the
 * CLI was started with (engine/fetch.h: fetch_settings_from_env), never
 * from a variable by the library. Zeroed, the defaults.
 */
struct fetch_settings {
	long stall_secs;     /* PUNIX_FETCH_STALL_SECS; 0: FETCH_STALL_SECS */
	long connect_secs;   /* PUNIX_FETCH_CONNECT_SECS; 0: FETCH_CONNECT_SECS */
	const char *ca_file; /* CURL_CA_BUNDLE or SSL_CERT_FILE: the CA bundle HTTPS is checked against; NULL: libcurl's */
	/*
	 * Told, now and then while a file downloads (about every 64 KiB, and
	 * as it begins and ends), its name, the bytes had so far (those of a
	 * resumed partial file included) and its whole size (0 while not
	 * known); or NULL. Called on the thread that builds: it must be cheap
	 * and thread-safe (engine.h: op_request.count).
	 */
	void (*progress)(void *arg, const char *name, uint64_t got, uint64_t total);
	void *progress_arg;
};

/* One download, as fetch_transfer is handed it. */
struct fetch_request {
	const char *url;
	/* one "Name: value" line without line break (a token), or NULL: sent to url's host only */
	const char *header;
	/* bytes already had: asked for from this offset on (an HTTP Range; file:// seeks); 0: the whole file */
	uint64_t resume_from;
	uint64_t max;                     /* the whole file's limit, resume_from included */
	const struct fetch_settings *set; /* or NULL: the defaults */
	const char *name;                 /* what progress calls the file */
};

/* fetch_transfer's answer when the server would not continue at resume_from (200 or 416): start over. */
#define FETCH_NO_RESUME 1
/* ... when the file is larger than max: what was had of it is of no use. */
#define FETCH_TOO_BIG (-2)

/*
 * Downloads rq->url from rq->resume_from on, into sink. 0; FETCH_NO_RESUME
 * (nothing was given to sink); FETCH_TOO_BIG; or -1 with err saying why in
 * a few words ("HTTP 404", "the download stalled: ...", "Could not resolve
 * host: ..."), never the header.
 */
typedef int (*fetch_transfer_fn)(const struct fetch_request *rq, fetch_sink_fn sink, void *arg, struct sbuf *err);

/*
 * A header a download sends (a url source's token: "Authorization: Bearer
 * ..."), made only when the file is not cached, so the secret in it is
 * read only when it is needed. make gives 0 with *line malloc'd (the
 * fetch wipes and frees it after the transfer), or <0 with why saying why
 * in a few words (where the secret was to come from), never a secret.
 */
struct fetch_header {
	int (*make)(void *arg, char **line, struct sbuf *why);
	void *arg;
};

/* A url source's file, and how to fetch it. */
struct fetch_source {
	const char *url;
	const char *name; /* the file's name (store_url_file_name), for progress */
	const unsigned char *hash; /* its declared SHA-256, 32 bytes: the cache's key */
	fetch_transfer_fn transfer;
	const struct fetch_header *header; /* or NULL */
	const struct fetch_settings *set;  /* or NULL: the defaults, no progress */
};

/*
 * Makes <cache_dir>/sha256-<hex hash> hold the bytes of src->url, whose
 * SHA-256 must be src->hash, fetching them with src->transfer unless they
 * are cached (then nothing touches the network, and the header, if any, is
 * not made). 0 with *path malloc'd (the cached file), or <0 with err
 * saying why: the header could not be made (-ENOKEY), the download failed
 * (-EIO), or its hash is not the declared one (-EBADMSG; err names both),
 * or an effect on the cache failed. Nothing enters the cache unless its
 * hash is the declared one; the cache's key is that hash alone.
 *
 * A download goes into <cache_dir>/.sha256-<hex hash>.part, which one cut
 * short (a dropped connection, a stall, the process killed) leaves behind:
 * the next fetch of that hash hashes what it holds and asks only for the
 * rest (store_fetch.c, "The partial file").
 */
int store_fetch(struct punix_ops *o, const char *cache_dir, const struct fetch_source *src, char **path,
		struct sbuf *err);

/*
 * The download cache made if missing and the flock of lock (an entry's
 * "<name>.lock" in it) taken, waiting: 0 with *h its handle, or <0 with
 * err saying which failed (*h -1). Every fetch into the cache holds one.
 */
int store_cache_lock(struct punix_ops *o, const char *cache_dir, const char *lock, int *h, struct sbuf *err);

/*
 * Makes <cache_dir>/git-<hex want> the tree of tag of the git repository
 * url (without its .git), whose tree hash (store_hash_tree) must be want,
 * cloning it with the git program unless it is cached. 0 with *path
 * malloc'd (the cached directory), or <0 with err saying why: git failed
 * or is missing (-EIO, -ENOENT), the tree's hash is not want (-EBADMSG;
 * err names both), or an effect on the cache failed (store_git.c).
 */
int store_fetch_git(struct punix_ops *o, const char *cache_dir, const char *url, const char *tag,
		    const unsigned char want[32], char **path, struct sbuf *err);

/*
 * The name a url's file gets in the build's src/: its last path component
 * (before any ?query or #fragment). NULL if it has none that can be a file
 * name (empty, ".", "..", or holding a '%'-escape or a control character).
 * malloc'd.
 */
char *store_url_file_name(const char *url);

#endif
