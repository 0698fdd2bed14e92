/*
 * ops.h - the effect seam: every filesystem, process and network effect of
 * punix goes through one table of operations, like SQLite's VFS.
 *
 * Callers never call open(2), rename(2) or exec directly; they call through
 * a struct punix_ops. That one indirection is what lets the same code run
 * against the local machine, a tree rebased under --transport-root, or a
 * host over SSH, and what lets tests inject a crash at a named step or an
 * I/O error at the Nth effect (a wrapping table that counts and fails).
 *
 * The interface lives in base/ because every layer that has effects needs
 * it, the store included, and the store may not include the engine. The
 * transports that implement it for other places live in engine/.
 *
 * Contract (libuv's): every operation returns 0 (or a count) on success and
 * a negative errno value on failure; outputs are written only on success.
 * Handles are small integers owned by the table that issued them.
 */
#ifndef PUNIX_BASE_OPS_H
#define PUNIX_BASE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ops_ftype {
	OPS_FT_OTHER,
	OPS_FT_REG,
	OPS_FT_DIR,
	OPS_FT_LINK,
};

struct ops_stat {
	enum ops_ftype type;
	uint64_t size;
	uint64_t dev; /* with ino: the file's identity, to notice it named twice */
	uint64_t ino;
	uint32_t mode; /* permission bits */
	uint32_t nlink; /* names the file has (hard links); 0 where the table cannot tell */
	int64_t uid;    /* its owner, or -1 where the table cannot tell */
};

/* open() flags, translated by each table. */
enum {
	OPS_O_RDONLY = 0,
	OPS_O_WRONLY = 1 << 0,
	OPS_O_CREAT = 1 << 1,
	OPS_O_EXCL = 1 << 2,
	OPS_O_TRUNC = 1 << 3,
	OPS_O_DIRECTORY = 1 << 4,
	OPS_O_NOFOLLOW = 1 << 5,
	OPS_O_APPEND = 1 << 6, /* every write at the end (a resumed download's partial file) */
};

/* A command to run: argv[0] is an absolute path; env is the whole environment. */
struct ops_cmd {
	const char *const *argv;
	const char *const *env;
	const char *cwd;      /* NULL: inherit */
	const char *log_path; /* stdout and stderr appended here; NULL: /dev/null */
	int new_session;      /* run in its own session, so the whole group can be killed */
	/*
	 * has_ids: run as uid/gid with no supplementary groups (setgroups,
	 * setgid, setuid, in that order, before cwd is entered; if any fails,
	 * so does the run). With new_session too, what the command leaves
	 * running in its process group is killed when it exits. 0: as we are.
	 */
	int has_ids;
	uid_t uid;
	gid_t gid;
	/*
	 * >0: after this many milliseconds the command is killed (SIGKILL; its
	 * whole process group with new_session) and *status says so. 0: no limit.
	 */
	int timeout_ms;
};

struct ops_stream;

struct punix_ops {
	const char *name;
	void *ctx;

	/* stat(2) (follow != 0) or lstat(2). */
	int (*stat)(struct punix_ops *o, const char *path, int follow, struct ops_stat *st);

	/* Handles. read/write return the byte count; short counts are possible. */
	int (*open)(struct punix_ops *o, const char *path, int flags, uint32_t mode, int *h);
	ssize_t (*read)(struct punix_ops *o, int h, void *buf, size_t n);
	ssize_t (*write)(struct punix_ops *o, int h, const void *buf, size_t n);
	int (*fsync)(struct punix_ops *o, int h);
	int (*close)(struct punix_ops *o, int h);

	/*
	 * Reads a whole regular file. A file larger than max fails with -EFBIG
	 * before anything is read; a file that is not regular, -EINVAL (or
	 * -EISDIR). *buf is malloc'd, NUL-terminated, owned by the caller.
	 */
	int (*read_file)(struct punix_ops *o, const char *path, size_t max, char **buf, size_t *len);

	/* Directory entries except "." and "..", sorted bytewise; malloc'd. */
	int (*list_dir)(struct punix_ops *o, const char *path, char ***names, size_t *n);

