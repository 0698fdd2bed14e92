/*
 * store_realise.c - building a derivation with std.shell.
 *
 * The build writes straight into its final store path, as Nix does, so what
 * it records of $OUTPUT (a wrapper script, a shebang, an rpath) stays true.
 * A path is valid exactly when its registration exists, and the
 * registration is written last. The steps, each safe to repeat after a crash
 * at any point:
 *
 *   1. lock the derivation (flock: the kernel drops it if we die);
 *   2. if the path is valid, done (a concurrent builder got there first);
 *   3. remove what an interrupted build of it left: .build/<name>-*, and
 *      the path itself, which exists only unregistered (step 2);
 *   4. make .build/<name>-<random>/ with a fresh copy of the source as the
 *      working directory (src/), private HOME and TMPDIR (home/, tmp/), and
 *      the empty store path; when punix is root, give all four to the build
 *      user (STORE_BUILD_USER, else nobody);
 *   5. /bin/sh -c COMMAND as that user, in a clean environment with
 *      OUTPUT=<the store path>, output to the log;
 *   6. on success take the output back (root's), make it read-only, hash
 *      it, fsync every file and directory in it, fsync the store directory;
 *   7. register it (durable atomic write): from here on it is valid.
 *
 * A crash before 7 leaves nothing that is valid, only a build directory and
 * an unregistered path; the next build of the same derivation (step 3), or
 * `punix recover` (store_clean_leftovers, once the lock is free), removes
 * them. On failure both are removed at once; the log stays.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/strmap.h"
#include "../base/vec.h"
#include "../base/xalloc.h"
#include "store.h"
#include "store_internal.h"

void store_result_free(struct store_result *r)
{
	free(r->log_path);
	sbuf_free(&r->error);
	r->log_path = NULL;
}

static char *fmt(const char *f, const char *a, const char *b)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, f, a, b);
	return sbuf_detach(&sb, NULL);
}

/* Removes .build/<name>-* left by builds of this derivation that died. */
static int remove_stale_builds(struct store *s, const char *name)
{
	char **names;
	size_t n;
	int r = s->ops->list_dir(s->ops, s->build_dir, &names, &n);
	if (r < 0)
		return r;
	size_t len = strlen(name);
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *e = names[i];
		if (strncmp(e, name, len) != 0 || e[len] != '-' || strchr(e + len + 1, '-'))
			continue;
		char *dir = fmt("%s/%s", s->build_dir, e);
		r = ops_remove_tree(s->ops, dir);
		free(dir);
	}
	ops_free_names(names, n);
	return r;
}

static int make_read_only(struct punix_ops *o, const char *path);

static int read_only_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return make_read_only(o, child);
}

/*
 * Names the output gives each file, by inode: a file with more names than
 * that (a hard link to something outside) is not the output's own, and
 * chown or chmod of it would change that other file too (a build made as
 * root's could link /etc/shadow where protected_hardlinks is off). Names
 * inside the output (two hard links of its own) are fine.
 */
struct names {
	struct strmap count; /* "dev:ino" -> a counter (the map keeps pointers: keys live in keys) */
	VEC(unsigned *) counters;
	VEC(char *) keys;
};

static int count_tree(struct punix_ops *o, const char *path, struct names *n);

static int count_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return count_tree(o, child, arg);
}

static void inode_key(const struct ops_stat *st, char key[48])
{
	snprintf(key, 48, "%llu:%llu", (unsigned long long)st->dev, (unsigned long long)st->ino);
}

static int count_tree(struct punix_ops *o, const char *path, struct names *n)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR)
		return ops_each_child(o, path, count_child, n);
	char key[48];
	inode_key(&st, key);
	unsigned *c = strmap_get(&n->count, key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		char *k = xstrdup(key);
		VEC_PUSH(&n->counters, c);
		VEC_PUSH(&n->keys, k);
		strmap_put(&n->count, k, c);
	}
	(*c)++;
	return 0;
}

static void names_free(struct names *n)
{
	for (size_t i = 0; i < n->counters.n; i++)
		free(n->counters.v[i]);
	for (size_t i = 0; i < n->keys.n; i++)
		free(n->keys.v[i]);
	VEC_FREE(&n->counters);
	VEC_FREE(&n->keys);
	strmap_free(&n->count);
}

