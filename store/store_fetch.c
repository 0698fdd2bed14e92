/*
 * store_fetch.c - the download cache of url sources (store_fetch.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "../base/xalloc.h"
#include "store.h"
#include "store_fetch.h"

char *store_url_file_name(const char *url)
{
	size_t end = strcspn(url, "?#");
	const char *scheme = strstr(url, "://");
	size_t start = scheme && (size_t)(scheme - url) < end ? (size_t)(scheme - url) + 3 : 0;
	/* after the authority (host[:port]) of http(s); file:// has an empty one */
	const char *slash = memchr(url + start, '/', end - start);
	if (!slash)
		return NULL;
	const char *name = slash;
	for (const char *p = slash; p < url + end; p++)
		if (*p == '/')
			name = p + 1;
	size_t n = (size_t)(url + end - name);
	if (n == 0 || (n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '%' || name[i] == '\\')
			return NULL;
	return xstrndup(name, n);
}

/*
 * The partial file
 *
 * A download is written to <cache>/.sha256-<hex>.part, a fixed name,
 * always under the flock of <cache>/sha256-<hex>.lock: no two fetches of
 * one hash ever touch it at once, and the cache directory is punix's own
 * (made by it, 0755, writable by its user only), so nobody else makes or
 * swaps a file there. The name holds the declared hash and nothing else:
 * never the URL nor a token. It is created O_EXCL|O_NOFOLLOW, mode 0600
 * (bytes not yet checked are nobody else's to read); an existing one is
 * opened O_NOFOLLOW, and one that is not a regular file, or is larger than
 * FETCH_MAX_BYTES, is removed first. A fetch that finds one hashes its
 * bytes, then asks the server only for the rest (fetch_request.resume_from)
 * and goes on hashing what arrives, so the whole file's SHA-256 is still
 * checked before it enters the cache. If the server will not resume (200
 * or 416 to the Range), or the whole file then has another hash, it starts
 * over once from nothing. A failed transfer keeps what it got, for the next
 * fetch; a wrong hash, a file too large, or a write that failed removes it.
 */

