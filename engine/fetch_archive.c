/*
 * fetch_archive.c - fetch_archive_read with libarchive (fetch.h).
 *
 * libarchive only reads here: it pulls the archive's bytes from the store
 * (store_unpack.h's source, through the ops table) and hands each entry's
 * header and contents back; the store writes every entry itself. Loaded
 * with dlopen the first time a build unpacks, as libcurl is
 * (fetch_curl.c): linked, it would bring its compression libraries into
 * the start of every command. The table of the functions used is filled
 * once (pthread_once) and never written again.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "../base/xalloc.h"
#include "fetch.h"

#define ARCHIVE_LIBRARY "libarchive.so.13"

#define ARCHIVE_FUNCTIONS(X)                                                                                          \
	X(archive_read_new)                                                                                           \
	X(archive_read_free)                                                                                          \
	X(archive_read_support_filter_gzip)                                                                           \
	X(archive_read_support_filter_xz)                                                                             \
	X(archive_read_support_filter_zstd)                                                                           \
	X(archive_read_support_format_tar)                                                                            \
	X(archive_read_support_format_zip)                                                                            \
	X(archive_read_set_callback_data)                                                                             \
	X(archive_read_set_read_callback)                                                                             \
	X(archive_read_set_seek_callback)                                                                             \
	X(archive_read_open1)                                                                                         \
	X(archive_read_next_header)                                                                                   \
	X(archive_read_data)                                                                                          \
	X(archive_error_string)                                                                                       \
	X(archive_entry_pathname)                                                                                     \
	X(archive_entry_pathname_utf8)                                                                                \
	X(archive_entry_filetype)                                                                                     \
	X(archive_entry_perm)                                                                                         \
	X(archive_entry_size)                                                                                         \
	X(archive_entry_symlink)                                                                                      \
	X(archive_entry_hardlink)

struct archive_api {
#define ARCHIVE_MEMBER(f) __typeof__(f) *f;
	ARCHIVE_FUNCTIONS(ARCHIVE_MEMBER)
#undef ARCHIVE_MEMBER
	int ok;
	char why[256];
};

static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static struct archive_api api; /* written once, in archive_init */

