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