/* Hashes the file at path into c, through the table: its length in *len. */
static int hash_into(struct punix_ops *o, const char *path, struct sha256_ctx *c, uint64_t *len)
{
	int h, r = o->open(o, path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &h);
	if (r < 0)
		return r;
	*len = 0;
	char buf[65536];
	for (;;) {
		ssize_t n = o->read(o, h, buf, sizeof(buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		sha256_update(c, (size_t)n, (const uint8_t *)buf);
		*len += (uint64_t)n;
	}
	o->close(o, h);
	return r;
}

/* The SHA-256 of the file at path, through the table. */
static int hash_file(struct punix_ops *o, const char *path, unsigned char out[32])
{
	struct sha256_ctx c;
	sha256_init(&c);
	uint64_t len;
	int r = hash_into(o, path, &c, &len);
	if (r == 0)
		sha256_digest(&c, SHA256_DIGEST_SIZE, out);
	return r;
}

struct sink {
	struct punix_ops *o;
	int h;
	struct sha256_ctx c;
	uint64_t len; /* bytes in the partial file */
	int error;    /* of a write to it */
};

static int sink_write(void *arg, const void *buf, size_t n)
{
	struct sink *s = arg;
	sha256_update(&s->c, n, buf);
	const char *p = buf;
	while (n) {
		ssize_t w = s->o->write(s->o, s->h, p, n);
		if (w < 0) {
			s->error = (int)w;
			return (int)w;
		}
		p += w;
		n -= (size_t)w;
		s->len += (uint64_t)w;
	}
	return 0;
}

static void wipe_line(char *line)
{
	if (!line)
		return;
	volatile char *p = line;
	while (*p)
		*p++ = 0;
	free(line);
}

/* A fresh, empty partial file at part (anything there removed first), open in s. */
static int part_create(struct punix_ops *o, const char *part, struct sink *s, struct sbuf *err)
{
	int r = ops_remove_tree(o, part);
	if (r < 0 && r != -ENOENT) {
		sbuf_printf(err, "cannot remove %s: %s", part, strerror(-r));
		return r;
	}
	sha256_init(&s->c);
	s->len = 0;
	r = o->open(o, part, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW, 0600, &s->h);
	if (r < 0) {
		s->h = -1;
		sbuf_printf(err, "cannot create %s: %s", part, strerror(-r));
	}
	return r;
}

/* The partial file at part open in s to go on with, its bytes hashed; a new one if there is none to use. */
static int part_open(struct punix_ops *o, const char *part, struct sink *s, struct sbuf *err)
{
	struct ops_stat st;
	int r = o->stat(o, part, 0, &st);
	if (r == -ENOENT || (r == 0 && (st.type != OPS_FT_REG || st.size > FETCH_MAX_BYTES)))
		return part_create(o, part, s, err);
	if (r < 0) {
		sbuf_printf(err, "cannot stat %s: %s", part, strerror(-r));
		return r;
	}
	sha256_init(&s->c);
	if ((r = hash_into(o, part, &s->c, &s->len)) < 0 || s->len > FETCH_MAX_BYTES)
		return part_create(o, part, s, err); /* unreadable, or grown since: of no use */
	r = o->open(o, part, OPS_O_WRONLY | OPS_O_APPEND | OPS_O_NOFOLLOW, 0, &s->h);
	if (r < 0) {
		s->h = -1;
		sbuf_printf(err, "cannot open %s: %s", part, strerror(-r));
	}
	return r;
}

/* The digest of what s has hashed so far, s still able to go on. */
static void sink_digest(const struct sink *s, unsigned char out[32])
{
	struct sha256_ctx c = s->c;
	sha256_digest(&c, SHA256_DIGEST_SIZE, out);
}

/*
 * Fetches src into the partial file part (resuming it) and, if its hash is
 * src->hash, renames it to final.
 */
static int download(struct punix_ops *o, const char *cache_dir, const struct fetch_source *src, const char *part,
		    const char *final, struct sbuf *err)
{
	/* the header first: a secret that cannot be had leaves nothing behind */
	char *line = NULL;
	if (src->header && src->header->make(src->header->arg, &line, err) < 0)
		return -ENOKEY;
	struct sink s = {.o = o, .h = -1};
	int r = part_open(o, part, &s, err);
	bool keep = true; /* what the partial file holds is worth going on with */
	unsigned char got[32];
	for (int attempt = 0; r == 0; attempt++) {
		sink_digest(&s, got);
		if (s.len > 0 && memcmp(got, src->hash, 32) == 0)
			break; /* all of it was had (cut short before the rename): no network */
		struct fetch_request rq = {src->url, line, s.len, FETCH_MAX_BYTES, src->set, src->name};
		uint64_t had = s.len;
		struct sbuf why = SBUF_INIT;
		r = src->transfer(&rq, sink_write, &s, &why);
		if (r < 0 && s.error) {
			sbuf_printf(err, "cannot write %s: %s", part, strerror(-s.error));
			r = s.error;
			keep = false;
		} else if (r < 0) {
			sbuf_printf(err, "%s", why.sb_len ? why.sb_buf : "the download failed");
			keep = r != FETCH_TOO_BIG;
			r = -EIO;
		}
		sbuf_free(&why);
		if (r < 0)
			break;
		if (r == 0)
			sink_digest(&s, got);
		if (r == 0 && memcmp(got, src->hash, 32) == 0)
			break;
		if (attempt == 0 && had > 0) {
			/* the server would not go on, or the bytes had were not the file's: once more, all of it */
			o->close(o, s.h);
			s.h = -1;
			r = part_create(o, part, &s, err);
			keep = r == 0;
			continue;
		}
		char g[65], w[65];
		store_hex(got, 32, g);
		store_hex(src->hash, 32, w);
		if (r == FETCH_NO_RESUME) /* not from 0: cannot be, but never taken for a file */
			sbuf_puts(err, "the server would not send it");
		else
			sbuf_printf(err, "its sha256 is %s, but the declared hash is %s", g, w);
		r = r == FETCH_NO_RESUME ? -EIO : -EBADMSG;
		keep = false;
	}
	wipe_line(line); /* a secret in it stays in memory no longer than the transfer */
	if (r == 0 && (r = o->fchmod(o, s.h, 0644)) < 0)
		sbuf_printf(err, "cannot set the mode of %s: %s", part, strerror(-r));
	if (r == 0 && (r = o->fsync(o, s.h)) < 0)
		sbuf_printf(err, "cannot fsync %s: %s", part, strerror(-r));
	if (s.h >= 0) {
		int rc = o->close(o, s.h);
		if (r == 0 && rc < 0) {
			r = rc;
			sbuf_printf(err, "cannot write %s: %s", part, strerror(-r));
		}
	}
	if (r == 0 && (r = o->rename(o, part, final)) < 0)
		sbuf_printf(err, "cannot rename %s to %s: %s", part, final, strerror(-r));
	if (r == 0 && (r = o->fsync_path(o, cache_dir)) < 0)
		sbuf_printf(err, "cannot fsync %s: %s", cache_dir, strerror(-r));
	if (r < 0 && s.h >= 0 && (!keep || s.len == 0))
		o->unlink(o, part); /* nothing worth resuming (a failure of its own is the first one's) */
	return r;
}

int store_cache_lock(struct punix_ops *o, const char *cache_dir, const char *lock, int *h, struct sbuf *err)
{
	*h = -1;
	int r = ops_mkdir_p(o, cache_dir, 0755);
	if (r < 0)
		sbuf_printf(err, "cannot create the download cache %s: %s", cache_dir, strerror(-r));
	else if ((r = o->lock(o, lock, 1, 1, h)) < 0)
		sbuf_printf(err, "cannot lock %s: %s", lock, strerror(-r));
	return r;
}

int store_fetch(struct punix_ops *o, const char *cache_dir, const struct fetch_source *src, char **path,
		struct sbuf *err)
{
	*path = NULL;
	char hex[65];
	store_hex(src->hash, 32, hex);
	struct sbuf final = SBUF_INIT, lock = SBUF_INIT, part = SBUF_INIT;
	sbuf_printf(&final, "%s/sha256-%s", cache_dir, hex);
	sbuf_printf(&lock, "%s.lock", final.sb_buf);
	sbuf_printf(&part, "%s/.sha256-%s.part", cache_dir, hex);
	int h = -1;
	int r = store_cache_lock(o, cache_dir, lock.sb_buf, &h, err);
	if (r < 0)
		goto out;

	struct ops_stat st;
	if (o->stat(o, final.sb_buf, 0, &st) == 0) {
		unsigned char got[32];
		if (st.type == OPS_FT_REG && hash_file(o, final.sb_buf, got) == 0 && memcmp(got, src->hash, 32) == 0)
			goto out; /* cached, and still what was declared */
		/* changed since it was cached (or not a file): fetch it again */
		if ((r = ops_remove_tree(o, final.sb_buf)) < 0) {
			sbuf_printf(err, "cannot remove %s, which no longer has its hash: %s", final.sb_buf,
				    strerror(-r));
			goto out;
		}
	}
	r = download(o, cache_dir, src, part.sb_buf, final.sb_buf, err);
out:
	if (h >= 0)
		o->unlock(o, h);
	sbuf_free(&lock);
	sbuf_free(&part);
	if (r == 0)
		*path = sbuf_detach(&final, NULL);
	else
		sbuf_free(&final);
	return r;
}
