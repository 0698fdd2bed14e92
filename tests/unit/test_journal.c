/*
 * test_journal.c - the journal's records and its LMDB environment: round
 * trips, and every kind of damage reported instead of trusted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/ops.h"
#include "journal/journal.h"

static struct journal_op sample_op(void)
{
	struct journal_op op = {0};
	op.id = 42;
	op.kind = "deploy";
	op.scope = "local|/d|HelloStack";
	op.stack = "HelloStack";
	op.plan = "{\"generation\": 3}";
	op.state = JOURNAL_OP_RUNNING;
	op.started = 1700000000;
	return op;
}

Test(records, op_round_trip)
{
	struct journal_op op = sample_op(), back;
	size_t len;
	unsigned char *rec = journal_encode_op(&op, &len);
	struct journal_err e;
	cr_assert_eq(journal_decode_op(rec, len, &back, &e), 0, "%s", e.msg);
	cr_expect_eq(back.id, 42);
	cr_expect_str_eq(back.kind, "deploy");
	cr_expect_str_eq(back.scope, op.scope);
	cr_expect_str_eq(back.plan, op.plan);
	cr_expect_eq(back.state, JOURNAL_OP_RUNNING);
	journal_op_free(&back);
	free(rec);
}

Test(records, every_single_byte_change_is_caught)
{
	struct journal_op op = sample_op(), back;
	size_t len;
	unsigned char *rec = journal_encode_op(&op, &len);
	struct journal_err e;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			rec[i] ^= (unsigned char)(1 << bit);
			int r = journal_decode_op(rec, len, &back, &e);
			cr_assert_neq(r, 0, "a flip of bit %d of byte %zu went unnoticed", bit, i);
			cr_assert_eq(r, -EBADMSG);
			rec[i] ^= (unsigned char)(1 << bit);
		}
	}
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(journal_decode_op(rec, cut, &back, &e), -EBADMSG, "truncated to %zu", cut);
	free(rec);
}

Test(records, a_step_is_not_an_op)
{
	struct journal_step s = {3, "flip", JOURNAL_STEP_DONE, NULL};
	size_t len;
	unsigned char *rec = journal_encode_step(&s, &len);
	struct journal_op op;
	struct journal_err e;
	cr_expect_eq(journal_decode_op(rec, len, &op, &e), -EBADMSG);
	cr_expect(strstr(e.msg, "type") != NULL, "%s", e.msg);
	struct journal_step back;
	cr_assert_eq(journal_decode_step(rec, len, &back, &e), 0);
	cr_expect_str_eq(back.name, "flip");
	cr_expect_null(back.result);
	free(back.name);
	free(rec);
	cr_expect_eq(journal_decode_step((const unsigned char *)"hello world, not a record", 25, &back, &e), -EBADMSG);
}

Test(env, ops_and_steps_persist)
{
	char dir[] = "/tmp/punix-journal-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	struct journal_op op = sample_op();
	cr_assert_eq(journal_op_begin(j, &op, &e), 0, "%s", e.msg);
	uint64_t id = op.id;
	cr_expect_eq(id, 1);
	cr_assert_eq(journal_step_write(j, id, 0, "plan", JOURNAL_STEP_INTENT, NULL, &e), 0);
	cr_assert_eq(journal_step_write(j, id, 0, "plan", JOURNAL_STEP_DONE, "gen 3", &e), 0);
	cr_assert_eq(journal_step_write(j, id, 1, "stage", JOURNAL_STEP_INTENT, NULL, &e), 0);
	journal_close(j);

	cr_assert_eq(journal_open(&j, dir, &e), 0);
	struct journal_op back;
	struct journal_step *steps;
	size_t n;
	cr_assert_eq(journal_op_get(j, id, &back, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(back.state, JOURNAL_OP_RUNNING);
	cr_assert_eq(n, 2);
	cr_expect_eq(steps[0].state, JOURNAL_STEP_DONE);
	cr_expect_str_eq(steps[0].result, "gen 3");
	cr_expect_eq(steps[1].state, JOURNAL_STEP_INTENT);
	journal_steps_free(steps, n);
	journal_op_free(&back);

	cr_assert_eq(journal_op_finish(j, id, JOURNAL_OP_DONE, &e), 0);
	struct journal_op op2 = sample_op();
	cr_assert_eq(journal_op_begin(j, &op2, &e), 0);
	cr_expect_eq(op2.id, 2);
	struct journal_op *all;
	cr_assert_eq(journal_op_list(j, &all, &n, &e), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(all[0].state, JOURNAL_OP_DONE);
	cr_expect_eq(all[1].state, JOURNAL_OP_RUNNING);
	journal_ops_free(all, n);
	cr_expect_eq(journal_op_get(j, 99, &back, NULL, NULL, &e), -ENOENT);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
}

/* ---- damaged state ------------------------------------------------------------ */