/* -EMLINK if the file has a name outside the output. */
static int own_file(const struct names *n, const struct ops_stat *st)
{
	if (!n || st->type == OPS_FT_DIR || st->type == OPS_FT_LINK || st->nlink <= 1)
		return 0;
	char key[48];
	inode_key(st, key);
	const unsigned *c = strmap_get(&n->count, key);
	return c && *c >= st->nlink ? 0 : -EMLINK;
}

/* Whether any file of the tree has a name outside it: -EMLINK if so. */
static int check_own(struct punix_ops *o, const char *path, const struct names *n);

struct own_arg {
	const struct names *n;
};

static int own_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return check_own(o, child, ((struct own_arg *)arg)->n);
}

static int check_own(struct punix_ops *o, const char *path, const struct names *n)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR) {
		struct own_arg a = {n};
		return ops_each_child(o, path, own_child, &a);
	}
	return own_file(n, &st);
}

/* The output's files are all its own (no name elsewhere); counted once the tree cannot change. */
static int output_is_own(struct punix_ops *o, const char *path)
{
	struct names n;
	strmap_init(&n.count);
	memset(&n.counters, 0, sizeof(n.counters));
	memset(&n.keys, 0, sizeof(n.keys));
	int r = count_tree(o, path, &n);
	if (r == 0)
		r = check_own(o, path, &n);
	names_free(&n);
	return r;
}

/* Files 0444 or 0555, directories 0555: a valid path is never edited in place. */
static int make_read_only(struct punix_ops *o, const char *path)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR) {
		r = ops_each_child(o, path, read_only_child, NULL);
		return r < 0 ? r : o->chmod(o, path, 0555);
	}
	return o->chmod(o, path, (st.mode & 0111) ? 0555 : 0444);
}

/* ---- who runs a build ------------------------------------------------------ */

struct build_user {
	int drop;         /* punix is root: the command runs as name, uid, gid */
	const char *name; /* STORE_BUILD_USER or "nobody" */
	uid_t uid;
	gid_t gid;
};

/* Our effective uid, from /proc/self/status (read through the seam). */
static int effective_uid(struct punix_ops *o, unsigned long *uid)
{
	char *buf;
	size_t len;
	int r = o->read_file(o, "/proc/self/status", 1 << 16, &buf, &len);
	if (r < 0)
		return r;
	const char *line = strstr(buf, "\nUid:");
	unsigned long real, eff;
	r = line && sscanf(line + 5, "%lu %lu", &real, &eff) == 2 ? 0 : -EBADMSG;
	if (r == 0)
		*uid = eff;
	free(buf);
	return r;
}

/* Parses a decimal uid or gid (below 2^32 - 1, which means "none"); 0 on success. */
static int parse_id(const char *p, const char *end, unsigned long *v)
{
	if (p == end || end - p > 10)
		return -1;
	unsigned long long x = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		x = x * 10 + (unsigned long long)(*p - '0');
	}
	if (x >= 0xffffffffULL)
		return -1;
	*v = (unsigned long)x;
	return 0;
}

/* user's uid and gid from /etc/passwd; -ENOENT if it has no line there. */
static int passwd_ids(struct punix_ops *o, const char *user, uid_t *uid, gid_t *gid)
{
	char *buf;
	size_t len;
	int r = o->read_file(o, "/etc/passwd", 16 << 20, &buf, &len);
	if (r < 0)
		return r;
	r = -ENOENT;
	size_t ulen = strlen(user);
	for (const char *line = buf; *line && r == -ENOENT;) {
		const char *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);
		/* name:password:uid:gid:... */
		const char *f[4] = {line, NULL, NULL, NULL};
		const char *p = line;
		for (int i = 1; i < 4 && p; i++) {
			p = memchr(p, ':', (size_t)(end - p));
			f[i] = p ? ++p : NULL;
		}
		const char *gend = f[3] ? memchr(f[3], ':', (size_t)(end - f[3])) : NULL;
		unsigned long u, g;
		if (gend && (size_t)(f[1] - 1 - f[0]) == ulen && memcmp(f[0], user, ulen) == 0) {
			r = parse_id(f[2], f[3] - 1, &u) == 0 && parse_id(f[3], gend, &g) == 0 ? 0 : -EBADMSG;
			if (r == 0) {
				*uid = (uid_t)u;
				*gid = (gid_t)g;
			}
		}
		line = nl ? nl + 1 : end;
	}
	free(buf);
	return r;
}

