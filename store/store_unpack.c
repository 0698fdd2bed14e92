/*
 * store_unpack.c - a url source's archive unpacked into src/ (store_unpack.h).
 *
 * Two reads of the archive. The first looks at every entry's name, kind
 * and size, counts them against the limits and finds whether they all lie
 * under one top directory; nothing is written unless the whole archive
 * passes. The second checks each entry again (the same rules, and the ones
 * that depend on where it lands: symlinks) and writes it through the ops
 * table: directories with mkdir, files created O_EXCL|O_NOFOLLOW, symlinks
 * with symlink, so an existing entry is never followed or overwritten; no
 * entry is made through a symlink the archive made (the only kind src/ can
 * hold: it starts empty).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/strmap.h"
#include "../base/xalloc.h"
#include "store_unpack.h"

#define UNPACK_BUF (64 * 1024)

enum unpack_format unpack_format_of(const char *name)
{
	static const struct {
		const char *suffix;
		enum unpack_format f;
	} known[] = {
		{".tar.gz", UNPACK_TAR_GZ}, {".tgz", UNPACK_TAR_GZ},    {".tar.xz", UNPACK_TAR_XZ}, {".txz", UNPACK_TAR_XZ},
		{".tar.zst", UNPACK_TAR_ZSTD}, {".tzst", UNPACK_TAR_ZSTD}, {".zip", UNPACK_ZIP},
	};
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t k = strlen(known[i].suffix);
		if (n > k && strcmp(name + n - k, known[i].suffix) == 0)
			return known[i].f;
	}
	return UNPACK_NONE;
}

/* ---- the archive's bytes, through the table -------------------------------- */

struct src_file {
	struct unpack_source s; /* first: the reader is handed &s */
	struct punix_ops *o;
	const char *path;
	int h;
	char *buf;
};

static ssize_t src_read(struct unpack_source *s, void *buf, size_t n)
{
	struct src_file *f = (struct src_file *)s;
	ssize_t r = f->o->read(f->o, f->h, buf, n);
	if (r > 0)
		s->offset += (uint64_t)r;
	return r;
}

/* Forward by reading (the table has no lseek); backward by opening the file again. */
static int src_seek(struct unpack_source *s, uint64_t to)
{
	struct src_file *f = (struct src_file *)s;
	if (to > s->size)
		return -EINVAL;
	if (to < s->offset) {
		f->o->close(f->o, f->h);
		f->h = -1;
		int r = f->o->open(f->o, f->path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &f->h);
		if (r < 0)
			return r;
		s->offset = 0;
	}
	while (s->offset < to) {
		uint64_t left = to - s->offset;
		ssize_t r = src_read(s, f->buf, left < UNPACK_BUF ? (size_t)left : UNPACK_BUF);
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
	}
	return 0;
}

/* ---- names ------------------------------------------------------------------- */

/* The n bytes of name, quoted, with every byte that is not printable ASCII as \xNN. */
static void put_bytes(struct sbuf *sb, const char *name, size_t n)
{
	sbuf_putc(sb, '\'');
	for (const unsigned char *p = (const unsigned char *)name; n--; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\' || *p == '\'')
			sbuf_printf(sb, "\\x%02x", *p);
		else
			sbuf_putc(sb, (char)*p);
	}
	sbuf_putc(sb, '\'');
}

static void put_name(struct sbuf *sb, const char *name)
{
	put_bytes(sb, name, strlen(name));
}

static bool has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/*
 * Why name cannot be an entry's path, or NULL with its components in out,
 * joined by '/', without empty or "." ones ("" for the top itself).
 */
static const char *normalise(const char *name, struct sbuf *out)
{
	sbuf_reset(out);
	if (!name)
		return "it has no name that can be read";
	if (!*name)
		return "its name is empty";
	if (name[0] == '/')
		return "its path is absolute";
	if (has_control(name))
		return "its name holds a control character";
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "its path has a '..' component";
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->sb_len)
				sbuf_putc(out, '/');
			sbuf_append(out, p, n);
		}
		p += n;
		p += *p == '/';
	}
	return NULL;
}

