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

/* The SHA-256 of the file at path, through the table. */
static int hash_file(struct punix_ops *o, const char *path, unsigned char out[32])
{
	int h, r = o->open(o, path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &h);
	if (r < 0)
		return r;
	struct sha256_ctx c;
	sha256_init(&c);
	char buf[65536];
	for (;;) {
		ssize_t n = o->read(o, h, buf, sizeof(buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		sha256_update(&c, (size_t)n, (const uint8_t *)buf);
	}
	o->close(o, h);
	if (r == 0)
		sha256_digest(&c, SHA256_DIGEST_SIZE, out);
	return r;
}

struct sink {
	struct punix_ops *o;
	int h;
	struct sha256_ctx c;
	int error; /* of a write to the temporary */
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

/* Downloads url into tmp and, if its hash is want, renames it to final. */
static int download(struct punix_ops *o, const char *cache_dir, const char *url, const unsigned char want[32],
		    fetch_transfer_fn transfer, const struct fetch_header *header, const char *final, struct sbuf *err)
{
	/* the header first: a secret that cannot be had leaves nothing behind */
	char *line = NULL;
	if (header && header->make(header->arg, &line, err) < 0)
		return -ENOKEY;
	char *tmp = ops_tmp_name(final);
	struct sink s = {.o = o, .h = -1};
	sha256_init(&s.c);
	int r = o->open(o, tmp, OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW, 0644, &s.h);
	if (r < 0) {
		sbuf_printf(err, "cannot create %s: %s", tmp, strerror(-r));
		free(tmp);
		wipe_line(line);
		return r;
	}
	struct sbuf why = SBUF_INIT;
	r = transfer(url, line, FETCH_MAX_BYTES, sink_write, &s, &why);
	wipe_line(line); /* a secret in it stays in memory no longer than the transfer */
	if (r < 0 && s.error) {
		sbuf_printf(err, "cannot write %s: %s", tmp, strerror(-s.error));
		r = s.error;
	} else if (r < 0) {
		sbuf_printf(err, "%s", why.sb_len ? why.sb_buf : "the download failed");
		r = -EIO;
	}
	sbuf_free(&why);
	if (r == 0) {
		unsigned char got[32];
		sha256_digest(&s.c, SHA256_DIGEST_SIZE, got);
		if (memcmp(got, want, 32) != 0) {
			char g[65], w[65];
			store_hex(got, 32, g);
			store_hex(want, 32, w);
			sbuf_printf(err, "its sha256 is %s, but the declared hash is %s", g, w);
			r = -EBADMSG;
		}
	}
	if (r == 0 && (r = o->fsync(o, s.h)) < 0)
		sbuf_printf(err, "cannot fsync %s: %s", tmp, strerror(-r));
	int rc = o->close(o, s.h);
	if (r == 0 && rc < 0) {
		r = rc;
		sbuf_printf(err, "cannot write %s: %s", tmp, strerror(-r));
	}
	if (r == 0 && (r = o->rename(o, tmp, final)) < 0)
		sbuf_printf(err, "cannot rename %s to %s: %s", tmp, final, strerror(-r));
	if (r == 0 && (r = o->fsync_path(o, cache_dir)) < 0)
		sbuf_printf(err, "cannot fsync %s: %s", cache_dir, strerror(-r));
	if (r < 0)
		o->unlink(o, tmp);
	free(tmp);
	return r;
}

int store_fetch(struct punix_ops *o, const char *cache_dir, const char *url, const unsigned char want[32],
		fetch_transfer_fn transfer, const struct fetch_header *header, char **path, struct sbuf *err)
{
	*path = NULL;
	char hex[65];
	store_hex(want, 32, hex);
	struct sbuf final = SBUF_INIT, lock = SBUF_INIT;
	sbuf_printf(&final, "%s/sha256-%s", cache_dir, hex);
	sbuf_printf(&lock, "%s.lock", final.sb_buf);
	int h = -1;
	int r = ops_mkdir_p(o, cache_dir, 0755);
	if (r < 0)
		sbuf_printf(err, "cannot create the download cache %s: %s", cache_dir, strerror(-r));
	else if ((r = o->lock(o, lock.sb_buf, 1, 1, &h)) < 0)
		sbuf_printf(err, "cannot lock %s: %s", lock.sb_buf, strerror(-r));
	if (r < 0)
		goto out;

	struct ops_stat st;
	if (o->stat(o, final.sb_buf, 0, &st) == 0) {
		unsigned char got[32];
		if (st.type == OPS_FT_REG && hash_file(o, final.sb_buf, got) == 0 && memcmp(got, want, 32) == 0)
			goto out; /* cached, and still what was declared */
		/* changed since it was cached (or not a file): fetch it again */
		if ((r = ops_remove_tree(o, final.sb_buf)) < 0) {
			sbuf_printf(err, "cannot remove %s, which no longer has its hash: %s", final.sb_buf,
				    strerror(-r));
			goto out;
		}
	}
	r = download(o, cache_dir, url, want, transfer, header, final.sb_buf, err);
out:
	if (h >= 0)
		o->unlock(o, h);
	sbuf_free(&lock);
	if (r == 0)
		*path = sbuf_detach(&final, NULL);
	else
		sbuf_free(&final);
	return r;
}