#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	cr_assert_not_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc((size_t)n + 1);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void spill(const char *path, const unsigned char *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(p, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* A journal in a fresh directory with n ops (op 2 and every fourth running), each with steps. */
static char *journal_with_ops(int n)
{
	char *dir = strdup("/tmp/punix-journal-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	static const char *stacks[] = {"Web", "Api", "Db", "Cache"};
	for (int i = 0; i < n; i++) {
		struct journal_op op = sample_op();
		char scope[64];
		snprintf(scope, sizeof(scope), "local|/d|%s", stacks[i % 4]);
		op.scope = scope;
		op.stack = (char *)stacks[i % 4];
		cr_assert_eq(journal_op_begin(j, &op, &e), 0, "%s", e.msg);
		cr_assert_eq(journal_step_write(j, op.id, 0, "plan", JOURNAL_STEP_DONE, "gen 3", &e), 0);
		cr_assert_eq(journal_step_write(j, op.id, 1, "build", JOURNAL_STEP_DONE, NULL, &e), 0);
		cr_assert_eq(journal_step_write(j, op.id, 2, "flip", JOURNAL_STEP_INTENT, NULL, &e), 0);
		if (op.id != 2 && op.id % 4 != 0)
			cr_assert_eq(journal_op_finish(j, op.id, JOURNAL_OP_DONE, &e), 0);
	}
	journal_close(j);
	return dir;
}

/* The journal's LMDB environment opened directly, as damage (or a tool) would reach it. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
};

static void raw_begin(struct raw *r, const char *dir, const char *db)
{
	cr_assert_eq(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 4);
	mdb_env_set_mapsize(r->env, (size_t)1 << 30);
	cr_assert_eq(mdb_env_open(r->env, dir, MDB_NOSYNC, 0600), 0);
	cr_assert_eq(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	cr_assert_eq(mdb_dbi_open(r->txn, db, 0, &r->dbi), 0);
}

static void raw_end(struct raw *r)
{
	cr_assert_eq(mdb_txn_commit(r->txn), 0);
	mdb_env_sync(r->env, 1);
	mdb_env_close(r->env);
}

static void op_key(unsigned char k[8], uint64_t id)
{
	for (int i = 0; i < 8; i++)
		k[i] = (unsigned char)(id >> (56 - 8 * i));
}

static void step_key(unsigned char k[12], uint64_t id, uint32_t index)
{
	op_key(k, id);
	for (int i = 0; i < 4; i++)
		k[8 + i] = (unsigned char)(index >> (24 - 8 * i));
}

/* Replaces the record under key in db with len bytes. */
static void raw_put(const char *dir, const char *db, const unsigned char *key, size_t klen, const void *val, size_t len)
{
	struct raw r;
	raw_begin(&r, dir, db);
	MDB_val k = {klen, (void *)key}, v = {len, (void *)val};
	cr_assert_eq(mdb_put(r.txn, r.dbi, &k, &v, 0), 0);
	raw_end(&r);
}

/* A malloc'd copy of the record under key in db, or NULL. */
static unsigned char *raw_get(const char *dir, const char *db, const void *key, size_t klen, size_t *len)
{
	struct raw r;
	raw_begin(&r, dir, db);
	MDB_val k = {klen, (void *)key}, v;
	unsigned char *p = NULL;
	if (mdb_get(r.txn, r.dbi, &k, &v) == 0) {
		p = malloc(v.mv_size + 1);
		cr_assert_not_null(p);
		memcpy(p, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	raw_end(&r);
	return p;
}

/* Flips one bit of op id's record (found through LMDB, written back). */
static void flip_op_record(const char *dir, uint64_t id, size_t byte, int bit)
{
	unsigned char k[8];
	op_key(k, id);
	size_t len;
	unsigned char *rec = raw_get(dir, "ops", k, 8, &len);
	cr_assert_not_null(rec);
	cr_assert_lt(byte, len);
	rec[byte] ^= (unsigned char)(1 << bit);
	raw_put(dir, "ops", k, 8, rec, len);
	free(rec);
}

static bool printable(const char *s, bool ws)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && !(ws && (*p == '\t' || *p == '\n'))) || *p == 0x7f)
			return false;
	return true;
}

Test(records, set_aside_and_corrupt_states)
{
	cr_expect_str_eq(journal_op_state_name(JOURNAL_OP_CORRUPT), "corrupt");
	cr_expect_str_eq(journal_op_state_name(JOURNAL_OP_SET_ASIDE), "set-aside");
	struct journal_op op = {0}, back;
	struct journal_err e;
	size_t len;
	/* an op set aside while corrupt may have lost kind, scope and stack */
	op.id = 7;
	op.state = JOURNAL_OP_SET_ASIDE;
	op.corrupt = "op 7 is corrupt: record checksum mismatch (corrupted or edited)";
	unsigned char *rec = journal_encode_op(&op, &len);
	cr_assert_eq(journal_decode_op(rec, len, &back, &e), 0, "%s", e.msg);
	cr_expect_eq(back.state, JOURNAL_OP_SET_ASIDE);
	cr_expect_null(back.kind);
	cr_expect_null(back.scope);
	cr_expect_null(back.stack);
	cr_expect_str_eq(back.corrupt, op.corrupt);
	journal_op_free(&back);
	free(rec);
	/* CORRUPT is never stored */
	op.state = JOURNAL_OP_CORRUPT;
	rec = journal_encode_op(&op, &len);
	cr_expect_eq(journal_decode_op(rec, len, &back, &e), -EBADMSG);
	free(rec);
	/* nor is a corruption note on any other state, nor a running op without its fields */
	struct journal_op run = sample_op();
	run.corrupt = "op 42 is corrupt: x";
	rec = journal_encode_op(&run, &len);
	cr_expect_eq(journal_decode_op(rec, len, &back, &e), -EBADMSG);
	free(rec);
	op.state = JOURNAL_OP_RUNNING;
	op.corrupt = NULL;
	rec = journal_encode_op(&op, &len);
	cr_expect_eq(journal_decode_op(rec, len, &back, &e), -EBADMSG);
	free(rec);
	/* and a plain running op still round-trips, with no note */
	run.corrupt = NULL;
	rec = journal_encode_op(&run, &len);
	cr_assert_eq(journal_decode_op(rec, len, &back, &e), 0, "%s", e.msg);
	cr_expect_null(back.corrupt);
	journal_op_free(&back);
	free(rec);
}