/*
 * Who runs the build. Not root: punix itself, as it is. Root: the dedicated
 * user STORE_BUILD_USER if /etc/passwd has it, else nobody (65534 if even
 * that line is missing); never root.
 */
static int build_user(struct punix_ops *o, struct build_user *u, struct sbuf *err)
{
	memset(u, 0, sizeof(*u));
	unsigned long euid;
	int r = effective_uid(o, &euid);
	if (r < 0) {
		sbuf_printf(err, "cannot tell which user punix runs as (/proc/self/status): %s", strerror(-r));
		return r;
	}
	if (euid != 0)
		return 0;
	u->drop = 1;
	u->name = STORE_BUILD_USER;
	r = passwd_ids(o, u->name, &u->uid, &u->gid);
	if (r == -ENOENT) {
		u->name = "nobody";
		r = passwd_ids(o, u->name, &u->uid, &u->gid);
		if (r == -ENOENT) {
			u->uid = 65534;
			u->gid = 65534;
			r = 0;
		}
	}
	if (r < 0) {
		sbuf_printf(err, "cannot look up the build user %s in /etc/passwd: %s", u->name, strerror(-r));
		return r;
	}
	if (u->uid == 0 || u->gid == 0) {
		sbuf_printf(err, "the build user %s has uid or gid 0: builds never run as root", u->name);
		return -EPERM;
	}
	return 0;
}

static int give_tree(struct punix_ops *o, const char *path, const char *user);

static int give_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return give_tree(o, child, arg);
}

/*
 * Gives a tree we just made to the build user: what a directory holds
 * before the directory. While a directory is still ours nobody else can
 * swap an entry in it for a link, so chown never follows one planted there.
 * Links themselves are left alone.
 */
static int give_tree(struct punix_ops *o, const char *path, const char *user)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR && (r = ops_each_child(o, path, give_child, (void *)user)) < 0)
		return r;
	return o->chown_user(o, path, user);
}

static int take_back(struct punix_ops *o, const char *path, const char *owner);

static int take_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return take_back(o, child, arg);
}

/*
 * Takes a built output back from the build user, top-down: each directory
 * becomes owner's and closed to others before what it holds is looked at,
 * so nothing the build left running can swap an entry for a link between
 * our look and our chown. Links are never followed; their owner is moot.
 */
static int take_back(struct punix_ops *o, const char *path, const char *owner)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	/* a file is left to take_files, once no directory is the build user's any more */
	if (st.type != OPS_FT_DIR)
		return 0;
	r = o->chown_user(o, path, owner);
	if (r == 0)
		r = o->chmod(o, path, 0755);
	if (r == 0)
		r = ops_each_child(o, path, take_child, (void *)owner);
	return r;
}

static int take_files(struct punix_ops *o, const char *path, const char *owner);

static int take_file_child(struct punix_ops *o, const char *child, const char *name, void *arg)
{
	(void)name;
	return take_files(o, child, arg);
}

/* The files, once every directory is owner's: nothing can be renamed in or out any more. */
static int take_files(struct punix_ops *o, const char *path, const char *owner)
{
	struct ops_stat st;
	int r = o->stat(o, path, 0, &st);
	if (r < 0 || st.type == OPS_FT_LINK)
		return r;
	if (st.type == OPS_FT_DIR)
		return ops_each_child(o, path, take_file_child, (void *)owner);
	return o->chown_user(o, path, owner);
}