/* Why an entry of this kind is never made, or NULL. */
static const char *kind_refusal(enum unpack_kind k)
{
	switch (k) {
	case UNPACK_FILE:
	case UNPACK_DIR:
	case UNPACK_SYMLINK:
		return NULL;
	case UNPACK_HARDLINK:
		return "it is a hard link (refused: a file in src/ is its own)";
	case UNPACK_DEVICE:
		return "it is a device (refused)";
	case UNPACK_FIFO:
		return "it is a FIFO (refused)";
	case UNPACK_SOCKET:
		return "it is a socket (refused)";
	default:
		return "it is neither a file, a directory nor a symlink (refused)";
	}
}

/* "entry 'name': why" into err; -EINVAL. */
static int refuse(struct sbuf *err, const char *name, const char *why)
{
	sbuf_puts(err, "entry ");
	put_name(err, name ? name : "");
	sbuf_printf(err, ": %s", why);
	return -EINVAL;
}

/* What every entry must pass in both reads: the limits, its kind, its name. */
static int check_entry(const struct unpack_entry *e, uint64_t *entries, uint64_t *bytes, struct sbuf *norm,
		       struct sbuf *err)
{
	if (++*entries > UNPACK_MAX_ENTRIES) {
		sbuf_printf(err, "it has more than %u entries, the limit", UNPACK_MAX_ENTRIES);
		return -EFBIG;
	}
	const char *why = kind_refusal(e->kind);
	if (!why)
		why = normalise(e->name, norm);
	if (!why && !norm->sb_len && e->kind != UNPACK_DIR)
		why = "it names src/ itself and is not a directory";
	if (why)
		return refuse(err, e->name, why);
	if (e->kind == UNPACK_FILE) {
		if (e->size > UNPACK_MAX_BYTES - *bytes) {
			sbuf_printf(err, "its files hold more than %llu bytes (16 GiB), the limit, at entry ",
				    (unsigned long long)UNPACK_MAX_BYTES);
			put_name(err, e->name);
			return -EFBIG;
		}
		*bytes += e->size;
	}
	return 0;
}

/* ---- the first read: limits, names, the top directory ------------------------ */

struct survey {
	uint64_t entries, bytes;
	char *top;    /* the first component of the first entry */
	bool one_top; /* every entry is top (a directory) or below it */
	struct sbuf norm;
	struct sbuf *err;
};

static int survey_each(void *arg, const struct unpack_entry *e)
{
	struct survey *v = arg;
	int r = check_entry(e, &v->entries, &v->bytes, &v->norm, v->err);
	if (r < 0 || !v->norm.sb_len)
		return r; /* src/ itself ("./") says nothing about a top directory */
	const char *p = v->norm.sb_buf;
	size_t n = strcspn(p, "/");
	if (!v->top) {
		v->top = xstrndup(p, n);
		v->one_top = true;
	} else if (strlen(v->top) != n || memcmp(v->top, p, n) != 0) {
		v->one_top = false;
	}
	if (!p[n] && e->kind != UNPACK_DIR)
		v->one_top = false; /* a file or symlink at the top */
	return 0;
}

/* ---- the second read: each entry written -------------------------------------- */

struct unpack {
	struct punix_ops *o;
	const char *dir;
	const char *strip; /* the top directory taken away, or NULL */
	uint64_t entries, bytes, written;
	struct strmap links; /* the symlinks made, by path below dir (keys malloc'd) */
	struct strmap dirs;  /* the directories made (keys malloc'd) */
	struct sbuf norm, path, why;
	char *buf;
	struct sbuf *err;
};

static void remember(struct strmap *m, const char *key)
{
	char *k = xstrdup(key);
	if (strmap_put(m, k, k))
		free(k);
}