Test(damage, a_truncated_journal_is_an_error_naming_the_file_never_a_crash, .timeout = 120)
{
	char *dir = journal_with_ops(12);
	char *data = path_in(dir, "data.mdb");
	size_t full;
	unsigned char *bytes = slurp(data, &full);
	long psize = sysconf(_SC_PAGESIZE);
	cr_assert_gt(full, (size_t)psize * 4, "the journal has data pages past its meta pages (%zu bytes)", full);
	/* every page boundary, a byte either side, and a few odd sizes */
	size_t sizes[512];
	size_t ns = 0;
	size_t odd[] = {1, 16, 100, 151, 152, 153, 1000, (size_t)psize + 16 + 136, full / 2, full - 1};
	for (size_t i = 0; i < sizeof(odd) / sizeof(*odd); i++)
		sizes[ns++] = odd[i];
	for (size_t at = (size_t)psize; at < full && ns + 3 <= sizeof(sizes) / sizeof(*sizes); at += (size_t)psize) {
		sizes[ns++] = at - 1;
		sizes[ns++] = at;
		sizes[ns++] = at + 1;
	}
	for (size_t i = 0; i < ns; i++) {
		if (sizes[i] == 0 || sizes[i] >= full)
			continue;
		spill(data, bytes, sizes[i]);
		struct journal *j = NULL;
		struct journal_err e = {0};
		int r = journal_open(&j, dir, &e);
		cr_assert_lt(r, 0, "a journal truncated to %zu of %zu bytes opened", sizes[i], full);
		cr_expect_null(j);
		cr_expect(strstr(e.msg, data) != NULL, "the message names %s: %s", data, e.msg);
		cr_expect(strstr(e.msg, "is truncated") != NULL, "truncated to %zu: %s", sizes[i], e.msg);
		cr_expect_eq(r, -EBADMSG, "truncated to %zu: %s", sizes[i], e.msg);
		cr_expect_eq(e.code, r);
	}
	/* whole again, it opens and every op is there */
	spill(data, bytes, full);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(n, 12);
	journal_ops_free(ops, n);
	journal_close(j);
	free(bytes);
	free(data);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, a_healthy_journal_is_never_taken_for_a_truncated_one, .timeout = 120)
{
	char dir[] = "/tmp/punix-journal-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct journal *j;
	struct journal_err e;
	char plan[6000];
	unsigned seed = 1;
	for (int round = 0; round < 12; round++) {
		cr_assert_eq(journal_open(&j, dir, &e), 0, "round %d: %s", round, e.msg);
		for (int i = 0; i < 8; i++) {
			struct journal_op op = sample_op();
			cr_assert_eq(journal_op_begin(j, &op, &e), 0, "%s", e.msg);
			seed = seed * 1103515245u + 12345u;
			size_t len = (seed >> 8) % (sizeof(plan) - 1);
			memset(plan, 'p', len);
			plan[len] = '\0';
			cr_assert_eq(journal_op_set_plan(j, op.id, plan, &e), 0, "%s", e.msg);
			for (uint32_t s = 0; s < 4; s++) {
				cr_assert_eq(journal_step_write(j, op.id, s, "s", JOURNAL_STEP_INTENT, NULL, &e), 0);
				cr_assert_eq(
				    journal_step_write(j, op.id, s, "s", JOURNAL_STEP_DONE, s % 2 ? plan : NULL, &e),
				    0);
			}
			cr_assert_eq(journal_op_finish(j, op.id, JOURNAL_OP_DONE, &e), 0);
		}
		journal_close(j);
	}
	ops_remove_tree(ops_local(), dir);
}