/* The first of path and the directories above it that others may not search, malloc'd, or NULL. */
static char *unsearchable_above(struct punix_ops *o, const char *path, uint32_t *mode)
{
	char *dir = xstrdup(path);
	for (;;) {
		struct ops_stat st;
		if (o->stat(o, dir, 1, &st) == 0 && st.type == OPS_FT_DIR && !(st.mode & 0001)) {
			*mode = st.mode;
			return dir;
		}
		char *up = ops_dirname(dir);
		bool top = strcmp(up, dir) == 0 || strcmp(up, ".") == 0;
		free(dir);
		dir = up;
		if (top) {
			free(dir);
			return NULL;
		}
	}
}

/* ---- the build ------------------------------------------------------------- */

/* PATH: the dependencies' bin/ directories, then a minimal system path. */
static char *build_path_var(const struct store_drv *d)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_puts(&sb, "PATH=");
	for (size_t i = 0; i < d->ndeps; i++)
		sbuf_printf(&sb, "%s/bin:", d->deps[i]);
	sbuf_puts(&sb, "/usr/local/bin:/usr/bin:/bin");
	return sbuf_detach(&sb, NULL);
}

/*
 * The url source's file into src: unpacked if its name is an archive's,
 * else as it is. 0, <0 (an effect failed), or 1 with an [E10] error in res,
 * also written as the build's log: the archive cannot be read, or an entry
 * or a limit of it was refused.
 */
static int place_fetched(struct store *s, const struct store_drv *d, const char *fetched, const char *src,
			 struct store_result *res)
{
	struct punix_ops *o = s->ops;
	enum unpack_format f = unpack_format_of(d->source_name);
	if (f == UNPACK_NONE) {
		char *file = fmt("%s/%s", src, d->source_name);
		int r = ops_copy_file(o, fetched, file, 0644);
		free(file);
		return r;
	}
	struct sbuf why = SBUF_INIT;
	int r = store_unpack(o, fetched, f, d->unpack, src, &why);
	if (r < 0) {
		sbuf_printf(&res->error, "[E10] package '%s': cannot unpack %s: %s", d->module ? d->module : d->pname,
			    d->source_name, sbuf_str(&why));
		struct sbuf line = SBUF_INIT;
		sbuf_printf(&line, "%s\n", res->error.sb_buf);
		ops_write_atomic(o, res->log_path, line.sb_buf, line.sb_len, 0644);
		sbuf_free(&line);
		r = 1;
	}
	sbuf_free(&why);
	return r;
}

