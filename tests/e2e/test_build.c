/*
 * test_build.c - `punix build`, `punix store ...` and `punix recover` driven
 * as a user would: caching, what changes a path and what does not, failures,
 * hostile source paths, tampering; a build writes its final path, as an
 * unprivileged user when punix is root.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home;

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
}

static void teardown(void)
{
	free(home);
	tdir_free(&t);
}

static struct proc_result run2(const char *a, const char *b)
{
	const char *args[] = {a, b, NULL};
	return punix_run(home, args);
}

static struct proc_result run3(const char *a, const char *b, const char *c)
{
	const char *args[] = {a, b, c, NULL};
	return punix_run(home, args);
}

/* The store path printed for module on an "ok" or "dry-run" line, malloc'd. */
static char *path_of(const char *out, const char *module)
{
	char key[128];
	snprintf(key, sizeof(key), "\t%s\t", module);
	const char *p = strstr(out, key);
	cr_assert_not_null(p, "no line for %s in:\n%s", module, out);
	p += strlen(key);
	return strndup(p, strcspn(p, "\t\n"));
}

static char *pkg(const char *module, const char *pname, const char *command, const char *extra)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb,
		    "module %s {\n  pname = \"%s\"\n  version = \"1\"\n  recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"%s\" }\n  %s\n}\n",
		    module, pname, command, extra ? extra : "");
	return sbuf_detach(&sb, NULL);
}

static void write_prog(const char *rel, const char *a, const char *b, const char *c)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_puts(&sb, a);
	if (b)
		sbuf_puts(&sb, b);
	if (c)
		sbuf_puts(&sb, c);
	tdir_write(&t, rel, sbuf_str(&sb));
	sbuf_free(&sb);
}

static const char hello[] =
	"module Hello {\n"
	"  pname = \"hello\"\n  version = \"1.0\"\n  recipe = \"std.shell\"\n"
	"  recipeArgs = {\n"
	"    command = \"mkdir -p $OUTPUT/bin && echo '#!/bin/sh\\nwhile :; do echo tick; sleep 5; done' > "
	"$OUTPUT/bin/hi && chmod +x $OUTPUT/bin/hi\"\n"
	"  }\n"
	"  source = { type = \"local\" path = \"./src\" }\n"
	"}\n";

Test(build, the_tutorial_package_builds_and_its_binary_runs, .init = setup, .fini = teardown)
{
	tdir_write(&t, "prog/hello.pcl", hello);
	tdir_write(&t, "prog/src/README", "source\n");
	char *prog = tdir_at(&t, "prog");
	struct proc_result r = run2("build", prog);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out, "Hello");
	cr_expect(strstr(r.out, "1 packages: 1 ok, 0 failed\n") != NULL, "%s", r.out);
	cr_expect(strstr(path, "/home/store/") && strstr(path, "-hello-1.0"), "%s", path);

	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "timeout 1 %s/bin/hi", path);
	FILE *f = popen(cmd.sb_buf, "r");
	char line[64] = "";
	cr_assert_not_null(fgets(line, sizeof(line), f));
	pclose(f);
	cr_expect_str_eq(line, "tick\n");
	sbuf_free(&cmd);
	free(path);
	free(prog);
	proc_result_free(&r);
}

Test(build, a_rebuild_is_a_cache_hit_with_the_same_path, .init = setup, .fini = teardown)
{
	char *count = tdir_at(&t, "count");
	tdir_write(&t, "count", "");
	cr_assert_eq(chmod(count, 0666), 0, "the build user appends to it");
	struct sbuf c = SBUF_INIT;
	sbuf_printf(&c, "echo run >> %s && mkdir -p $OUTPUT", count);
	char *p = pkg("A", "a", c.sb_buf, NULL);
	write_prog("prog.pcl", p, NULL, NULL);
	char *prog = tdir_at(&t, "prog.pcl");
	struct proc_result r1 = run2("build", prog), r2 = run2("build", prog);
	cr_assert_eq(r1.status, 0, "%s", r1.err);
	cr_assert_eq(r2.status, 0, "%s", r2.err);
	cr_expect_str_eq(r1.out, r2.out);
	char *n = tdir_read(&t, "count");
	cr_expect_str_eq(n, "run\n", "built once");
	free(n);
	proc_result_free(&r1);
	proc_result_free(&r2);
	free(prog);
	free(p);
	free(count);
	sbuf_free(&c);
}