static void archive_init(void)
{
	void *h = dlopen(ARCHIVE_LIBRARY, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(api.why, sizeof(api.why), "cannot load %s (%s): install libarchive (Debian: libarchive13)",
			 ARCHIVE_LIBRARY, e ? e : "not found");
		return;
	}
#define ARCHIVE_FILL(f)                                                                                               \
	*(void **)&api.f = dlsym(h, #f);                                                                              \
	if (!api.f) {                                                                                                 \
		snprintf(api.why, sizeof(api.why), "%s has no %s", ARCHIVE_LIBRARY, #f);                             \
		return;                                                                                               \
	}
	ARCHIVE_FUNCTIONS(ARCHIVE_FILL)
#undef ARCHIVE_FILL
	api.ok = 1;
}

#define READ_BUF (64 * 1024)

struct reader {
	const struct archive_api *k;
	struct archive *a;
	struct unpack_source *src;
	int src_err; /* the source's last error, -errno */
	char buf[READ_BUF];
};

static la_ssize_t on_read(struct archive *a, void *arg, const void **out)
{
	(void)a;
	struct reader *rd = arg;
	ssize_t n = rd->src->read(rd->src, rd->buf, sizeof(rd->buf));
	if (n < 0) {
		rd->src_err = (int)n;
		return ARCHIVE_FATAL;
	}
	*out = rd->buf;
	return n;
}

static la_int64_t on_seek(struct archive *a, void *arg, la_int64_t offset, int whence)
{
	(void)a;
	struct reader *rd = arg;
	struct unpack_source *s = rd->src;
	la_int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (la_int64_t)s->offset : (la_int64_t)s->size;
	la_int64_t to = base + offset;
	if (to < 0 || (uint64_t)to > s->size)
		return ARCHIVE_FATAL;
	int r = s->seek(s, (uint64_t)to);
	if (r < 0) {
		rd->src_err = r;
		return ARCHIVE_FATAL;
	}
	return to;
}

/* The reader's error into err: the source's, or libarchive's. */
static void say_error(struct reader *rd, struct sbuf *err)
{
	const char *e = rd->k->archive_error_string(rd->a);
	if (rd->src_err)
		sbuf_printf(err, "cannot read it: %s", strerror(-rd->src_err));
	else
		sbuf_puts(err, e ? e : "it cannot be read as an archive");
}

static ssize_t entry_read(const struct unpack_entry *e, void *buf, size_t n, struct sbuf *err)
{
	struct reader *rd = e->reader;
	la_ssize_t r = rd->k->archive_read_data(rd->a, buf, n);
	if (r < 0) {
		say_error(rd, err);
		return -EIO;
	}
	return r;
}

static enum unpack_kind kind_of(const struct archive_api *k, struct archive_entry *ae)
{
	if (k->archive_entry_hardlink(ae))
		return UNPACK_HARDLINK;
	switch (k->archive_entry_filetype(ae)) {
	case AE_IFREG:
		return UNPACK_FILE;
	case AE_IFDIR:
		return UNPACK_DIR;
	case AE_IFLNK:
		return UNPACK_SYMLINK;
	case AE_IFCHR:
	case AE_IFBLK:
		return UNPACK_DEVICE;
	case AE_IFIFO:
		return UNPACK_FIFO;
	case AE_IFSOCK:
		return UNPACK_SOCKET;
	default:
		return UNPACK_OTHER;
	}
}

/* Only the filter and the format the file's name says. */
static int support(const struct archive_api *k, struct archive *a, enum unpack_format f)
{
	int r = ARCHIVE_OK;
	switch (f) {
	case UNPACK_TAR_GZ:
		r = k->archive_read_support_filter_gzip(a);
		break;
	case UNPACK_TAR_XZ:
		r = k->archive_read_support_filter_xz(a);
		break;
	case UNPACK_TAR_ZSTD:
		r = k->archive_read_support_filter_zstd(a);
		break;
	case UNPACK_ZIP:
		return k->archive_read_support_format_zip(a);
	default:
		return ARCHIVE_FATAL;
	}
	if (r >= ARCHIVE_WARN)
		r = k->archive_read_support_format_tar(a);
	return r;
}

int fetch_archive_read(enum unpack_format f, struct unpack_source *src, unpack_each_fn each, void *arg,
		       struct sbuf *err)
{
	pthread_once(&archive_once, archive_init);
	if (!api.ok) {
		sbuf_puts(err, api.why);
		return -EIO;
	}
	const struct archive_api *k = &api;
	struct reader *rd = xcalloc(1, sizeof(*rd));
	rd->k = k;
	rd->src = src;
	rd->a = k->archive_read_new();
	if (!rd->a) {
		free(rd);
		sbuf_puts(err, "cannot start libarchive");
		return -EIO;
	}
	int r = 0;
	if (support(k, rd->a, f) < ARCHIVE_WARN || k->archive_read_set_callback_data(rd->a, rd) != ARCHIVE_OK ||
	    k->archive_read_set_read_callback(rd->a, on_read) != ARCHIVE_OK ||
	    k->archive_read_set_seek_callback(rd->a, on_seek) != ARCHIVE_OK ||
	    k->archive_read_open1(rd->a) != ARCHIVE_OK) {
		say_error(rd, err);
		r = -EIO;
	}
	while (r == 0) {
		struct archive_entry *ae;
		int rc = k->archive_read_next_header(rd->a, &ae);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc < ARCHIVE_WARN) {
			say_error(rd, err);
			r = -EIO;
			break;
		}
		const char *name = k->archive_entry_pathname(ae);
		la_int64_t size = k->archive_entry_size(ae);
		enum unpack_kind kind = kind_of(k, ae);
		struct unpack_entry e = {
			.name = name ? name : k->archive_entry_pathname_utf8(ae),
			.kind = kind,
			.mode = (uint32_t)k->archive_entry_perm(ae),
			.size = size > 0 ? (uint64_t)size : 0,
			.link = kind == UNPACK_HARDLINK ? k->archive_entry_hardlink(ae) : k->archive_entry_symlink(ae),
			.read = entry_read,
			.reader = rd,
		};
		r = each(arg, &e);
	}
	k->archive_read_free(rd->a);
	free(rd);
	return r;
}