static void forget_all(struct strmap *m)
{
	for (size_t i = 0; i < m->m_cap; i++)
		free(m->m_slots[i].s_val);
	strmap_free(m);
}

/* dir/rel into u->path. */
static const char *full(struct unpack *u, const char *rel)
{
	sbuf_reset(&u->path);
	sbuf_printf(&u->path, "%s/%s", u->dir, rel);
	return u->path.sb_buf;
}

static int effect_failed(struct unpack *u, const char *name, const char *what, const char *rel, int r)
{
	sbuf_reset(&u->why);
	sbuf_printf(&u->why, "cannot %s src/%s: %s", what, rel, r == -EEXIST ? "an entry of that name was already made"
											  : strerror(-r));
	refuse(u->err, name, u->why.sb_buf);
	return r;
}

/*
 * Refuses rel if a directory on its way is a symlink the archive made;
 * makes the directories on its way that are not there. (rel itself, if it
 * is there, is refused by the O_EXCL create.)
 */
static int make_way(struct unpack *u, const char *name, char *rel)
{
	for (char *p = rel;; p++) {
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		int r = 0;
		if (c == '/' && strmap_get(&u->links, rel)) {
			sbuf_reset(&u->why);
			sbuf_puts(&u->why, "its path passes through ");
			put_name(&u->why, rel);
			sbuf_puts(&u->why, ", a symlink the archive made");
			r = refuse(u->err, name, u->why.sb_buf);
		} else if (c == '/' && !strmap_get(&u->dirs, rel)) {
			r = u->o->mkdir(u->o, full(u, rel), 0755);
			struct ops_stat st;
			if (r == -EEXIST && u->o->stat(u->o, u->path.sb_buf, 0, &st) == 0 && st.type == OPS_FT_DIR)
				r = 0;
			if (r < 0)
				r = effect_failed(u, name, "make the directory", rel, r);
			else
				remember(&u->dirs, rel);
		}
		*p = c;
		if (r < 0 || c == '\0')
			return r;
	}
}

/* Why a symlink at rel to target may not be made, or NULL: resolved lexically from rel's directory. */
static const char *link_refusal(const char *rel, const char *target)
{
	if (!target || !*target)
		return "it is a symlink with an empty target";
	if (has_control(target))
		return "it is a symlink whose target holds a control character";
	if (target[0] == '/')
		return "it is a symlink whose target is absolute";
	long depth = 0;
	for (const char *p = rel; *p; p++)
		depth += *p == '/';
	for (const char *p = target; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return "it is a symlink whose target leads out of src/";
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		p += *p == '/';
	}
	return NULL;
}

static int write_file(struct unpack *u, const struct unpack_entry *e, const char *rel)
{
	struct punix_ops *o = u->o;
	int h, r = o->open(o, full(u, rel), OPS_O_WRONLY | OPS_O_CREAT | OPS_O_EXCL | OPS_O_NOFOLLOW, 0600, &h);
	if (r < 0)
		return effect_failed(u, e->name, "create", rel, r);
	for (;;) {
		sbuf_reset(&u->why);
		ssize_t n = e->read(e, u->buf, UNPACK_BUF, &u->why);
		if (n < 0) {
			r = refuse(u->err, e->name, u->why.sb_len ? u->why.sb_buf : "its contents cannot be read");
			r = -EIO;
			break;
		}
		if (n == 0)
			break;
		if ((uint64_t)n > UNPACK_MAX_BYTES - u->written) {
			sbuf_printf(u->err, "its files hold more than %llu bytes (16 GiB), the limit, at entry ",
				    (unsigned long long)UNPACK_MAX_BYTES);
			put_name(u->err, e->name);
			r = -EFBIG;
			break;
		}
		u->written += (uint64_t)n;
		for (ssize_t done = 0; done < n && r == 0;) {
			ssize_t w = o->write(o, h, u->buf + done, (size_t)(n - done));
			if (w <= 0)
				r = effect_failed(u, e->name, "write", rel, w < 0 ? (int)w : -EIO);
			else
				done += w;
		}
		if (r < 0)
			break;
	}
	/* the owner's executable bit, nothing else of the archive's mode */
	if (r == 0 && (r = o->fchmod(o, h, e->mode & 0100 ? 0755 : 0644)) < 0)
		effect_failed(u, e->name, "set the mode of", rel, r);
	int rc = o->close(o, h);
	if (r == 0 && rc < 0)
		r = effect_failed(u, e->name, "write", rel, rc);
	return r;
}