Test(build, permuting_the_program_keeps_every_path, .init = setup, .fini = teardown)
{
	/* The same three packages, split and ordered two ways, fields shuffled. */
	tdir_write(&t, "one/a.pcl",
		   "module Lib { pname = \"lib\" version = \"2\" recipe = \"std.shell\" "
		   "recipeArgs = { command = \"mkdir -p $OUTPUT/lib\" } }\n"
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\" deps = [\"Lib\", \"Tool\"] "
		   "recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n");
	tdir_write(&t, "one/b.pcl",
		   "module Tool { pname = \"tool\" version = \"3\" recipe = \"std.shell\" "
		   "recipeArgs = { command = \"mkdir -p $OUTPUT\" } }\n");
	tdir_write(&t, "two/z.pcl",
		   "module App { deps = [Tool.out, \"Lib\"] recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } "
		   "recipe = \"std.shell\" version = \"1\" pname = \"app\" }\n"
		   "module Tool { recipeArgs = { command = \"mkdir -p $OUTPUT\" } recipe = \"std.shell\" "
		   "version = \"3\" pname = \"tool\" }\n");
	tdir_write(&t, "two/y.pcl",
		   "module Lib { recipeArgs = { command = \"mkdir -p $OUTPUT/lib\" } version = \"2\" "
		   "pname = \"lib\" recipe = \"std.shell\" }\n");
	char *one = tdir_at(&t, "one"), *two = tdir_at(&t, "two");
	struct proc_result a = run3("build", "--dry-run", one), b = run3("build", "--dry-run", two);
	cr_assert_eq(a.status, 0, "%s", a.err);
	cr_assert_eq(b.status, 0, "%s", b.err);
	cr_expect_str_eq(a.out, b.out);
	cr_expect(strncmp(a.out, "dry-run\tLib\t", 12) == 0 || strncmp(a.out, "dry-run\tTool\t", 13) == 0, "%s",
		  a.out);
	proc_result_free(&a);
	proc_result_free(&b);
	free(one);
	free(two);
}

Test(build, a_change_ripples_to_dependents_and_nowhere_else, .init = setup, .fini = teardown)
{
	char *base = pkg("Base", "base", "mkdir -p $OUTPUT", NULL);
	char *base2 = pkg("Base", "base", "mkdir -p $OUTPUT && echo v2 > $OUTPUT/v", NULL);
	char *user = pkg("User", "user", "mkdir -p $OUTPUT", "deps = [\"Base\"]");
	char *other = pkg("Other", "other", "mkdir -p $OUTPUT", NULL);
	write_prog("p.pcl", base, user, other);
	char *prog = tdir_at(&t, "p.pcl");
	struct proc_result r1 = run2("build", prog);
	cr_assert_eq(r1.status, 0, "%s", r1.err);
	write_prog("p.pcl", base2, user, other);
	struct proc_result r2 = run2("build", prog);
	cr_assert_eq(r2.status, 0, "%s", r2.err);
	const char *mods[] = {"Base", "User", "Other"};
	bool changed[3];
	for (int i = 0; i < 3; i++) {
		char *x = path_of(r1.out, mods[i]), *y = path_of(r2.out, mods[i]);
		changed[i] = strcmp(x, y) != 0;
		free(x);
		free(y);
	}
	cr_expect(changed[0], "the edited package gets a new path");
	cr_expect(changed[1], "its dependent too");
	cr_expect(!changed[2], "an unrelated package keeps its path");
	proc_result_free(&r1);
	proc_result_free(&r2);
	free(prog);
	free(base);
	free(base2);
	free(user);
	free(other);
}

Test(build, a_failing_build_is_reported_and_leaves_no_valid_path, .init = setup, .fini = teardown)
{
	char *bad = pkg("Broken", "broken", "mkdir -p $OUTPUT && echo something went wrong && exit 2", NULL);
	char *dep = pkg("NeedsBroken", "needs", "mkdir -p $OUTPUT", "deps = [\"Broken\"]");
	char *fine = pkg("Fine", "fine", "mkdir -p $OUTPUT", NULL);
	write_prog("p.pcl", bad, dep, fine);
	char *prog = tdir_at(&t, "p.pcl");
	struct proc_result r = run2("build", prog);
	cr_expect_eq(r.status, 3);
	cr_expect(strstr(r.out, "\nFAIL\tNeedsBroken\tnot built: dependency Broken failed\n") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "ok\tFine\t") != NULL, "the others still build:\n%s", r.out);
	cr_expect(strstr(r.out, "3 packages: 1 ok, 2 failed\n") != NULL, "%s", r.out);
	const char *fail = strstr(r.out, "FAIL\tBroken\tthe build command exited with status 2\t");
	cr_assert_not_null(fail, "%s", r.out);
	char *log = strndup(fail + strlen("FAIL\tBroken\tthe build command exited with status 2\t"),
			    strcspn(fail + strlen("FAIL\tBroken\tthe build command exited with status 2\t"), "\n"));
	char *text = NULL;
	size_t len;
	cr_assert_eq(ops_local()->read_file(ops_local(), log, 4096, &text, &len), 0, "log %s", log);
	cr_expect_str_eq(text, "something went wrong\n");
	free(text);
	free(log);

	struct proc_result info = run2("store", "info");
	cr_expect(strstr(info.out, "paths: 1\n") != NULL, "only Fine is valid:\n%s", info.out);
	proc_result_free(&info);
	proc_result_free(&r);
	free(prog);
	free(bad);
	free(dep);
	free(fine);
}