Test(damage, an_emptied_journal_is_an_error_a_missing_one_is_created)
{
	char *dir = journal_with_ops(3);
	char *data = path_in(dir, "data.mdb");
	cr_assert_eq(truncate(data, 0), 0);
	struct journal *j = NULL;
	struct journal_err e = {0};
	int r = journal_open(&j, dir, &e);
	cr_expect_eq(r, -ENODATA, "%s", e.msg);
	cr_expect_null(j);
	cr_expect(strstr(e.msg, data) != NULL, "%s", e.msg);
	cr_expect(strstr(e.msg, " is empty: the journal was lost or emptied; ") != NULL, "%s", e.msg);
	struct stat st;
	cr_assert_eq(stat(data, &st), 0);
	cr_expect_eq(st.st_size, 0, "the emptied file is left as it was");

	/* no data.mdb at all: a new journal, in directories made as needed */
	unlink(data);
	char *deep = path_in(dir, "a/b/journal");
	cr_assert_eq(journal_open(&j, deep, &e), 0, "%s", e.msg);
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0);
	cr_expect_eq(n, 0);
	journal_ops_free(ops, n);
	journal_close(j);
	cr_assert_eq(stat(deep, &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
	cr_expect_eq(st.st_mode & 0777, 0700);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	journal_close(j);
	free(deep);
	free(data);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, a_corrupt_op_record_stops_only_its_op)
{
	char *dir = journal_with_ops(4);
	/* op 2 (running): one bit of its stack flipped; op 3 (done): not a record at all */
	flip_op_record(dir, 2, 56, 0);
	unsigned char k[8];
	op_key(k, 3);
	raw_put(dir, "ops", k, 8, "PJR\x01Ohand-edited junk", 21);

	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	cr_expect_eq(ops[0].id, 1);
	cr_expect_eq(ops[0].state, JOURNAL_OP_DONE);
	cr_expect_null(ops[0].corrupt);
	cr_expect_eq(ops[1].id, 2);
	cr_expect_eq(ops[1].state, JOURNAL_OP_CORRUPT);
	cr_assert_not_null(ops[1].corrupt);
	cr_expect(strncmp(ops[1].corrupt, "op 2 is corrupt: ", 17) == 0, "%s", ops[1].corrupt);
	/* what could be salvaged: clean text or NULL */
	cr_expect_str_eq(ops[1].kind, "deploy");
	cr_expect_str_eq(ops[1].stack, "Aqi", "salvaged, and as damaged as the record");
	cr_expect_eq(ops[2].id, 3);
	cr_expect_eq(ops[2].state, JOURNAL_OP_CORRUPT);
	cr_expect(strncmp(ops[2].corrupt, "op 3 is corrupt: ", 17) == 0, "%s", ops[2].corrupt);
	cr_expect_null(ops[2].kind);
	cr_expect_null(ops[2].scope);
	cr_expect_null(ops[2].stack);
	cr_expect_null(ops[2].plan);
	cr_expect_eq(ops[3].id, 4);
	cr_expect_eq(ops[3].state, JOURNAL_OP_RUNNING);
	cr_expect_str_eq(ops[3].stack, "Cache");
	journal_ops_free(ops, n);

	struct journal_op op;
	struct journal_step *steps;
	cr_expect_eq(journal_op_get(j, 2, &op, &steps, &n, &e), -EBADMSG);
	cr_expect(strncmp(e.msg, "journal: op 2 is corrupt: ", 26) == 0, "%s", e.msg);
	cr_expect_eq(journal_op_get(j, 3, &op, NULL, NULL, &e), -EBADMSG);
	cr_expect(strncmp(e.msg, "journal: op 3 is corrupt: ", 26) == 0, "%s", e.msg);
	cr_assert_eq(journal_op_get(j, 4, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(n, 3);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	/* inspecting shows what can be read of it */
	cr_assert_eq(journal_op_inspect(j, 2, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_CORRUPT);
	cr_expect_eq(op.id, 2);
	cr_expect_not_null(op.corrupt);
	cr_expect_eq(n, 3, "its steps still decode");
	journal_steps_free(steps, n);
	journal_op_free(&op);
	/* updating a corrupt op is refused, not trusted */
	cr_expect_eq(journal_op_finish(j, 2, JOURNAL_OP_DONE, &e), -EBADMSG);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, a_corrupt_step_record_stops_only_its_op)
{
	char *dir = journal_with_ops(4);
	unsigned char k[12];
	step_key(k, 2, 1);
	raw_put(dir, "steps", k, 12, "not a step", 10);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	cr_expect_eq(ops[0].state, JOURNAL_OP_DONE);
	cr_expect_eq(ops[1].state, JOURNAL_OP_CORRUPT);
	cr_expect_str_eq(ops[1].corrupt,
	                 "op 2 is corrupt: its step 1 record: record of 10 bytes is truncated or too large");
	/* the op record itself is intact: its fields are the real ones */
	cr_expect_str_eq(ops[1].kind, "deploy");
	cr_expect_str_eq(ops[1].scope, "local|/d|Api");
	cr_expect_str_eq(ops[1].stack, "Api");
	cr_expect_eq(ops[2].state, JOURNAL_OP_DONE);
	cr_expect_eq(ops[3].state, JOURNAL_OP_RUNNING);
	journal_ops_free(ops, n);
	struct journal_op op;
	struct journal_step *steps;
	cr_expect_eq(journal_op_get(j, 2, &op, &steps, &n, &e), -EBADMSG);
	cr_expect_str_eq(e.msg,
	                 "journal: op 2 is corrupt: its step 1 record: record of 10 bytes is truncated or too large");
	cr_assert_eq(journal_op_inspect(j, 2, &op, &steps, &n, &e), 0);
	cr_expect_eq(n, 2, "steps 0 and 2 decode");
	journal_steps_free(steps, n);
	journal_op_free(&op);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, any_flipped_bit_of_a_stored_record_lists_as_corrupt_with_clean_salvage, .timeout = 120)
{
	char *dir = journal_with_ops(2);
	unsigned char k[8];
	op_key(k, 2);
	size_t len;
	unsigned char *good = raw_get(dir, "ops", k, 8, &len);
	cr_assert_not_null(good);
	for (size_t byte = 0; byte < len; byte++) {
		int bit = (int)(byte % 8);
		good[byte] ^= (unsigned char)(1 << bit);
		raw_put(dir, "ops", k, 8, good, len);
		good[byte] ^= (unsigned char)(1 << bit);
		struct journal *j;
		struct journal_err e;
		cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
		struct journal_op *ops;
		size_t n;
		cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "byte %zu: %s", byte, e.msg);
		cr_assert_eq(n, 2);
		cr_expect_eq(ops[0].state, JOURNAL_OP_DONE);
		cr_expect_eq(ops[1].state, JOURNAL_OP_CORRUPT, "byte %zu", byte);
		cr_expect_eq(ops[1].id, 2);
		const struct journal_op *c = &ops[1];
		cr_expect(!c->kind || printable(c->kind, false), "byte %zu", byte);
		cr_expect(!c->scope || printable(c->scope, false), "byte %zu", byte);
		cr_expect(!c->stack || printable(c->stack, false), "byte %zu", byte);
		/* a plan is bytes (engine/plan.h); people see it decoded, never raw */
		cr_expect(!c->plan || c->plan_len <= len, "byte %zu", byte);
		journal_ops_free(ops, n);
		journal_close(j);
	}
	free(good);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, set_aside_a_running_op)
{
	char *dir = journal_with_ops(4);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 2, &e), 0, "%s", e.msg);
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	cr_assert_eq(journal_op_get(j, 2, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_SET_ASIDE);
	cr_expect_str_eq(op.stack, "Api");
	cr_expect_null(op.corrupt);
	cr_expect_neq(op.ended, 0);
	cr_expect_eq(n, 3, "its steps are kept");
	journal_steps_free(steps, n);
	journal_op_free(&op);
	/* never again: not set aside twice, not finished behind our back */
	cr_expect_eq(journal_op_set_aside(j, 2, &e), -EALREADY);
	cr_expect_str_eq(e.msg, "journal: op 2 is already set aside");
	cr_expect_eq(journal_op_finish(j, 2, JOURNAL_OP_DONE, &e), -EALREADY);
	cr_expect_eq(journal_op_set_plan(j, 2, "{}", &e), -EALREADY);
	/* finished ops and missing ones cannot be set aside */
	cr_expect_eq(journal_op_set_aside(j, 1, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "journal: op 1 is done: a finished op cannot be set aside");
	cr_expect_eq(journal_op_set_aside(j, 99, &e), -ENOENT);
	cr_expect_str_eq(e.msg, "journal: no op 99");
	struct journal_op *ops;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0);
	cr_expect_eq(ops[1].state, JOURNAL_OP_SET_ASIDE);
	cr_expect_eq(ops[3].state, JOURNAL_OP_RUNNING);
	journal_ops_free(ops, n);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, set_aside_a_corrupt_op_keeps_its_bytes)
{
	char *dir = journal_with_ops(4);
	unsigned char k[8], sk[12];
	op_key(k, 3);
	raw_put(dir, "ops", k, 8, "PJR\x01Ohand-edited junk", 21);
	flip_op_record(dir, 2, 56, 0);
	step_key(sk, 4, 1);
	raw_put(dir, "steps", sk, 12, "not a step", 10);

	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 3, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 4, &e), 0, "%s", e.msg);
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	cr_assert_eq(journal_op_get(j, 3, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_SET_ASIDE);
	cr_expect_null(op.kind, "nothing could be salvaged");
	cr_expect_null(op.stack);
	cr_expect(op.corrupt && strncmp(op.corrupt, "op 3 is corrupt: ", 17) == 0, "%s", op.corrupt);
	cr_expect_eq(n, 3);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	cr_assert_eq(journal_op_get(j, 4, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_SET_ASIDE);
	cr_expect_str_eq(op.stack, "Cache");
	cr_expect_str_eq(op.corrupt,
	                 "op 4 is corrupt: its step 1 record: record of 10 bytes is truncated or too large");
	cr_expect_eq(n, 2, "the corrupt step record moved away");
	journal_steps_free(steps, n);
	journal_op_free(&op);
	struct journal_op *ops;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0);
	cr_assert_eq(n, 4);
	cr_expect_eq(ops[1].state, JOURNAL_OP_CORRUPT, "op 2 is still corrupt");
	cr_expect_eq(ops[2].state, JOURNAL_OP_SET_ASIDE);
	cr_expect_eq(ops[3].state, JOURNAL_OP_SET_ASIDE);
	journal_ops_free(ops, n);
	journal_close(j);

	/* nothing is lost: the original bytes are under corrupt/<id>[/step/<index>] in the meta table */
	size_t len;
	unsigned char *kept = raw_get(dir, "meta", "corrupt/3", 9, &len);
	cr_assert_not_null(kept);
	cr_expect_eq(len, 21);
	cr_expect(memcmp(kept, "PJR\x01Ohand-edited junk", 21) == 0);
	free(kept);
	kept = raw_get(dir, "meta", "corrupt/4/step/1", 16, &len);
	cr_assert_not_null(kept);
	cr_expect_eq(len, 10);
	cr_expect(memcmp(kept, "not a step", 10) == 0);
	free(kept);
	cr_expect_null(raw_get(dir, "steps", sk, 12, &len));

	/* the same op damaged again and set aside again: the first bytes stay, the new go to ~2 */
	raw_put(dir, "ops", k, 8, "PJR\x01Oagain", 10);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 3, &e), 0, "%s", e.msg);
	journal_close(j);
	kept = raw_get(dir, "meta", "corrupt/3~2", 11, &len);
	cr_assert_not_null(kept);
	cr_expect_eq(len, 10);
	free(kept);
	kept = raw_get(dir, "meta", "corrupt/3", 9, &len);
	cr_assert_not_null(kept);
	cr_expect_eq(len, 21);
	free(kept);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(damage, a_journal_being_created_by_another_process_is_not_taken_for_an_empty_one, .timeout = 120)
{
	/* LMDB creates data.mdb empty, then writes its meta pages: opening in between must wait, not refuse */
	for (int round = 0; round < 15; round++) {
		char dir[] = "/tmp/punix-journal-XXXXXX";
		cr_assert_not_null(mkdtemp(dir));
		char *jdir = path_in(dir, "j");
		pid_t kids[6];
		for (int i = 0; i < 6; i++) {
			kids[i] = fork();
			cr_assert_neq(kids[i], -1);
			if (kids[i] == 0) {
				struct journal *j;
				struct journal_err e;
				int r = journal_open(&j, jdir, &e);
				if (r < 0) {
					fprintf(stderr, "round %d: %s\n", round, e.msg);
					_exit(1);
				}
				journal_close(j);
				_exit(0);
			}
		}
		for (int i = 0; i < 6; i++) {
			int st;
			cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
			cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: an open failed", round);
		}
		free(jdir);
		ops_remove_tree(ops_local(), dir);
	}
}

