/*
 * test_journal_damage.c - the real punix binary on a damaged journal, as a
 * user would meet it: a journal written by real deploys, then truncated,
 * emptied, or with one op record's bytes flipped in data.mdb. A truncated
 * or emptied journal is an error naming the file (never a signal, never a
 * silently fresh journal); a corrupt op is listed among the others as
 * "corrupt" and can be set aside, with --yes, after punix has shown it.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_util.h"

static struct tmpdir t;
static char *home, *target, *prog, *jdir, *data;

static void setup(void)
{
	tmpdir_make(&t);
	home = tmpdir_at(&t, "home");
	target = tmpdir_at(&t, "target");
	jdir = tmpdir_at(&t, "home/journal");
	data = tmpdir_at(&t, "home/journal/data.mdb");
	tmpdir_mkdir(&t, "target");
	tmpdir_write(&t, "p/prog.pcl",
	             "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
	             "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
	             "module Web { backend = \"systemd\"\n"
	             "  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
	             "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	prog = tmpdir_at(&t, "p/prog.pcl");
	setenv("PUNIX_HOME", home, 1);
	unsetenv("PUNIX_STORE_DIR");
	unsetenv("PUNIX_STATE_DIR");
}

static void teardown(void)
{
	free(home);
	free(target);
	free(prog);
	free(jdir);
	free(data);
	tmpdir_remove(&t);
}

static const struct run_opts slow = {NULL, RUN_SAME_UID, 120};

/* n real deploys of stack Web: a journal with n done ops, each with its steps. */
static void deploy(int n)
{
	for (int i = 0; i < n; i++) {
		struct run_result r =
		    run_punix_in(&slow, "service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL);
		cr_assert_eq(r.status, 0, "deploy %d: %s", i + 1, r.err);
		run_result_free(&r);
	}
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

/* Not killed by a signal, no sanitizer report: an exit of punix's own. */
static void expect_clean_exit(const struct run_result *r, const char *what)
{
	cr_expect(!run_crashed(r), "%s: crashed (status %d): %s", what, r->status, r->err);
	cr_expect(!r->timed_out, "%s: hung", what);
}

Test(journal_damage, a_truncated_journal_is_an_error_naming_the_file_never_a_signal, .init = setup, .fini = teardown,
     .timeout = 300)
{
	deploy(3);
	size_t full;
	unsigned char *bytes = slurp(data, &full);
	long page = sysconf(_SC_PAGESIZE);
	cr_assert_gt(full, (size_t)page * 4, "%zu bytes", full);
	size_t sizes[] = {
	    1, 100, (size_t)page, (size_t)page * 2, (size_t)page * 2 + 1, full / 2, full - (size_t)page, full - 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		write_file(data, bytes, sizes[i]);
		char what[64];
		snprintf(what, sizeof(what), "journal show, truncated to %zu of %zu", sizes[i], full);
		struct run_result r = run_punix_args("journal", "show", NULL);
		expect_clean_exit(&r, what);
		cr_expect_neq(r.status, 0, "%s", what);
		cr_expect(strstr(r.err, data) != NULL, "%s: the message names %s: %s", what, data, r.err);
		cr_expect(strstr(r.err, " is truncated: ") != NULL, "%s: %s", what, r.err);
		cr_expect_str_eq(r.out, "", "%s", what);
		run_result_free(&r);
	}
	/* every command that opens the journal says the same */
	write_file(data, bytes, full / 2);
	struct run_result r =
	    run_punix_in(&slow, "service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL);
	expect_clean_exit(&r, "deploy on a truncated journal");
	cr_expect_neq(r.status, 0);
	cr_expect(strstr(r.err, " is truncated: ") != NULL, "%s", r.err);
	run_result_free(&r);
	r = run_punix_args("recover", NULL);
	expect_clean_exit(&r, "recover on a truncated journal");
	cr_expect_neq(r.status, 0);
	cr_expect(strstr(r.err, data) && strstr(r.err, " is truncated: "), "%s", r.err);
	run_result_free(&r);
	struct stat st;
	cr_assert_eq(stat(data, &st), 0);
	cr_expect_eq((size_t)st.st_size, full / 2, "punix left the damaged file as it was");
	/* whole again, all is well */
	write_file(data, bytes, full);
	r = run_punix_args("journal", "show", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(count_substr(r.out, "\tdone\tdeploy\tWeb\t"), 3, "%s", r.out);
	run_result_free(&r);
	free(bytes);
}

Test(journal_damage, an_emptied_journal_is_an_error_not_a_fresh_one, .init = setup, .fini = teardown, .timeout = 300)
{
	deploy(1);
	write_file(data, "", 0);
	struct run_result r = run_punix_args("journal", "show", NULL);
	expect_clean_exit(&r, "journal show");
	cr_expect_neq(r.status, 0);
	cr_expect_str_eq(r.out, "");
	cr_expect(strstr(r.err, data) != NULL, "%s", r.err);
	cr_expect(strstr(r.err, "data.mdb is empty: the journal was lost or emptied; ") != NULL, "%s", r.err);
	run_result_free(&r);
	r = run_punix_in(&slow, "service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL);
	expect_clean_exit(&r, "deploy");
	cr_expect_neq(r.status, 0, "no op runs without its journal");
	cr_expect(strstr(r.err, " is empty: ") != NULL, "%s", r.err);
	run_result_free(&r);
	struct stat st;
	cr_assert_eq(stat(data, &st), 0);
	cr_expect_eq(st.st_size, 0, "no new journal was started over it");

	/* a journal that was never there is made, with its directories */
	char *fresh = tmpdir_at(&t, "elsewhere/deep/journal");
	r = run_punix_args("journal", "show", "--state-dir", fresh, NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "the journal is empty\n");
	run_result_free(&r);
	cr_expect_eq(stat(fresh, &st), 0);
	free(fresh);
}

/*
 * Flips one byte inside op id's record in data.mdb, found by its "PJR"
 * magic and its id field. LMDB copies pages on write, so older copies of
 * the record may lie in free pages: every copy is flipped. Returns how many.
 */
static int corrupt_op_in_file(uint64_t id)
{
	size_t len;
	unsigned char *b = slurp(data, &len);
	unsigned char idf[13] = {1, 8, 0, 0, 0};
	for (int i = 0; i < 8; i++)
		idf[5 + i] = (unsigned char)(id >> (8 * i));
	int n = 0;
	for (size_t i = 0; i + 40 < len; i++) {
		if (memcmp(b + i, "PJR\x01O", 5) != 0 || memcmp(b + i + 9, idf, sizeof(idf)) != 0)
			continue;
		b[i + 28] ^= 0x20; /* the kind: "deploy" -> "dEploy" */
		n++;
	}
	write_file(data, b, len);
	free(b);
	return n;
}

Test(journal_damage, a_corrupt_op_is_listed_and_can_be_set_aside, .init = setup, .fini = teardown, .timeout = 300)
{
	deploy(3);
	cr_assert_gt(corrupt_op_in_file(2), 0, "op 2's record is in data.mdb");

	struct run_result r = run_punix_args("journal", "show", NULL);
	expect_clean_exit(&r, "journal show");
	cr_expect_eq(r.status, 1, "a corrupt op is an error, once everything is listed");
	cr_expect(strncmp(r.out, "1\tdone\tdeploy\tWeb\t", 18) == 0, "%s", r.out);
	cr_expect(strstr(r.out, "\n2\tcorrupt\tdEploy\tWeb\t") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "\top 2 is corrupt: record checksum mismatch (corrupted or edited)\n") != NULL, "%s",
	          r.out);
	cr_expect(strstr(r.out, "\n3\tdone\tdeploy\tWeb\t") != NULL, "%s", r.out);
	cr_expect(strncmp(r.err, "error: journal: op 2 is corrupt: ", 33) == 0, "%s", r.err);
	cr_expect(strstr(r.err, "punix journal set-aside 2") != NULL, "%s", r.err);
	run_result_free(&r);

	r = run_punix_args("journal", "show", "--json", NULL);
	expect_clean_exit(&r, "journal show --json");
	cr_expect_eq(r.status, 1);
	json_error_t je;
	json_t *o = json_loads(r.out, 0, &je);
	cr_assert_not_null(o, "%s: %s", je.text, r.out);
	json_t *ops = json_object_get(o, "ops");
	cr_assert_eq(json_array_size(ops), 3, "%s", r.out);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(ops, 0), "state")), "done");
	json_t *bad = json_array_get(ops, 1);
	cr_expect_eq(json_integer_value(json_object_get(bad, "id")), 2);
	cr_expect_str_eq(json_string_value(json_object_get(bad, "state")), "corrupt");
	const char *why = json_string_value(json_object_get(bad, "corrupt"));
	cr_expect(why && strncmp(why, "op 2 is corrupt: ", 17) == 0, "%s", r.out);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(ops, 2), "state")), "done");
	json_decref(o);
	run_result_free(&r);

	/* what it was doing, and a refusal without --yes */
	r = run_punix_args("journal", "set-aside", "2", NULL);
	expect_clean_exit(&r, "set-aside without --yes");
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.err, "error: add --yes to set op 2 aside\n");
	cr_expect(strncmp(r.out, "op 2: dEploy Web, corrupt, started ", 35) == 0, "%s", r.out);
	cr_expect(strstr(r.out, "\nscope: ") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "\n  step 0 ") != NULL, "its steps: %s", r.out);
	cr_expect(strstr(r.out, "\ncorrupt: op 2 is corrupt: record checksum mismatch") != NULL, "%s", r.out);
	run_result_free(&r);
	r = run_punix_args("journal", "show", NULL);
	cr_expect(strstr(r.out, "\n2\tcorrupt\t") != NULL, "nothing was changed: %s", r.out);
	run_result_free(&r);

	r = run_punix_args("journal", "set-aside", "2", "--yes", NULL);
	expect_clean_exit(&r, "set-aside --yes");
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\nset aside: op 2") != NULL, "%s", r.out);
	run_result_free(&r);

	r = run_punix_args("journal", "show", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\n2\tset-aside\tdEploy\tWeb\t") != NULL, "%s", r.out);
	cr_expect_eq(count_substr(r.out, "\tdone\tdeploy\tWeb\t"), 2, "%s", r.out);
	cr_expect_str_eq(r.err, "");
	run_result_free(&r);
	r = run_punix_args("journal", "show", "2", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "set aside while corrupt: op 2 is corrupt: ") != NULL, "%s", r.out);
	run_result_free(&r);

	/* finished ops are not set aside; an op already set aside is not set aside again */
	r = run_punix_args("journal", "set-aside", "1", "--yes", NULL);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "error: journal: op 1 is done: a finished op cannot be set aside\n");
	cr_expect_str_eq(r.out, "");
	run_result_free(&r);
	r = run_punix_args("journal", "set-aside", "2", "--yes", NULL);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "error: journal: op 2 is already set aside\n");
	run_result_free(&r);
	r = run_punix_args("journal", "set-aside", "--yes", NULL);
	cr_expect_eq(r.status, 2, "set-aside needs an op");
	run_result_free(&r);

	/* and the journal goes on */
	deploy(1);
	r = run_punix_args("journal", "show", NULL);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\n4\tdone\tdeploy\tWeb\t") != NULL, "%s", r.out);
	run_result_free(&r);
}