static int write_dir(struct unpack *u, const struct unpack_entry *e, const char *rel)
{
	struct punix_ops *o = u->o;
	int r = o->mkdir(o, full(u, rel), 0755);
	struct ops_stat st;
	/* a directory named twice, or made on the way to an entry listed before it */
	if (r == -EEXIST && strmap_get(&u->dirs, rel) && o->stat(o, u->path.sb_buf, 0, &st) == 0 &&
	    st.type == OPS_FT_DIR)
		r = 0;
	if (r == 0)
		r = o->chmod(o, u->path.sb_buf, 0755); /* exactly: mkdir's mode went through the umask */
	if (r < 0)
		return effect_failed(u, e->name, "make the directory", rel, r);
	remember(&u->dirs, rel);
	return 0;
}

static int unpack_each(void *arg, const struct unpack_entry *e)
{
	struct unpack *u = arg;
	int r = check_entry(e, &u->entries, &u->bytes, &u->norm, u->err);
	if (r < 0)
		return r;
	if (!u->norm.sb_len)
		return 0; /* src/ itself ("./"): it is there */
	char *rel = u->norm.sb_buf;
	if (u->strip) {
		size_t k = strlen(u->strip);
		if (strncmp(rel, u->strip, k) != 0 || (rel[k] != '/' && rel[k] != '\0'))
			return refuse(u->err, e->name, "it is not below the top directory it was below at the first read");
		rel += k + (rel[k] == '/');
	}
	if (!rel[0])
		return 0; /* src/ itself: it is there */
	r = make_way(u, e->name, rel);
	if (r < 0)
		return r;
	if (e->kind == UNPACK_DIR)
		return write_dir(u, e, rel);
	if (e->kind == UNPACK_FILE)
		return write_file(u, e, rel);
	const char *why = link_refusal(rel, e->link);
	if (why) {
		sbuf_reset(&u->why);
		sbuf_printf(&u->why, "%s (", why);
		put_name(&u->why, e->link ? e->link : "");
		sbuf_putc(&u->why, ')');
		return refuse(u->err, e->name, u->why.sb_buf);
	}
	r = u->o->symlink(u->o, e->link, full(u, rel));
	if (r < 0)
		return effect_failed(u, e->name, "make the symlink", rel, r);
	remember(&u->links, rel);
	return 0;
}

/* ---- a zip's names, as its central directory has them ------------------------- */

/*
 * libarchive ends a name at its first NUL, so a zip's names are looked at
 * here first, in the central directory (where a name has a length): one
 * holding a NUL is refused. A directory this does not understand (zip64
 * sizes, data before the archive) is left to libarchive.
 */