static void expect_hostile(const char *source, const char *message_part)
{
	struct sbuf extra = SBUF_INIT;
	sbuf_printf(&extra, "source = { type = \"local\" path = \"%s\" }", source);
	char *p = pkg("Evil", "evil", "mkdir -p $OUTPUT", extra.sb_buf);
	write_prog("tree/sub/p.pcl", p, NULL, NULL);
	char *prog = tdir_at(&t, "tree");
	struct proc_result r = run2("build", prog);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect_str_eq(r.out, "", "nothing is built");
	cr_expect(strstr(r.err, "/tree/sub/p.pcl:6:36: error: [E6] source path") != NULL, "%s", r.err);
	cr_expect(strstr(r.err, message_part) != NULL, "want '%s' in:\n%s", message_part, r.err);
	proc_result_free(&r);
	free(prog);
	free(p);
	sbuf_free(&extra);
}

Test(build, hostile_source_paths_are_located_errors, .init = setup, .fini = teardown)
{
	tdir_write(&t, "outside/file", "x");
	expect_hostile("../../outside", "is outside the program's tree");
	expect_hostile("/etc", "is outside the program's tree");
	char *loop = tdir_at(&t, "tree/sub/loop");
	cr_assert_eq(symlink("loop", loop), 0);
	expect_hostile("loop", "is a symlink loop");
	char *esc = tdir_at(&t, "tree/sub/esc");
	cr_assert_eq(symlink("../../outside", esc), 0);
	expect_hostile("esc", "is outside the program's tree");
	expect_hostile("missing", "does not exist");
	free(loop);
	free(esc);
}

Test(store, verify_catches_a_tampered_file, .init = setup, .fini = teardown)
{
	char *p = pkg("A", "a", "mkdir -p $OUTPUT && echo original > $OUTPUT/data", NULL);
	write_prog("p.pcl", p, NULL, NULL);
	char *prog = tdir_at(&t, "p.pcl");
	struct proc_result r = run2("build", prog);
	cr_assert_eq(r.status, 0);
	char *path = path_of(r.out, "A");
	struct proc_result ok = run2("store", "verify");
	cr_expect_eq(ok.status, 0);
	cr_expect_str_eq(ok.out, "verified 1 paths: 0 corrupted, 0 missing\n");

	struct sbuf data = SBUF_INIT;
	sbuf_printf(&data, "%s/data", path);
	chmod(path, 0755);
	chmod(data.sb_buf, 0644);
	FILE *f = fopen(data.sb_buf, "w");
	fputs("tampered\n", f);
	fclose(f);
	struct proc_result bad = run2("store", "verify");
	cr_expect_eq(bad.status, 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "corrupted: %s\nverified 1 paths: 1 corrupted, 0 missing\n", path);
	cr_expect_str_eq(bad.out, want.sb_buf);

	struct proc_result sp = run3("store", "path", prog);
	cr_expect_eq(sp.status, 2, "store path needs a module");
	const char *args[] = {"store", "path", prog, "A", NULL};
	struct proc_result sp2 = punix_run(home, args);
	cr_expect_eq(sp2.status, 0);
	struct sbuf line = SBUF_INIT;
	sbuf_printf(&line, "%s\n", path);
	cr_expect_str_eq(sp2.out, line.sb_buf, "store path agrees with build");

	sbuf_free(&line);
	sbuf_free(&want);
	sbuf_free(&data);
	proc_result_free(&r);
	proc_result_free(&ok);
	proc_result_free(&bad);
	proc_result_free(&sp);
	proc_result_free(&sp2);
	free(path);
	free(prog);
	free(p);
}