/* ---- the index of running ops --------------------------------------------------- */

/* The ids of the ops journal_running_list lists, with their states, as "1:running 4:corrupt". */
static char *running_ids(struct journal *j)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err e;
	cr_assert_eq(journal_running_list(j, &ops, &n, &e), 0, "%s", e.msg);
	char *s = calloc(1, 16 + n * 32);
	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(ops[i].state == JOURNAL_OP_CORRUPT, ops[i].corrupt != NULL, "op %llu",
			     (unsigned long long)ops[i].id);
		if (i)
			strcat(s, " ");
		sprintf(s + strlen(s), "%llu:%s", (unsigned long long)ops[i].id, journal_op_state_name(ops[i].state));
	}
	journal_ops_free(ops, n);
	return s;
}

static void expect_running(struct journal *j, const char *want)
{
	char *got = running_ids(j);
	cr_expect_str_eq(got, want);
	free(got);
}

/* The value of the meta table's "format" key, read directly. */
static uint32_t stored_format(const char *dir)
{
	size_t len = 0;
	unsigned char *v = raw_get(dir, "meta", "format", 6, &len);
	cr_assert_not_null(v);
	cr_assert_eq(len, 4);
	uint32_t f;
	memcpy(&f, v, 4);
	free(v);
	return f;
}

static void set_format(const char *dir, uint32_t f)
{
	raw_put(dir, "meta", (const unsigned char *)"format", 6, &f, sizeof(f));
}

/* Deletes a named database of the journal, as a journal of format 1 never had it. */
static void raw_drop(const char *dir, const char *db)
{
	struct raw r;
	raw_begin(&r, dir, db);
	cr_assert_eq(mdb_drop(r.txn, r.dbi, 1), 0);
	raw_end(&r);
}

