/*
 * store_fetch.h - the download cache of url sources (docs/building.md,
 * "The download cache").
 *
 * A file whose SHA-256 is H is kept as <cache>/sha256-<hex H>, written
 * once: to an O_EXCL temporary beside it, its hash checked against the
 * declared one, fsynced, renamed into place. A cached file is hashed again
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
/*
 * Downloads url, at most max bytes, into sink, sending header (one
 * "Name: value" line without line break, or NULL for none) with the
 * request, and to no other host a redirect leads to. 0, or <0 with err
 * saying why in a few words ("HTTP 404", "Could not resolve host: ..."),
 * never the header.
 */
typedef int (*fetch_transfer_fn)(const char *url, const char *header, uint64_t max, fetch_sink_fn sink, void *arg,
				 struct sbuf *err);

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

/*
 * Makes <cache_dir>/sha256-<hex want> hold the bytes of url, whose SHA-256
 * must be want, fetching them with transfer unless they are cached (then
 * nothing touches the network, and header, if not NULL, is not made). 0
 * with *path malloc'd (the cached file), or <0 with err saying why: the
 * header could not be made (-ENOKEY), the download failed (-EIO), or its
 * hash is not want (-EBADMSG; err names both), or an effect on the cache
 * failed. Nothing enters the cache unless its hash is want; the cache's
 * key is want alone.
 */
int store_fetch(struct punix_ops *o, const char *cache_dir, const char *url, const unsigned char want[32],
		fetch_transfer_fn transfer, const struct fetch_header *header, char **path, struct sbuf *err);

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