Test(build, only_builds_what_is_named_and_its_dependencies, .init = setup, .fini = teardown)
{
	char *a = pkg("A", "a", "mkdir -p $OUTPUT", NULL);
	char *b = pkg("B", "b", "mkdir -p $OUTPUT", "deps = [\"A\"]");
	char *c = pkg("C", "c", "mkdir -p $OUTPUT", NULL);
	write_prog("p.pcl", a, b, c);
	char *prog = tdir_at(&t, "p.pcl");
	const char *args[] = {"build", "--only", "B", prog, NULL};
	struct proc_result r = punix_run(home, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect(strstr(r.out, "\tA\t") && strstr(r.out, "\tB\t") && !strstr(r.out, "\tC\t"), "%s", r.out);
	cr_expect(strstr(r.out, "2 packages: 2 ok, 0 failed\n") != NULL, "%s", r.out);
	const char *bad[] = {"build", "--only", "Nope", prog, NULL};
	struct proc_result rb = punix_run(home, bad);
	cr_expect_eq(rb.status, 2);
	cr_expect_str_eq(rb.err, "error: --only: no package module named 'Nope'\n");
	proc_result_free(&r);
	proc_result_free(&rb);
	free(prog);
	free(a);
	free(b);
	free(c);
}

Test(build, a_package_knows_its_final_path_and_is_built_by_an_unprivileged_user, .init = setup, .fini = teardown)
{
	/* the printf's \\n reach the shell as \n: PCL unescapes one level */
	char *p = pkg("Who", "who",
		      "mkdir -p $OUTPUT/bin; printf '#!/bin/sh\\\\necho %s\\\\n' \\\"$OUTPUT\\\" > $OUTPUT/bin/whoami-path; "
		      "chmod +x $OUTPUT/bin/whoami-path; id -u > $OUTPUT/uid",
		      NULL);
	write_prog("p.pcl", p, NULL, NULL);
	char *prog = tdir_at(&t, "p.pcl");
	struct proc_result r = run2("build", prog);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *path = path_of(r.out, "Who");

	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "%s/bin/whoami-path", path);
	FILE *f = popen(cmd.sb_buf, "r");
	char line[1024] = "";
	cr_assert_not_null(fgets(line, sizeof(line), f));
	pclose(f);
	line[strcspn(line, "\n")] = '\0';
	cr_expect_str_eq(line, path, "the script names the package's own store path");
	struct stat st;
	cr_expect_eq(stat(line, &st), 0);

	sbuf_reset(&cmd);
	sbuf_printf(&cmd, "%s/uid", path);
	char *uid = NULL;
	size_t len;
	cr_assert_eq(ops_local()->read_file(ops_local(), cmd.sb_buf, 64, &uid, &len), 0);
	if (geteuid() == 0)
		cr_expect_str_neq(uid, "0\n", "as root, punix builds as an unprivileged user");
	cr_expect_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_uid, geteuid(), "the output is punix's user's again");
	cr_expect_eq(st.st_mode & 0222, 0, "and read-only");
	free(uid);
	sbuf_free(&cmd);
	free(path);
	free(prog);
	free(p);
	proc_result_free(&r);
}

Test(build, as_root_a_store_the_build_user_cannot_reach_is_a_clear_failure, .init = setup, .fini = teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	char *p = pkg("A", "a", "mkdir -p $OUTPUT", NULL);
	write_prog("p.pcl", p, NULL, NULL);
	char *prog = tdir_at(&t, "p.pcl"), *shut = tdir_at(&t, "shut"), *shut_home = tdir_at(&t, "shut/home");
	cr_assert_eq(mkdir(shut, 0700), 0, "like /root");
	const char *args[] = {"build", prog, NULL};
	struct proc_result r = punix_run(shut_home, args);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "Permission denied (%s, mode 0700, is closed to it: chmod o+x, or a store elsewhere)", shut);
	cr_expect(strstr(r.out, "FAIL\tA\tcannot run /bin/sh as the build user ") && strstr(r.out, want.sb_buf),
		  "%s", r.out);
	sbuf_free(&want);
	proc_result_free(&r);
	free(prog);
	free(shut);
	free(shut_home);
	free(p);
}

/*
 * A file of an output with a name outside it (a hard link to something
 * else) is refused: chown and chmod of it would change that other file. Two
 * names inside the output are fine.
 */
Test(build, an_output_hard_linked_to_a_file_outside_it_is_refused, .init = setup, .fini = teardown)
{
	char *out = pkg("Linker", "linker", "mkdir -p $OUTPUT && echo x > $TMPDIR/f && ln $TMPDIR/f $OUTPUT/f", NULL);
	char *in = pkg("Twins", "twins", "mkdir -p $OUTPUT && echo x > $OUTPUT/a && ln $OUTPUT/a $OUTPUT/b", NULL);
	write_prog("p.pcl", out, in, NULL);
	char *prog = tdir_at(&t, "p.pcl");
	struct proc_result r = run2("build", prog);
	cr_expect_eq(r.status, 3, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "FAIL\tLinker\tcannot install") && strstr(r.out, "hard link"), "%s", r.out);
	cr_expect(strstr(r.out, "ok\tTwins\t") != NULL, "two names inside the output are its own:\n%s", r.out);
	proc_result_free(&r);
	struct proc_result info = run2("store", "info");
	cr_expect(strstr(info.out, "paths: 1\n") != NULL, "only Twins is valid:\n%s", info.out);
	proc_result_free(&info);
	free(prog);
	free(out);
	free(in);
}
