/*
 * store_unpack.h - a url source's archive unpacked into the build's src/
 * (docs/building.md, "The download cache").
 *
 * The archive is read by a reader the caller hands in (engine/fetch.h:
 * libarchive, loaded with dlopen; a stub in punix-static), which pulls its
 * bytes from the cached file through the ops table and hands each entry to
 * the store. Every entry is written here, through the ops table, never by
 * the reader: names are checked first (no absolute path, no '..', no
 * control character), nothing is created through a symlink or over an
 * existing entry, and only regular files, directories and symlinks that
 * stay inside src/ are made.
 */
#ifndef PUNIX_STORE_UNPACK_H
#define PUNIX_STORE_UNPACK_H

#include <stdint.h>
#include <sys/types.h>

#include "../base/ops.h"
#include "../base/sbuf.h"

/* At most this many entries, and this many bytes of files (16 GiB), in an archive. */
#define UNPACK_MAX_ENTRIES 1000000u
#define UNPACK_MAX_BYTES ((uint64_t)16 << 30)

/* What a file name says its archive is. */
enum unpack_format {
	UNPACK_NONE, /* not an archive: the file itself goes into src/ */
	UNPACK_TAR_GZ,
	UNPACK_TAR_XZ,
	UNPACK_TAR_ZSTD,
	UNPACK_ZIP,
};

/* From the end of name: .tar.gz .tgz .tar.xz .txz .tar.zst .tzst .zip (in that case), else UNPACK_NONE. */
enum unpack_format unpack_format_of(const char *name);

enum unpack_kind {
	UNPACK_FILE,
	UNPACK_DIR,
	UNPACK_SYMLINK,
	UNPACK_HARDLINK,
	UNPACK_DEVICE, /* a character or block device */
	UNPACK_FIFO,
	UNPACK_SOCKET,
	UNPACK_OTHER,
};

/* The archive's bytes, for the reader. */
struct unpack_source {
	/* Reads at the current offset: the count, 0 at the end, or <0 (-errno). */
	ssize_t (*read)(struct unpack_source *s, void *buf, size_t n);
	/* Moves to offset (from the start, at most size): 0 or <0 (-errno). */
	int (*seek)(struct unpack_source *s, uint64_t offset);
	uint64_t size;
	uint64_t offset;
};

/* One entry, as the archive has it. */
struct unpack_entry {
	const char *name;      /* its path in the archive; NULL if it has none the reader can give */
	enum unpack_kind kind;
	uint32_t mode;         /* its permission bits */
	uint64_t size;         /* a file's size */
	const char *link;      /* a symlink's (or hard link's) target, or NULL */
	/* A file's contents: the count read, 0 at its end, <0 with err set. */
	ssize_t (*read)(const struct unpack_entry *e, void *buf, size_t n, struct sbuf *err);
	void *reader;          /* the reader's, for read */
};

/* Takes each entry in turn: 0 to go on, or <0 to stop. */
typedef int (*unpack_each_fn)(void *arg, const struct unpack_entry *e);

/*
 * Reads the archive of format f from src, calling each for each entry, in
 * order. 0; or what each returned if it was <0 (err untouched); or -EIO
 * with err saying why the archive cannot be read ("Truncated tar archive",
 * "cannot load libarchive.so.13 ...").
 */
typedef int (*unpack_read_fn)(enum unpack_format f, struct unpack_source *src, unpack_each_fn each, void *arg,
			      struct sbuf *err);

/*
 * Unpacks the archive at path (of format f, read with read_archive) into
 * the existing empty directory dir. If every entry lies under one top
 * directory, what that directory holds goes into dir instead. 0, or <0
 * with err saying why in a few words: the entry it refused (by name) and
 * why, a limit, or the reader's error.
 */
int store_unpack(struct punix_ops *o, const char *path, enum unpack_format f, unpack_read_fn read_archive,
		 const char *dir, struct sbuf *err);

#endif
