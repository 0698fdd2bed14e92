/*
 * journal_meta.c - the journal's directory and its data.mdb, looked at
 * before LMDB maps the file: making the directory, waiting out another
 * process creating the file, and reading its two meta pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal_internal.h"

/* ---- the data file, looked at before LMDB maps it --------------------------------
 *
 * LMDB maps data.mdb whole and trusts its meta pages: pages past the end of
 * a truncated file are touched as memory, and the process dies of SIGBUS.
 * So the two meta pages are read first, with plain reads, and the file's
 * size compared with what the current one (the larger txnid) says is used.
 *
 * Their layout (LMDB 0.9 mdb.c: MDB_page, MDB_meta, MDB_db; pgno_t and
 * txnid_t are size_t): page 0 at offset 0, page 1 at offset page size;
 * each a page header, then the meta. The page size is dbs[0].pad.
 *
 *   header: pgno(8) pad(2) flags(2, P_META = 0x08) lower(2) upper(2)
 *   meta:   magic(4, 0xBEEFC0DE) version(4) address(8) mapsize(8)
 *           dbs[2] { pad(4) flags(2) depth(2) branch leaf overflow entries root (8 each) }
 *           last_pg(8) txnid(8)
 */
struct lmdb_page_hdr {
	size_t pgno;
	uint16_t pad, flags, lower, upper;
};

struct lmdb_db {
	uint32_t pad;
	uint16_t flags, depth;
	size_t branch_pages, leaf_pages, overflow_pages, entries, root;
};

struct lmdb_meta {
	uint32_t magic, version;
	void *address;
	size_t mapsize;
	struct lmdb_db dbs[2];
	size_t last_pg;
	size_t txnid;
};

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_P_META 0x08
#define LMDB_PAGE_MIN 512
#define LMDB_PAGE_MAX 65536

enum meta_read { META_OK, META_SHORT, META_BAD };

/* Reads the meta page at off: META_OK, META_SHORT (the file ends first), META_BAD, or -errno. */
static int read_meta(int fd, off_t off, struct lmdb_meta *m)
{
	unsigned char b[sizeof(struct lmdb_page_hdr) + sizeof(struct lmdb_meta)];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = pread(fd, b + got, sizeof(b) - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return META_SHORT;
		got += (size_t)n;
	}
	struct lmdb_page_hdr h;
	memcpy(&h, b, sizeof(h));
	memcpy(m, b + sizeof(h), sizeof(*m));
	return (h.flags & LMDB_P_META) && m->magic == LMDB_MAGIC ? META_OK : META_BAD;
}

static int truncated(struct journal_err *e, const char *path, long long size, const char *why)
{
	return jr_fail(e, -EBADMSG,
		    "journal: %s is truncated: it holds %lld bytes, %s; it cannot be read safely (restore it from a "
		    "backup, or move it away to start a new journal)",
		    path, size, why);
}

/*
 * 0 if path is missing (a new journal) or looks whole, else an error: empty,
 * truncated, or not an LMDB file at all.
 */
int jr_check_data(const char *path, struct journal_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : jr_fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
	struct stat st;
	struct lmdb_meta m[2];
	int r = 0, k;
	char why[160];
	if (fstat(fd, &st) < 0) {
		r = jr_fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		r = jr_fail(e, -EINVAL, "journal: %s is not a regular file", path);
	} else if (st.st_size == 0) {
		r = jr_fail(e, -ENODATA,
			 "journal: %s is empty: the journal was lost or emptied; punix will not start a new journal "
			 "over it, which would forget any op in flight (move the file away to start a new journal)",
			 path);
	} else if ((k = read_meta(fd, 0, &m[0])) < 0) {
		r = jr_fail(e, k, "journal: cannot read %s: %s", path, strerror(-k));
	} else if (k == META_SHORT) {
		r = truncated(e, path, (long long)st.st_size, "less than its first meta page");
	} else if (k == META_BAD) {
		r = jr_fail(e, -EBADMSG, "journal: %s is not an LMDB database (its first page is not a meta page)",
			    path);
	} else {
		size_t psize = m[0].dbs[0].pad;
		const struct lmdb_meta *cur = &m[0];
		if (psize < LMDB_PAGE_MIN || psize > LMDB_PAGE_MAX || (psize & (psize - 1)))
			r = jr_fail(e, -EBADMSG, "journal: %s has a damaged meta page (page size %zu)", path, psize);
		else if ((k = read_meta(fd, (off_t)psize, &m[1])) < 0)
			r = jr_fail(e, k, "journal: cannot read %s: %s", path, strerror(-k));
		else if (k == META_SHORT)
			r = truncated(e, path, (long long)st.st_size, "less than its two meta pages");
		else if (k == META_BAD)
			r = jr_fail(e, -EBADMSG, "journal: %s has a damaged meta page (page 1)", path);
		else if (m[1].txnid > m[0].txnid)
			cur = &m[1];
		/*
		 * The size is taken after the metas are read: a writer writes its
		 * pages before the meta that names them, so a meta read first is
		 * never newer than the file it is compared with.
		 */
		if (r == 0 && fstat(fd, &st) < 0)
			r = jr_fail(e, -errno, "journal: cannot read %s: %s", path, strerror(errno));
		if (r == 0 && cur->last_pg >= (size_t)INT64_MAX / psize) {
			r = jr_fail(e, -EBADMSG, "journal: %s has a damaged meta page (last page %zu)", path, cur->last_pg);
		} else if (r == 0 && (unsigned long long)st.st_size < (unsigned long long)(cur->last_pg + 1) * psize) {
			snprintf(why, sizeof(why), "but its meta page says it extends to %llu bytes (%zu pages of %zu)",
				 (unsigned long long)(cur->last_pg + 1) * psize, cur->last_pg + 1, psize);
			r = truncated(e, path, (long long)st.st_size, why);
		}
	}
	close(fd);
	return r;
}

/*
 * LMDB keeps byte 0 of lock.mdb write-locked while it creates a data.mdb
 * and writes its meta pages: waits (a bounded while) for any such creation
 * by another process to end, so that it is not mistaken for damage. An
 * open file description lock: closing it releases no lock LMDB holds in
 * this process.
 */
void jr_wait_for_creation(const char *dir)
{
	char *lp = jr_xasprintf("%s/lock.mdb", dir);
	int fd = open(lp, O_RDONLY | O_CLOEXEC);
	free(lp);
	if (fd < 0)
		return;
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	for (int i = 0; i < 300; i++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			break;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	close(fd);
}

/* mkdir -p: the journal's directory mode 0700, missing parents 0755. */
int jr_make_dirs(const char *dir, struct journal_err *e)
{
	if (!dir[0])
		return jr_fail(e, -EINVAL, "journal: no directory given");
	char *p = strdup(dir);
	if (!p)
		abort();
	int r = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, c ? 0755 : 0700) < 0 && errno != EEXIST) {
			r = jr_fail(e, -errno, "journal: cannot create %s: %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return r;
}