	int (*mkdir)(struct punix_ops *o, const char *path, uint32_t mode); /* -EEXIST if present */
	int (*rename)(struct punix_ops *o, const char *from, const char *to);
	int (*unlink)(struct punix_ops *o, const char *path);
	int (*rmdir)(struct punix_ops *o, const char *path);
	int (*symlink)(struct punix_ops *o, const char *target, const char *path);
	/* *target is malloc'd. */
	int (*readlink)(struct punix_ops *o, const char *path, char **target);
	/* Never through a symlink at path's last component (-ELOOP or -EOPNOTSUPP). */
	int (*chmod)(struct punix_ops *o, const char *path, uint32_t mode);
	/* The mode of an open file: what durable writes use, so no path can be swapped. */
	int (*fchmod)(struct punix_ops *o, int h, uint32_t mode);
	/* Gives path to user (and the user's primary group); -ENOENT: no such user. */
	int (*chown_user)(struct punix_ops *o, const char *path, const char *user);
	/* The canonical absolute path (symlinks resolved); *out is malloc'd. */
	int (*realpath)(struct punix_ops *o, const char *path, char **out);
	/* fsync a file or directory by path (directories: to make renames durable). */
	int (*fsync_path)(struct punix_ops *o, const char *path);

	/*
	 * An advisory lock on the file at path (created if missing), held until
	 * unlock. exclusive or shared; wait=0 fails with -EWOULDBLOCK instead of
	 * waiting. Released by the kernel if the process dies: never stale.
	 */
	int (*lock)(struct punix_ops *o, const char *path, int exclusive, int wait, int *h);
	int (*unlock)(struct punix_ops *o, int h);

	/*
	 * Runs a command to completion; *status is the wait(2) status. The
	 * command is killed if the calling process dies.
	 */
	int (*run)(struct punix_ops *o, const struct ops_cmd *cmd, int *status);

	/* The wall clock, in seconds since the epoch (the deployer's, for every table). */
	int64_t (*now)(struct punix_ops *o);

	/* The machine's architecture as `uname -m` names it ("x86_64"), into out. */
	int (*arch)(struct punix_ops *o, char *out, size_t n);

	/*
	 * Whether each of n paths exists (not following a last symlink):
	 * found[i] = 1 or 0. One request where the transport can (over SSH:
	 * one exec for all of them, not a round trip each).
	 */
	int (*exists)(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found);

	/*
	 * fsync_path of each of n paths, in order (so a file before the
	 * directory that holds it). One request where the transport can; on
	 * failure *failed is the index of the path it names.
	 */
	int (*fsync_paths)(struct punix_ops *o, const char *const *paths, size_t n, size_t *failed);

	/*
	 * Removes each of the n entries of directory dir named in names (a
	 * name, never a path: no "/") and everything below it, like rm -rf
	 * that never follows a symlink; an entry that is not there is success.
	 * A read-only directory below an entry is made writable to be emptied;
	 * dir itself is not changed otherwise. By descriptors where the table
	 * can (dir opened once, each level relative to its parent). NULL where
	 * the table has no cheaper way than its other operations: call it
	 * through ops_remove_children, which then uses ops_remove_tree.
	 */
	int (*remove_children)(struct punix_ops *o, const char *dir, const char *const *names, size_t n);

	/*
	 * A command whose standard input and output are a byte stream to this
	 * process: host mode's channel to `punix host serve` (docs/hosts.md).
	 * line is a /bin/sh command line (what it writes on its standard error
	 * is not read: a line that wants it read says `exec 2>&1`).
	 * read returns 0 at the end; close ends the command's input, waits for
	 * it and gives its exit code (128 + the signal that killed it). NULL
	 * or -ENOTSUP where the table cannot (a tree rebased somewhere).
	 */
	int (*stream_open)(struct punix_ops *o, const char *line, struct ops_stream **s);
	ssize_t (*stream_read)(struct punix_ops *o, struct ops_stream *s, void *buf, size_t n);
	ssize_t (*stream_write)(struct punix_ops *o, struct ops_stream *s, const void *buf, size_t n);
	int (*stream_close)(struct punix_ops *o, struct ops_stream *s, int *status);
};

