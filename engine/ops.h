/*
 * ops.h - the effect seam: every filesystem, process and network effect of
 * punix goes through one table of operations, like SQLite's VFS.
 *
 * Callers never call open(2), rename(2) or exec directly; they call through
 * a struct punix_ops. That one indirection is what lets the same engine run
 * against the local machine, a tree rebased under --transport-root, or a
 * host over SSH, and what lets tests inject a crash at a named step or an
 * I/O error at the Nth effect.
 *
 * Contract (libuv's): every operation returns 0 or a negative errno value,
 * and outputs are only written on success.
 *
 * This first version carries what reading a program needs; the deploy
 * engine grows it (write-atomic, symlink switch, run, push) behind the same
 * table.
 */
#ifndef PUNIX_ENGINE_OPS_H
#define PUNIX_ENGINE_OPS_H

#include <stddef.h>
#include <stdint.h>

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
};

struct punix_ops {
	const char *name;
	void *ctx;
	/* stat(2) (follow != 0) or lstat(2). */
	int (*stat)(struct punix_ops *o, const char *path, int follow, struct ops_stat *st);
	/*
	 * Reads a whole regular file. A file larger than max fails with -EFBIG
	 * before anything is read; a file that is not regular, -EINVAL.
	 * *buf is malloc'd, NUL-terminated, and owned by the caller.
	 */
	int (*read_file)(struct punix_ops *o, const char *path, size_t max, char **buf, size_t *len);
	/* Directory entries except "." and "..", sorted bytewise; malloc'd. */
	int (*list_dir)(struct punix_ops *o, const char *path, char ***names, size_t *n);
};

/* The local filesystem, as the process sees it. */
struct punix_ops *ops_local(void);

void ops_free_names(char **names, size_t n);

#endif
