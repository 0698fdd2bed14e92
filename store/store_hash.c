/*
 * store_hash.c - SHA-256, the encodings of hashes, and the canonical tree
 * hash used for sources (derivation input) and outputs (verification).
 *
 * Tree serialisation, fed to SHA-256 as it is produced (never held whole):
 *
 *   "punix-tree 1\n" entry
 *   entry := "d" count "\n" { len ":" name entry }   children in byte order
 *          | "f" size "\n" contents                    a regular file
 *          | "x" size "\n" contents                    an executable file
 *          | "l" len ":" target                        a symbolic link
 *
 * Only the executable bit of a mode is kept: the other bits depend on the
 * umask of whoever checked the tree out, and would make equal trees hash
 * differently. Anything but files, directories and links is an error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "store.h"

/*
 * Nettle's SHA-256 (Debian's libnettle8, which uses the CPU's SHA
 * extensions where there are some): a library that starts in microseconds,
 * where OpenSSL's libcrypto costs a millisecond of every command's start.
 */
void store_sha256(const void *p, size_t n, unsigned char out[32])
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, n, p);
	sha256_digest(&c, SHA256_DIGEST_SIZE, out);
}

void store_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void store_base32(const unsigned char hash[32], char out[STORE_HASH_CHARS + 1])
{
	/* Nix's alphabet: no e, o, u, t, so no words appear by accident. */
	static const char alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";
	/* 20 bytes = 160 bits = 32 digits of 5 bits, most significant first. */
	for (int i = 0; i < STORE_HASH_CHARS; i++) {
		int bit = i * 5;
		int byte = bit / 8, shift = bit % 8;
		unsigned v = (unsigned)hash[byte] << 8 | (byte + 1 < 20 ? hash[byte + 1] : 0);
		out[i] = alphabet[(v >> (11 - shift)) & 31];
	}
	out[STORE_HASH_CHARS] = '\0';
}

struct tree_hasher {
	struct punix_ops *ops;
	struct sha256_ctx md;
	uint64_t bytes;
	int depth;
	char buf[1 << 16];
};

static void feed(struct tree_hasher *t, const void *p, size_t n)
{
	sha256_update(&t->md, n, p);
}

static void feedf(struct tree_hasher *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void feedf(struct tree_hasher *t, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	feed(t, buf, (size_t)n);
}

static int hash_entry(struct tree_hasher *t, const char *path);

static int hash_file(struct tree_hasher *t, const char *path, const struct ops_stat *st)
{
	int h, r = t->ops->open(t->ops, path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &h);
	if (r < 0)
		return r;
	feedf(t, "%c%" PRIu64 "\n", (st->mode & 0111) ? 'x' : 'f', st->size);
	uint64_t seen = 0;
	for (;;) {
		ssize_t n = t->ops->read(t->ops, h, t->buf, sizeof(t->buf));
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			break;
		feed(t, t->buf, (size_t)n);
		seen += (uint64_t)n;
	}
	t->ops->close(t->ops, h);
	if (r == 0 && seen != st->size)
		r = -EAGAIN; /* the file changed while it was read */
	t->bytes += seen;
	return r;
}

static int hash_dir(struct tree_hasher *t, const char *path)
{
	char **names;
	size_t n;
	int r = t->ops->list_dir(t->ops, path, &names, &n);
	if (r < 0)
		return r;
	feedf(t, "d%zu\n", n);
	for (size_t i = 0; i < n && r == 0; i++) {
		feedf(t, "%zu:", strlen(names[i]));
		feed(t, names[i], strlen(names[i]));
		struct sbuf child = SBUF_INIT;
		sbuf_printf(&child, "%s/%s", path, names[i]);
		r = hash_entry(t, child.sb_buf);
		sbuf_free(&child);
	}
	ops_free_names(names, n);
	return r;
}

static int hash_entry(struct tree_hasher *t, const char *path)
{
	struct ops_stat st;
	int r = t->ops->stat(t->ops, path, 0, &st);
	if (r < 0)
		return r;
	switch (st.type) {
	case OPS_FT_REG:
		return hash_file(t, path, &st);
	case OPS_FT_LINK: {
		char *target;
		r = t->ops->readlink(t->ops, path, &target);
		if (r < 0)
			return r;
		feedf(t, "l%zu:", strlen(target));
		feed(t, target, strlen(target));
		free(target);
		return 0;
	}
	case OPS_FT_DIR:
		if (++t->depth > 256)
			return -ELOOP;
		r = hash_dir(t, path);
		t->depth--;
		return r;
	case OPS_FT_OTHER:
		break;
	}
	return -EINVAL;
}

int store_hash_tree(struct punix_ops *ops, const char *path, unsigned char out[32], uint64_t *bytes)
{
	struct tree_hasher *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ops = ops;
	sha256_init(&t->md);
	feed(t, "punix-tree 1\n", 13);
	int r = hash_entry(t, path);
	if (r == 0)
		sha256_digest(&t->md, SHA256_DIGEST_SIZE, out);
	if (r == 0 && bytes)
		*bytes = t->bytes;
	free(t);
	return r;
}