/* Prepares dir and the empty output, runs the command; 0, 1 (it failed) or <0. */
static int run_build(struct store *s, const struct store_drv *d, const char *fetched, const char *dir,
		     const char *out, const struct build_user *u, struct store_result *res)
{
	struct punix_ops *o = s->ops;
	char *src = fmt("%s/%s", dir, "src");
	char *home = fmt("%s/%s", dir, "home");
	char *tmp = fmt("%s/%s", dir, "tmp");
	int r = 0;
	if (d->source_dir || d->git_url) {
		r = ops_copy_tree(o, d->source_dir ? d->source_dir : fetched, src);
	} else {
		r = o->mkdir(o, src, 0755);
		if (r == 0 && fetched && (r = place_fetched(s, d, fetched, src, res)) == 1)
			goto done;
	}
	if (r == 0)
		r = o->mkdir(o, home, 0700);
	if (r == 0)
		r = o->mkdir(o, tmp, 0700);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot prepare the build directory %s: %s", dir, strerror(-r));
		goto done;
	}
	r = o->mkdir(o, out, 0755);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot create %s: %s", out, strerror(-r));
		goto done;
	}
	if (u->drop) {
		const char *mine[] = {src, home, tmp, out};
		for (size_t i = 0; i < 4 && r == 0; i++)
			r = give_tree(o, mine[i], u->name);
		if (r < 0) {
			sbuf_printf(&res->error, "cannot give the build directories to the build user %s: %s", u->name,
				    r == -ENOENT ? "no such user" : strerror(-r));
			goto done;
		}
	}

	char *env_out = fmt("OUTPUT=%s%s", out, "");
	char *env_home = fmt("HOME=%s%s", home, "");
	char *env_tmp = fmt("TMPDIR=%s%s", tmp, "");
	char *env_path = build_path_var(d);
	const char *env[] = {
		env_out, env_home, env_tmp, env_path, "SOURCE_DATE_EPOCH=0", "LC_ALL=C", "TZ=UTC", "SHELL=/bin/sh",
		NULL,
	};
	const char *argv[] = {"/bin/sh", "-c", d->command, NULL};
	struct ops_cmd cmd = {argv, env, src, res->log_path, 1, u->drop, u->uid, u->gid};
	int status = 0;
	/* A fresh log per attempt: the log of a failure is the failure's alone. */
	r = ops_write_atomic(o, res->log_path, "", 0, 0644);
	if (r == 0)
		r = o->run(o, &cmd, &status);
	free(env_out);
	free(env_home);
	free(env_tmp);
	free(env_path);
	if (r < 0 && u->drop) {
		sbuf_printf(&res->error, "cannot run /bin/sh as the build user %s (uid %lu): %s", u->name,
			    (unsigned long)u->uid, strerror(-r));
		uint32_t mode;
		char *shut = r == -EACCES ? unsearchable_above(o, dir, &mode) : NULL;
		if (shut)
			sbuf_printf(&res->error, " (%s, mode %04o, is closed to it: chmod o+x, or a store elsewhere)",
				    shut, (unsigned)mode);
		free(shut);
		goto done;
	}
	if (r < 0) {
		sbuf_printf(&res->error, "cannot run /bin/sh: %s", strerror(-r));
		goto done;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		sbuf_printf(&res->error, "the build command exited with status %d", WEXITSTATUS(status));
		r = 1;
	} else if (WIFSIGNALED(status)) {
		sbuf_printf(&res->error, "the build command was killed by signal %d", WTERMSIG(status));
		r = 1;
	} else {
		struct ops_stat st;
		if (o->stat(o, out, 0, &st) < 0) {
			sbuf_puts(&res->error, "the build command succeeded but left no $OUTPUT");
			r = 1;
		}
	}
done:
	free(src);
	free(home);
	free(tmp);
	return r;
}

/* Creates .build/<name>-<12 random hex digits>/; *dir is malloc'd. */
static int make_build_dir(struct store *s, const char *name, char **dir)
{
	struct punix_ops *o = s->ops;
	int r = -EEXIST;
	for (int attempt = 0; attempt < 8 && r == -EEXIST; attempt++) {
		unsigned char b[6];
		int h;
		r = o->open(o, "/dev/urandom", OPS_O_RDONLY, 0, &h);
		if (r < 0)
			return r;
		ssize_t n = o->read(o, h, b, sizeof(b));
		o->close(o, h);
		if (n != (ssize_t)sizeof(b))
			return n < 0 ? (int)n : -EIO;
		char hex[2 * sizeof(b) + 1];
		store_hex(b, sizeof(b), hex);
		struct sbuf sb = SBUF_INIT;
		sbuf_printf(&sb, "%s/%s-%s", s->build_dir, name, hex);
		r = o->mkdir(o, sb.sb_buf, 0755);
		if (r == 0)
			*dir = sbuf_detach(&sb, NULL);
		else
			sbuf_free(&sb);
	}
	return r;
}

/*
 * The file of d's url source (the directory of its git source), from the
 * download cache (fetched into it if it is not there): 0 with *file
 * malloc'd, or -EIO with an [E10] error in res (an [E11] one when its
 * token cannot be resolved), also written as the build's log (the build
 * never starts).
 */