/* exists() by one stat per path: for tables without a cheaper way. */
int ops_exists_by_stat(struct punix_ops *o, const char *const *paths, size_t n, unsigned char *found);
/* fsync_paths() by one fsync_path each. */
int ops_fsync_paths_each(struct punix_ops *o, const char *const *paths, size_t n, size_t *failed);

/* The local filesystem and processes, as this process sees them. */
struct punix_ops *ops_local(void);

struct sbuf;
/*
 * The local filesystem beneath root (ops_beneath.c): target paths are
 * resolved under root's directory descriptor, opened now, and nothing
 * outside it can be reached, by "..", by a symlink, or by a root swapped
 * later. Writes, renames, removals, chmods and locks never follow a symlink
 * at the last component. Rooted at "/", it also runs commands and chowns;
 * rooted elsewhere those are -ENOTSUP. NULL with err set if root cannot be
 * opened as a directory.
 */
struct punix_ops *ops_beneath(const char *root, struct sbuf *err);
void ops_beneath_free(struct punix_ops *o);
bool ops_is_beneath(const struct punix_ops *o);
/* The root a beneath table was made with, or NULL for another table. */
const char *ops_beneath_root(const struct punix_ops *o);

void ops_free_names(char **names, size_t n);

/* ---- helpers built only on the table (ops_util.c) ---------------------- */

/*
 * Calls fn(o, child_path, name, arg) for each entry of directory path, in
 * name order, stopping at the first non-zero return, which it returns.
 */
int ops_each_child(struct punix_ops *o, const char *path,
		   int (*fn)(struct punix_ops *o, const char *child, const char *name, void *arg), void *arg);

/* mkdir -p; existing directories are fine; each one created is made durable. */
int ops_mkdir_p(struct punix_ops *o, const char *path, uint32_t mode);

/*
 * Durable write: a temporary file next to path, write, fsync, rename over
 * path, fsync the directory. Safe to repeat; never leaves path half-written.
 */
int ops_write_atomic(struct punix_ops *o, const char *path, const void *data, size_t len, uint32_t mode);
/*
 * The same without the final fsync of the directory: for writing many files
 * and then fsyncing each directory once. The file is not durable until its
 * directory is synced.
 */
int ops_write_atomic_nodirsync(struct punix_ops *o, const char *path, const void *data, size_t len, uint32_t mode);

/* rm -rf that never follows symlinks; a missing path is success. */
int ops_remove_tree(struct punix_ops *o, const char *path);

/* o->remove_children, or ops_remove_tree of each entry where the table has none. */
int ops_remove_children(struct punix_ops *o, const char *dir, const char *const *names, size_t n);

/* fsync every file and directory below path (path included), bottom-up. */
int ops_fsync_tree(struct punix_ops *o, const char *path);

/* Copies a tree (files with their executable bit, directories, symlinks as links). */
int ops_copy_tree(struct punix_ops *o, const char *from, const char *to);
/* Copies one file (never following a link at either end) to a new file of exactly mode. */
int ops_copy_file(struct punix_ops *o, const char *from, const char *to, uint32_t mode);
/* The same from one table to another (the local store to a target, say). */
int ops_copy_tree_to(struct punix_ops *src, const char *from, struct punix_ops *dst, const char *to);

/*
 * Temporaries: ".<name>.tmp-<16 random hex digits>" beside the file they
 * become, created O_EXCL|O_NOFOLLOW. Unpredictable, so nobody can plant one
 * first; recovery, holding the lock of what writes them, removes any it
 * finds (docs/deploy.md).
 */
#define OPS_TMP_SUFFIX_LEN 16
#define OPS_TMP_PREFIX_FMT ".%s.tmp-"
void ops_tmp_suffix(char out[OPS_TMP_SUFFIX_LEN + 1]);
/* The path of a fresh temporary for path; malloc'd. */
char *ops_tmp_name(const char *path);

/*
 * strerror for an effect under a root: -EXDEV from a confined table means
 * the path leads out of its root (a symlink or ".." on the way), which
 * strerror would call a "cross-device link".
 */
const char *ops_strerror(int neg_errno);

/* The directory part of path ("." if none), malloc'd. */
char *ops_dirname(const char *path);

#endif
