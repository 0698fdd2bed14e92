/*
 * journal_internal.h - what the journal's source files share; not part of
 * its interface (journal.h is).
 *
 *   journal_codec.c  the records: encoding, decoding, salvage (pure: no LMDB)
 *   journal_meta.c   the directory and data.mdb, looked at before LMDB maps it
 *   journal.c        the environment: open, writes, reads, set-aside
 */
#ifndef PUNIX_JOURNAL_INTERNAL_H
#define PUNIX_JOURNAL_INTERNAL_H

#include <lmdb.h>

#include "journal.h"

/* A record larger than this is not one of ours. */
#define REC_MAX ((size_t)16 << 20)

struct journal {
	MDB_env *env;
	MDB_dbi ops, steps, meta;
	char *dir;
};

/* Sets e (if any) to code and the message; returns code. */
int jr_fail(struct journal_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A malloc'd formatted string; aborts when memory runs out. */
char *jr_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An LMDB error rc while doing what: -EIO for LMDB's own codes, else rc. */
int jr_lmdb_fail(struct journal_err *e, int rc, const char *what);

/*
 * Fills kind, scope, stack, plan and started from the fields of a damaged
 * op record whose framing still holds together, without trusting its
 * envelope or checksum: every string taken is clean text, the rest NULL.
 */
void jr_salvage_op(const unsigned char *p, size_t len, struct journal_op *op);

/* mkdir -p: the journal's directory mode 0700, missing parents 0755. */
int jr_make_dirs(const char *dir, struct journal_err *e);
/*
 * 0 if path is missing (a new journal) or looks whole, else an error: empty,
 * truncated, or not an LMDB file at all.
 */
int jr_check_data(const char *path, struct journal_err *e);
/* Waits (a bounded while) for another process creating dir's data.mdb. */
void jr_wait_for_creation(const char *dir);

/* ---- keys ---------------------------------------------------------------------- */

static inline void key_op(unsigned char k[8], uint64_t id)
{
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(id >> (56 - 8 * i));
}

static inline void key_step(unsigned char k[12], uint64_t id, uint32_t index)
{
	key_op(k, id);
	for (int i = 0; i < 4; i++)
		k[8 + i] = (unsigned char)(index >> (24 - 8 * i));
}

/* The op id of an ops or steps key (its first 8 bytes); 0 if it is shorter. */
static inline uint64_t key_id(const MDB_val *k)
{
	uint64_t id = 0;
	if (k->mv_size >= 8)
		for (int i = 0; i < 8; i++)
			id = id << 8 | ((const unsigned char *)k->mv_data)[i];
	return id;
}

static inline uint32_t key_index(const MDB_val *k)
{
	uint32_t index = 0;
	for (int i = 8; i < 12; i++)
		index = index << 8 | ((const unsigned char *)k->mv_data)[i];
	return index;
}

#endif