static int fetch_source(struct store *s, const struct store_drv *d, char **file, struct store_result *res)
{
	struct sbuf why = SBUF_INIT;
	int r = -EINVAL;
	if (!s->cache_dir)
		sbuf_puts(&why, "this store has no download cache");
	else if (d->git_url)
		r = store_fetch_git(s->ops, s->cache_dir, d->git_url, d->git_tag, d->source_hash, file, &why);
	else if (!d->fetch)
		sbuf_puts(&why, "no way to download was given");
	else {
		struct fetch_source src = {d->source_url, d->source_name, d->source_hash, d->fetch, d->header, d->fetch_set};
		r = store_fetch(s->ops, s->cache_dir, &src, file, &why);
	}
	if (r < 0) {
		const char *pkg = d->module ? d->module : d->pname;
		if (r == -ENOKEY) /* why says where the token was to come from, never a value */
			sbuf_printf(&res->error, "[E11] package '%s': cannot resolve the token of source %s: %s", pkg,
				    d->source_url, sbuf_str(&why));
		else
			sbuf_printf(&res->error, "[E10] package '%s': cannot fetch %s: %s", pkg,
				    d->git_url ? d->git_url : d->source_url, sbuf_str(&why));
		struct sbuf line = SBUF_INIT;
		sbuf_printf(&line, "%s\n", res->error.sb_buf);
		ops_write_atomic(s->ops, res->log_path, line.sb_buf, line.sb_len, 0644);
		sbuf_free(&line);
		r = -EIO;
	}
	sbuf_free(&why);
	return r;
}

int store_realise(struct store *s, const struct store_drv *d, const char *path, struct store_result *res)
{
	struct punix_ops *o = s->ops;
	const char *name = store_path_name(path);
	memset(res, 0, sizeof(*res));
	res->log_path = fmt("%s/%s.log", s->log_dir, name);

	char *lock = store_lock_path(s, path);
	int lh, r = o->lock(o, lock, 1, 1, &lh);
	free(lock);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot lock %s: %s", name, strerror(-r));
		res->outcome = STORE_FAILED;
		return r;
	}
	if (store_is_valid(s, path)) {
		res->outcome = STORE_CACHED;
		o->unlock(o, lh);
		return 0;
	}

	char *dir = NULL, *fetched = NULL;
	struct build_user u;
	if ((d->source_url || d->git_url) && (r = fetch_source(s, d, &fetched, res)) < 0)
		goto fail;
	r = remove_stale_builds(s, name);
	if (r == 0)
		r = ops_remove_tree(o, path); /* unregistered, so never valid */
	if (r < 0) {
		sbuf_printf(&res->error, "cannot remove leftovers of %s: %s", name, strerror(-r));
		goto fail;
	}
	r = build_user(o, &u, &res->error);
	if (r < 0)
		goto fail;
	r = make_build_dir(s, name, &dir);
	if (r < 0) {
		sbuf_printf(&res->error, "cannot create a build directory in %s: %s", s->build_dir, strerror(-r));
		goto fail;
	}
	r = run_build(s, d, fetched, dir, path, &u, res);
	if (r != 0)
		goto fail;

	/* Ownership final first, then read-only, then what is hashed is what stays. */
	unsigned char nar[32];
	uint64_t bytes = 0;
	r = u.drop ? take_back(o, path, "root") : 0;
	/* every directory ours: no name comes or goes, so the names can be counted and trusted */
	if (r == 0)
		r = output_is_own(o, path);
	if (r == 0 && u.drop)
		r = take_files(o, path, "root");
	if (r == 0)
		r = make_read_only(o, path);
	if (r == 0)
		r = store_hash_tree(o, path, nar, &bytes);
	if (r == 0)
		r = ops_fsync_tree(o, path);
	if (r == 0)
		r = o->fsync_path(o, s->root);
	if (r == 0)
		r = store_register(s, path, nar, bytes, d->deps, d->ndeps);
	if (r == -EMLINK) {
		sbuf_printf(&res->error,
			    "cannot install %s: a file of its output has another name elsewhere (a hard link); a store "
			    "path's files must be its own: make the build copy the file instead of linking it",
			    name);
		goto fail;
	}
	if (r < 0) {
		sbuf_printf(&res->error, "cannot install %s: %s", name, strerror(-r));
		goto fail;
	}
	ops_remove_tree(o, dir);
	free(dir);
	free(fetched);
	o->unlock(o, lh);
	res->outcome = STORE_BUILT;
	return 0;

fail:
	/* Not registered, so not valid: nothing of this attempt stays but its log. */
	ops_remove_tree(o, path);
	if (dir)
		ops_remove_tree(o, dir);
	free(dir);
	free(fetched);
	o->unlock(o, lh);
	res->outcome = STORE_FAILED;
	return r < 0 && !res->error.sb_len ? r : 0;
}