static uint32_t le(const unsigned char *p, int n)
{
	uint32_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int read_at(struct unpack_source *s, uint64_t at, unsigned char *buf, size_t n)
{
	int r = s->seek(s, at);
	for (size_t got = 0; r == 0 && got < n;) {
		ssize_t k = s->read(s, buf + got, n - got);
		if (k <= 0)
			return k < 0 ? (int)k : -EIO;
		got += (size_t)k;
	}
	return r;
}

static int zip_names(struct src_file *f, struct sbuf *err)
{
	struct unpack_source *s = &f->s;
	enum { EOCD = 22, TAIL = EOCD + 65535, CDH = 46 };
	size_t n = s->size < TAIL ? (size_t)s->size : TAIL;
	unsigned char *buf = xmalloc(TAIL);
	int r = n < EOCD ? 1 : read_at(s, s->size - n, buf, n);
	uint64_t at = 0, end = 0;
	for (size_t i = n >= EOCD ? n - EOCD + 1 : 0; r == 0 && i-- > 0;)
		if (le(buf + i, 4) == 0x06054b50) {
			at = le(buf + i + 16, 4);
			end = at + le(buf + i + 12, 4);
			r = end <= s->size - n + i ? 2 : 1; /* 1: not a directory where it says */
		}
	r = r == 2 ? 0 : r < 0 ? r : 1;
	while (r == 0 && at + CDH <= end && (r = read_at(s, at, buf, CDH)) == 0) {
		size_t len = le(buf + 28, 2);
		uint64_t next = at + CDH + len + le(buf + 30, 2) + le(buf + 32, 2);
		if (le(buf, 4) != 0x02014b50 || at + CDH + len > end)
			break;
		if ((r = read_at(s, at + CDH, buf, len)) == 0 && memchr(buf, 0, len)) {
			sbuf_puts(err, "entry ");
			put_bytes(err, (const char *)buf, len);
			sbuf_puts(err, ": its name holds a NUL byte");
			r = -EINVAL;
		}
		at = next;
	}
	free(buf);
	if (r < 0 && r != -EINVAL)
		sbuf_printf(err, "cannot read it: %s", strerror(-r));
	return r < 0 ? r : 0;
}

/* ---- both reads ---------------------------------------------------------------- */

static int read_once(struct src_file *f, enum unpack_format fmt, unpack_read_fn read_archive, unpack_each_fn each,
		     void *arg, struct sbuf *err)
{
	int r = f->o->open(f->o, f->path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &f->h);
	if (r < 0) {
		sbuf_printf(err, "cannot open it: %s", strerror(-r));
		return r;
	}
	f->s.offset = 0;
	r = read_archive(fmt, &f->s, each, arg, err);
	if (f->h >= 0)
		f->o->close(f->o, f->h);
	f->h = -1;
	return r;
}

int store_unpack(struct punix_ops *o, const char *path, enum unpack_format fmt, unpack_read_fn read_archive,
		 const char *dir, struct sbuf *err)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0) {
		sbuf_printf(err, "cannot read it: %s", strerror(-r));
		return r;
	}
	if (!read_archive) {
		sbuf_puts(err, "no way to read archives was given");
		return -EINVAL;
	}
	struct src_file f = {{src_read, src_seek, st.size, 0}, o, path, -1, xmalloc(UNPACK_BUF)};
	struct survey v = {0, 0, NULL, false, SBUF_INIT, err};
	if (fmt == UNPACK_ZIP) {
		r = o->open(o, path, OPS_O_RDONLY | OPS_O_NOFOLLOW, 0, &f.h);
		if (r < 0)
			sbuf_printf(err, "cannot open it: %s", strerror(-r));
		else
			r = zip_names(&f, err);
		if (f.h >= 0)
			o->close(o, f.h);
		f.h = -1;
	}
	if (r == 0)
		r = read_once(&f, fmt, read_archive, survey_each, &v, err);
	sbuf_free(&v.norm);
	if (r == 0) {
		struct unpack u = {.o = o, .dir = dir, .strip = v.one_top ? v.top : NULL, .err = err};
		strmap_init(&u.links);
		strmap_init(&u.dirs);
		sbuf_init(&u.norm);
		sbuf_init(&u.path);
		sbuf_init(&u.why);
		u.buf = xmalloc(UNPACK_BUF);
		r = read_once(&f, fmt, read_archive, unpack_each, &u, err);
		forget_all(&u.links);
		forget_all(&u.dirs);
		sbuf_free(&u.norm);
		sbuf_free(&u.path);
		sbuf_free(&u.why);
		free(u.buf);
	}
	free(v.top);
	free(f.buf);
	return r;
}