Test(running, the_index_follows_begin_finish_and_set_aside)
{
	char *dir = journal_with_ops(0);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	expect_running(j, "");
	uint64_t id[5];
	for (int i = 0; i < 5; i++) {
		struct journal_op op = sample_op();
		cr_assert_eq(journal_op_begin(j, &op, &e), 0, "%s", e.msg);
		id[i] = op.id;
	}
	expect_running(j, "1:running 2:running 3:running 4:running 5:running");
	cr_assert_eq(journal_op_finish(j, id[0], JOURNAL_OP_DONE, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_finish(j, id[2], JOURNAL_OP_ABORTED, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_finish(j, id[3], JOURNAL_OP_FAILED, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_plan(j, id[1], "{\"x\": 1}", &e), 0, "%s", e.msg);
	expect_running(j, "2:running 5:running");
	cr_assert_eq(journal_op_set_aside(j, id[4], &e), 0, "%s", e.msg);
	expect_running(j, "2:running");
	/* a refused write changes nothing, the index included */
	cr_expect_eq(journal_op_set_aside(j, id[0], &e), -EINVAL);
	cr_expect_eq(journal_op_finish(j, id[4], JOURNAL_OP_DONE, &e), -EALREADY);
	expect_running(j, "2:running");
	/* what it lists is what journal_op_get says, plan included */
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_running_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(ops[0].plan, "{\"x\": 1}");
	cr_expect_str_eq(ops[0].scope, "local|/d|HelloStack");
	cr_expect_eq(ops[0].started != 0, true);
	journal_ops_free(ops, n);
	journal_close(j);
	/* it is stored, not rebuilt: a reopened journal has the same index */
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	expect_running(j, "2:running");
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(running, corrupt_running_ops_are_listed_corrupt_and_finished_ones_are_never_read)
{
	/* ops 2 and 4 are running, 1 and 3 done */
	char *dir = journal_with_ops(4);
	flip_op_record(dir, 2, 56, 0);
	unsigned char sk[12];
	step_key(sk, 4, 1);
	raw_put(dir, "steps", sk, 12, "not a step", 10);
	/* a finished op's record damaged: the index never leads there */
	unsigned char k[8];
	op_key(k, 3);
	raw_put(dir, "ops", k, 8, "PJR\x01Ohand-edited junk", 21);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_running_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 2);
	cr_expect_eq(ops[0].id, 2);
	cr_expect_eq(ops[0].state, JOURNAL_OP_CORRUPT);
	cr_expect(ops[0].corrupt && strncmp(ops[0].corrupt, "op 2 is corrupt: ", 17) == 0, "%s", ops[0].corrupt);
	cr_expect_str_eq(ops[0].kind, "deploy", "salvaged, as journal_op_list does");
	cr_expect_eq(ops[1].id, 4);
	cr_expect_eq(ops[1].state, JOURNAL_OP_CORRUPT);
	cr_expect_str_eq(ops[1].corrupt,
			 "op 4 is corrupt: its step 1 record: record of 10 bytes is truncated or too large");
	cr_expect_str_eq(ops[1].stack, "Cache");
	journal_ops_free(ops, n);
	/* journal_op_list still shows all four, op 3 corrupt */
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 4);
	cr_expect_eq(ops[2].state, JOURNAL_OP_CORRUPT);
	journal_ops_free(ops, n);
	/* set aside, a corrupt op leaves the index */
	cr_assert_eq(journal_op_set_aside(j, 2, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 3, &e), 0, "%s", e.msg);
	expect_running(j, "4:corrupt");
	journal_close(j);
	/* an index entry whose op record is gone: corrupt, not silently dropped */
	struct raw r;
	raw_begin(&r, dir, "ops");
	op_key(k, 4);
	MDB_val key = {8, k};
	cr_assert_eq(mdb_del(r.txn, r.dbi, &key, NULL), 0);
	raw_end(&r);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_running_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 1);
	cr_expect_eq(ops[0].id, 4);
	cr_expect_eq(ops[0].state, JOURNAL_OP_CORRUPT);
	cr_expect_str_eq(ops[0].corrupt, "op 4 is corrupt: it is in the index of running ops but has no record");
	cr_expect_null(ops[0].kind);
	journal_ops_free(ops, n);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(running, a_format_1_journal_gets_its_index_once)
{
	/* ops 1..8: 2, 4 and 8 running (8 is aborted below), the rest done */
	char *dir = journal_with_ops(8);
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_finish(j, 8, JOURNAL_OP_ABORTED, &e), 0, "%s", e.msg);
	journal_close(j);
	cr_expect_eq(stored_format(dir), 3, "a new journal is of format 3");
	/* back to what format 1 code wrote: no index, format 1; then damage to done ops 3 and 5 */
	raw_drop(dir, "running");
	set_format(dir, 1);
	unsigned char k[8], sk[12];
	op_key(k, 3);
	raw_put(dir, "ops", k, 8, "PJR\x01Ohand-edited junk", 21);
	step_key(sk, 5, 2);
	raw_put(dir, "steps", sk, 12, "not a step", 10);

	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_expect_eq(stored_format(dir), 3, "bumped");
	/* every op journal_op_list lists as running or corrupt, and only those */
	expect_running(j, "2:running 3:corrupt 4:running 5:corrupt");
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 8);
	size_t want = 0;
	for (size_t i = 0; i < n; i++)
		want += ops[i].state == JOURNAL_OP_RUNNING || ops[i].state == JOURNAL_OP_CORRUPT;
	cr_expect_eq(want, 4);
	journal_ops_free(ops, n);
	/*
	 * once: the bump is in the same transaction, so the next open finds
	 * format 3 and keeps the index as it is; a rebuild would now also find
	 * done op 1, damaged after the bump
	 */
	cr_assert_eq(journal_op_finish(j, 2, JOURNAL_OP_DONE, &e), 0, "%s", e.msg);
	journal_close(j);
	op_key(k, 1);
	raw_put(dir, "ops", k, 8, "PJR\x01Ojunk", 9);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	expect_running(j, "3:corrupt 4:running 5:corrupt");
	journal_close(j);
	/* a format 3 journal whose index was dropped by hand has it rebuilt */
	raw_drop(dir, "running");
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	expect_running(j, "1:corrupt 3:corrupt 4:running 5:corrupt");
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(running, a_journal_of_a_newer_format_is_refused_and_left_alone)
{
	char *dir = journal_with_ops(2);
	set_format(dir, 4);
	struct journal *j = NULL;
	struct journal_err e = {0};
	int r = journal_open(&j, dir, &e);
	cr_expect_eq(r, -EBADMSG, "%s", e.msg);
	cr_expect_null(j);
	char want[512];
	snprintf(want, sizeof(want), "journal: %s has format 4; this punix reads format 3 (a newer punix wrote it: ",
		 dir);
	cr_expect(strncmp(e.msg, want, strlen(want)) == 0, "%s", e.msg);
	cr_expect_eq(stored_format(dir), 4, "never changed");
	/* nor is one of format 0 taken for one to bump */
	set_format(dir, 0);
	cr_expect_eq(journal_open(&j, dir, &e), -EBADMSG);
	snprintf(want, sizeof(want), "journal: %s has format 0; this punix reads format 3", dir);
	cr_expect_str_eq(e.msg, want);
	cr_expect_eq(stored_format(dir), 0);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

/* ---- batches ------------------------------------------------------------------ */

static char *fresh_dir(void)
{
	char *dir = strdup("/tmp/punix-journal-XXXXXX");
	cr_assert_not_null(dir);
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

/* One op as an engine writes it: begin, plan, steps INTENT then DONE, finish in state (0: left running). */
static uint64_t whole_op(struct journal *j, int nsteps, enum journal_op_state state)
{
	struct journal_err e;
	struct journal_op op = sample_op();
	cr_assert_eq(journal_op_begin(j, &op, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_plan(j, op.id, "{\"generation\": 4}", &e), 0, "%s", e.msg);
	for (int s = 0; s < nsteps; s++) {
		cr_assert_eq(journal_step_write(j, op.id, (uint32_t)s, "step", JOURNAL_STEP_INTENT, NULL, &e), 0, "%s",
			     e.msg);
		cr_assert_eq(journal_step_write(j, op.id, (uint32_t)s, "step", JOURNAL_STEP_DONE, "ok", &e), 0, "%s",
			     e.msg);
	}
	if (state)
		cr_assert_eq(journal_op_finish(j, op.id, state, &e), 0, "%s", e.msg);
	return op.id;
}

Test(batch, writes_in_a_batch_are_one_commit_and_seen_by_reads_in_it)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	/* outside a batch, each write is a commit of its own: begin, plan, 2 x 3 steps, finish */
	uint64_t c0 = journal_commit_count(j);
	whole_op(j, 3, JOURNAL_OP_DONE);
	cr_expect_eq(journal_commit_count(j) - c0, 9);

	c0 = journal_commit_count(j);
	cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
	uint64_t a = whole_op(j, 3, JOURNAL_OP_DONE);
	uint64_t b = whole_op(j, 6, 0);
	cr_expect_eq(journal_commit_count(j), c0, "nothing is committed before the batch is");
	/* reads see the batch's writes */
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	cr_assert_eq(journal_op_get(j, b, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_RUNNING);
	cr_expect_str_eq(op.plan, "{\"generation\": 4}");
	cr_expect_eq(n, 6);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	expect_running(j, "3:running");
	struct journal_op *ops;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(n, 3);
	journal_ops_free(ops, n);
	size_t fin;
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, 2);
	cr_assert_eq(journal_op_set_aside(j, b, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_batch_commit(j, &e), 0, "%s", e.msg);
	cr_expect_eq(journal_commit_count(j) - c0, 1, "2 ops, 28 writes: one commit");
	journal_close(j);

	/* durable: another handle sees it all */
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_get(j, a, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_DONE);
	cr_expect_eq(n, 3);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	cr_assert_eq(journal_op_get(j, b, &op, NULL, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_SET_ASIDE);
	journal_op_free(&op);
	expect_running(j, "");
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(batch, an_aborted_or_unclosed_batch_records_nothing)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	uint64_t first = whole_op(j, 1, JOURNAL_OP_DONE);
	uint64_t c0 = journal_commit_count(j);
	cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
	whole_op(j, 2, 0);
	cr_assert_eq(journal_op_finish(j, first, JOURNAL_OP_FAILED, &e), 0, "%s", e.msg);
	journal_batch_abort(j);
	cr_expect_eq(journal_commit_count(j), c0);
	expect_running(j, "");
	struct journal_op op;
	cr_assert_eq(journal_op_get(j, first, &op, NULL, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_DONE, "the finish in the aborted batch is gone");
	journal_op_free(&op);
	cr_expect_eq(journal_op_get(j, 2, &op, NULL, NULL, &e), -ENOENT);
	/* the id is not burnt either: it was never recorded */
	cr_expect_eq(whole_op(j, 0, 0), 2);
	/* closed with a batch open: aborted */
	cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
	whole_op(j, 1, JOURNAL_OP_DONE);
	journal_close(j);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_expect_eq(journal_op_get(j, 3, &op, NULL, NULL, &e), -ENOENT);
	expect_running(j, "2:running");
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(batch, a_failed_write_leaves_the_batch_as_it_was_and_misuse_is_refused)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_expect_eq(journal_batch_commit(j, &e), -EINVAL);
	cr_expect(strstr(e.msg, "no batch is open") != NULL, "%s", e.msg);
	journal_batch_abort(j); /* nothing open: nothing happens */
	cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
	cr_expect_eq(journal_batch_begin(j, &e), -EBUSY);
	cr_expect(strstr(e.msg, "a batch is already open") != NULL, "%s", e.msg);
	uint64_t a = whole_op(j, 2, JOURNAL_OP_DONE);
	/* refused writes inside the batch: the batch goes on, with everything before them */
	cr_expect_eq(journal_op_finish(j, 99, JOURNAL_OP_DONE, &e), -ENOENT);
	cr_expect_eq(journal_op_set_aside(j, a, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "journal: op 1 is done: a finished op cannot be set aside");
	size_t removed = 7;
	cr_expect_eq(journal_prune(j, 0, &removed, &e), -EBUSY);
	cr_expect_eq(removed, 0);
	cr_expect(strstr(e.msg, "a batch is open; commit or abort it before pruning") != NULL, "%s", e.msg);
	cr_expect_eq(journal_compact(j, &e), -EBUSY);
	uint64_t b = whole_op(j, 1, 0);
	cr_assert_eq(journal_batch_commit(j, &e), 0, "%s", e.msg);
	expect_running(j, "2:running");
	struct journal_op op;
	cr_assert_eq(journal_op_get(j, a, &op, NULL, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(op.state, JOURNAL_OP_DONE);
	journal_op_free(&op);
	cr_expect_eq(b, 2);
	/* and a new batch can begin */
	cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_batch_commit(j, &e), 0, "%s", e.msg);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

/* ---- retention ---------------------------------------------------------------- */

/* n ops, committed 500 to a batch; each with nsteps steps, finished in state. */
static void fill(struct journal *j, int n, int nsteps, enum journal_op_state state)
{
	struct journal_err e;
	for (int i = 0; i < n; i += 500) {
		cr_assert_eq(journal_batch_begin(j, &e), 0, "%s", e.msg);
		for (int k = i; k < n && k < i + 500; k++)
			whole_op(j, nsteps, state);
		cr_assert_eq(journal_batch_commit(j, &e), 0, "%s", e.msg);
	}
}

/* The ids and states of every op, as "1:done 2:running". */
static char *all_ids(struct journal *j)
{
	struct journal_op *ops;
	size_t n;
	struct journal_err e;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	char *s = calloc(1, 16 + n * 32);
	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++)
		sprintf(s + strlen(s), "%s%llu:%s", i ? " " : "", (unsigned long long)ops[i].id,
			journal_op_state_name(ops[i].state));
	journal_ops_free(ops, n);
	return s;
}

static void expect_all(struct journal *j, const char *want)
{
	char *got = all_ids(j);
	cr_expect_str_eq(got, want);
	free(got);
}

static size_t entries(const char *dir, const char *db)
{
	struct raw r;
	raw_begin(&r, dir, db);
	MDB_stat st;
	cr_assert_eq(mdb_stat(r.txn, r.dbi, &st), 0);
	raw_end(&r);
	return st.ms_entries;
}

Test(prune, keeps_the_newest_finished_and_every_running_or_corrupt_op)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	/* 1 done, 2 running, 3 aborted, 4 failed, 5 set aside, 6 done (a step damaged below), 7 and 8 done, 9 running */
	whole_op(j, 2, JOURNAL_OP_DONE);
	whole_op(j, 2, 0);
	whole_op(j, 2, JOURNAL_OP_ABORTED);
	whole_op(j, 2, JOURNAL_OP_FAILED);
	uint64_t aside = whole_op(j, 2, 0);
	cr_assert_eq(journal_op_set_aside(j, aside, &e), 0, "%s", e.msg);
	whole_op(j, 2, JOURNAL_OP_DONE);
	whole_op(j, 2, JOURNAL_OP_DONE);
	whole_op(j, 2, JOURNAL_OP_DONE);
	whole_op(j, 2, 0);
	journal_close(j);
	unsigned char sk[12];
	step_key(sk, 6, 1);
	raw_put(dir, "steps", sk, 12, "not a step", 10);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);

	size_t removed = 99, fin;
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, 7, "1, 3, 4, 5, 7, 8, and 6 whose damage came after it finished");
	/* as many kept as there are whole finished ops (6 is not one): nothing to do */
	cr_assert_eq(journal_prune(j, 6, &removed, &e), 0, "%s", e.msg);
	cr_expect_eq(removed, 0);
	/* keep 2: 7 and 8 stay; 1, 3, 4, 5 go; 6 (corrupt) and the running 2 and 9 stay */
	cr_assert_eq(journal_prune(j, 2, &removed, &e), 0, "%s", e.msg);
	cr_expect_eq(removed, 4);
	expect_all(j, "2:running 6:corrupt 7:done 8:done 9:running");
	expect_running(j, "2:running 9:running");
	cr_expect_eq(entries(dir, "steps"), 10, "the steps of the ops removed went with them");
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, 3);
	/* the kept ones are whole */
	struct journal_op op;
	struct journal_step *steps;
	size_t n;
	cr_assert_eq(journal_op_get(j, 7, &op, &steps, &n, &e), 0, "%s", e.msg);
	cr_expect_eq(n, 2);
	journal_steps_free(steps, n);
	journal_op_free(&op);
	/* keep 0: every finished op that is whole */
	cr_assert_eq(journal_prune(j, 0, &removed, &e), 0, "%s", e.msg);
	cr_expect_eq(removed, 2);
	expect_all(j, "2:running 6:corrupt 9:running");
	/* ids go on from where they were */
	cr_expect_eq(whole_op(j, 0, JOURNAL_OP_DONE), 10);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(prune, the_bytes_kept_of_a_pruned_set_aside_op_go_with_it_and_no_others)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	fill(j, 10, 1, 0);
	journal_close(j);
	/* op 1: its record damaged twice (corrupt/1 and corrupt/1~2) and a step; op 10: its record */
	unsigned char k[8], sk[12];
	op_key(k, 1);
	raw_put(dir, "ops", k, 8, "PJR\x01Ojunk", 9);
	step_key(sk, 1, 0);
	raw_put(dir, "steps", sk, 12, "not a step", 10);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 1, &e), 0, "%s", e.msg);
	journal_close(j);
	raw_put(dir, "ops", k, 8, "PJR\x01Oagain", 10);
	op_key(k, 10);
	raw_put(dir, "ops", k, 8, "PJR\x01Oten", 8);
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 1, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_op_set_aside(j, 10, &e), 0, "%s", e.msg);
	journal_close(j);
	size_t len;
	unsigned char *kept;
	const char *keys[] = {"corrupt/1", "corrupt/1~2", "corrupt/1/step/0", "corrupt/10"};
	for (int i = 0; i < 4; i++) {
		kept = raw_get(dir, "meta", keys[i], strlen(keys[i]), &len);
		cr_expect_not_null(kept, "%s", keys[i]);
		free(kept);
	}
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	size_t removed;
	cr_assert_eq(journal_prune(j, 1, &removed, &e), 0, "%s", e.msg);
	cr_expect_eq(removed, 1, "op 1; op 10 is the one kept");
	journal_close(j);
	for (int i = 0; i < 3; i++)
		cr_expect_null(raw_get(dir, "meta", keys[i], strlen(keys[i]), &len), "%s", keys[i]);
	kept = raw_get(dir, "meta", "corrupt/10", 10, &len);
	cr_expect_not_null(kept, "op 10's bytes are op 10's");
	free(kept);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(prune, works_in_bounded_transactions, .timeout = 300)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	fill(j, 1200, 1, JOURNAL_OP_DONE);
	whole_op(j, 1, 0);
	fill(j, 1300, 1, JOURNAL_OP_DONE);
	uint64_t c0 = journal_commit_count(j);
	size_t removed;
	cr_assert_eq(journal_prune(j, 100, &removed, &e), 0, "%s", e.msg);
	cr_expect_eq(removed, 2400);
	/* 2,401 ops looked at (2,400 and the running one), at most 1,000 a transaction */
	cr_expect_eq(journal_commit_count(j) - c0, 3);
	size_t fin;
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, 100);
	expect_running(j, "1201:running");
	struct journal_op *ops;
	size_t n;
	cr_assert_eq(journal_op_list(j, &ops, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, 101);
	cr_expect_eq(ops[0].id, 1201);
	cr_expect_eq(ops[1].id, 2402);
	cr_expect_eq(ops[100].id, 2501);
	journal_ops_free(ops, n);
	journal_close(j);
	cr_expect_eq(entries(dir, "steps"), 101);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}

Test(prune, compact_prunes_only_past_its_threshold, .timeout = 300)
{
	char *dir = fresh_dir();
	struct journal *j;
	struct journal_err e;
	cr_assert_eq(journal_open(&j, dir, &e), 0, "%s", e.msg);
	fill(j, JOURNAL_COMPACT_AT, 0, JOURNAL_OP_DONE);
	whole_op(j, 0, 0);
	size_t fin;
	uint64_t c0 = journal_commit_count(j);
	cr_assert_eq(journal_compact(j, &e), 0, "%s", e.msg);
	cr_expect_eq(journal_commit_count(j), c0, "at the threshold, nothing to do");
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, JOURNAL_COMPACT_AT);
	whole_op(j, 0, JOURNAL_OP_DONE);
	cr_assert_eq(journal_compact(j, &e), 0, "%s", e.msg);
	cr_assert_eq(journal_finished_count(j, &fin, &e), 0, "%s", e.msg);
	cr_expect_eq(fin, JOURNAL_KEEP_FINISHED);
	char want[32];
	snprintf(want, sizeof(want), "%d:running", JOURNAL_COMPACT_AT + 1);
	expect_running(j, want);
	journal_close(j);
	ops_remove_tree(ops_local(), dir);
	free(dir);
}
