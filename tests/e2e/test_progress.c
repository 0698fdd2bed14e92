/*
 * test_progress.c - progress on standard error (docs/cli.md, "Progress"):
 * with PUNIX_PROGRESS=1 `punix build`, `service deploy`, `store gc` and
 * `recover` say what they are doing and "N of M" on standard error, as
 * plain lines (standard error is a pipe here: no escapes), and standard
 * output is what it is without it. Without PUNIX_PROGRESS nothing extra
 * appears, since standard error is not a terminal.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/support/proc.h"

static struct tdir t;
static char *home, *prog, *t1, *t2;

/* Three packages in a chain, each build long enough (150 ms) that every count is shown; and one no stack uses. */
#define PKG(M, N, DEPS)                                                                                        \
	"module " M " { pname = \"" N "\" version = \"1\" recipe = \"std.shell\"" DEPS "\n"                      \
	"  recipeArgs = { command = \"sleep 0.15; mkdir -p $OUTPUT/bin\" } }\n"

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	t1 = tdir_at(&t, "t1");
	t2 = tdir_at(&t, "t2");
	mkdir(t1, 0755);
	mkdir(t2, 0755);
	tdir_write(&t, "p/prog.pcl",
		   PKG("Lib", "lib", "") PKG("Tool", "tool", " deps = [\"Lib\"]") PKG("App", "app", " deps = [\"Tool\"]")
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	tdir_write(&t, "extra/extra.pcl",
		   "module Extra { pname = \"extra\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/share\" } }\n");
	prog = tdir_at(&t, "p/prog.pcl");
	unsetenv("PUNIX_PROGRESS");
	unsetenv("PUNIX_CRASH_AT");
}

static void teardown(void)
{
	free(home);
	free(prog);
	free(t1);
	free(t2);
	tdir_free(&t);
	unsetenv("PUNIX_PROGRESS");
}

/* punix ARGS... (NULL-terminated) with PUNIX_HOME=home; PUNIX_PROGRESS=1 when forced. */
static struct proc_result run(bool forced, const char *arg, ...)
{
	const char *a[40];
	size_t n = 0;
	va_list ap;
	va_start(ap, arg);
	for (const char *s = arg; s && n < 39; s = va_arg(ap, const char *))
		a[n++] = s;
	va_end(ap);
	a[n] = NULL;
	if (forced)
		setenv("PUNIX_PROGRESS", "1", 1);
	struct proc_result r = punix_run(home, a);
	unsetenv("PUNIX_PROGRESS");
	return r;
}

/* Plain lines: no escape, no carriage return, every line ended. */
static void expect_plain(const struct proc_result *r)
{
	cr_expect(strchr(r->err, '\033') == NULL && strchr(r->err, '\r') == NULL, "escapes on a pipe: <%s>", r->err);
	size_t len = strlen(r->err);
	cr_expect(len == 0 || r->err[len - 1] == '\n', "an unfinished line: <%s>", r->err);
}

static void expect_line(const struct proc_result *r, const char *line)
{
	char *want = malloc(strlen(line) + 3);
	sprintf(want, "\n%s\n", line);
	/* at the start of standard error, or after a newline */
	bool at_start = !strncmp(r->err, want + 1, strlen(want + 1));
	cr_expect(at_start || strstr(r->err, want), "no line <%s> in <%s>", line, r->err);
	free(want);
}

Test(progress, build_counts_packages_on_stderr_only, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result forced = run(true, "build", prog, NULL);
	cr_assert_eq(forced.status, 0, "%s", forced.err);
	expect_plain(&forced);
	expect_line(&forced, "build: 0 of 3 packages done");
	expect_line(&forced, "build: 1 of 3 packages done");
	expect_line(&forced, "build: 2 of 3 packages done");
	expect_line(&forced, "build: 3 of 3 packages done");
	cr_expect(strstr(forced.err, "1 of 3") < strstr(forced.err, "3 of 3"), "%s", forced.err);
	/* standard output is the same as without progress (a second run: every path is valid, "ok" as well) */
	struct proc_result plain = run(false, "build", prog, NULL);
	cr_assert_eq(plain.status, 0, "%s", plain.err);
	cr_expect_str_eq(plain.out, forced.out);
	cr_expect_str_eq(plain.err, "", "progress on a pipe without PUNIX_PROGRESS: <%s>", plain.err);
	cr_expect(strstr(forced.out, "of 3") == NULL, "progress on standard output: %s", forced.out);
	/* a dry run builds nothing: no progress */
	struct proc_result dry = run(true, "build", "--dry-run", prog, NULL);
	cr_expect_eq(dry.status, 0);
	cr_expect_str_eq(dry.err, "");
	proc_result_free(&forced);
	proc_result_free(&plain);
	proc_result_free(&dry);
}

Test(progress, build_json_keeps_stdout_one_object, .init = setup, .fini = teardown, .timeout = 120)
{
	/* built once, so both runs below find every path valid ("cached": true) */
	struct proc_result first = run(false, "build", prog, NULL);
	cr_assert_eq(first.status, 0, "%s", first.err);
	proc_result_free(&first);
	/* --json: no progress unless forced; forced, it stays on standard error */
	struct proc_result plain = run(false, "build", "--json", prog, NULL);
	cr_assert_eq(plain.status, 0, "%s", plain.err);
	cr_expect_str_eq(plain.err, "");
	struct proc_result forced = run(true, "build", "--json", prog, NULL);
	cr_assert_eq(forced.status, 0, "%s", forced.err);
	cr_expect_str_eq(forced.out, plain.out);
	expect_line(&forced, "build: 3 of 3 packages done");
	proc_result_free(&plain);
	proc_result_free(&forced);
}

Test(progress, deploy_shows_its_steps, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result forced = run(true, "service", "deploy", "Web", "--file", prog, "--transport-root", t1, NULL);
	cr_assert_eq(forced.status, 0, "%s", forced.err);
	expect_plain(&forced);
	const char *steps[] = {"plan", "build", "stage", "verify", "flip", "materialise"};
	const char *at = forced.err;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "deploy Web: %s\n", steps[i]);
		const char *p = strstr(at, line);
		cr_expect_not_null(p, "no <%s> after the steps before it in <%s>", line, forced.err);
		if (p)
			at = p;
	}
	expect_line(&forced, "deploy Web: build: 3 of 3 packages done");
	expect_line(&forced, "deploy Web: stage: 3 of 3 paths pushed");
	/* the same deploy into another root, without progress: the same standard output, nothing on standard error */
	struct proc_result plain = run(false, "service", "deploy", "Web", "--file", prog, "--transport-root", t2, NULL);
	cr_assert_eq(plain.status, 0, "%s", plain.err);
	cr_expect_str_eq(plain.out, forced.out);
	cr_expect_str_eq(plain.err, "");
	proc_result_free(&forced);
	proc_result_free(&plain);
}

Test(progress, gc_counts_paths_deleted, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = run(false, "service", "deploy", "Web", "--file", prog, "--transport-root", t1, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	/* a path nothing pins: the collection's one dead path */
	char *extra = tdir_at(&t, "extra/extra.pcl");
	r = run(false, "build", extra, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	free(extra);
	/* this machine's own deployments root: empty (the stack went under t1), but there */
	char *dep = tdir_at(&t, "home/deployments");
	mkdir(dep, 0755);
	free(dep);
	r = run(true, "store", "gc", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_plain(&r);
	expect_line(&r, "store gc: plan");
	expect_line(&r, "store gc: sweep");
	expect_line(&r, "store gc: sweep: 1 of 1 paths deleted");
	cr_expect(strstr(r.out, "removed: 1 paths") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "paths deleted") == NULL, "%s", r.out);
	proc_result_free(&r);
}

Test(progress, recover_counts_ops, .init = setup, .fini = teardown, .timeout = 120)
{
	/* a deploy killed after staging stays running in the journal */
	setenv("PUNIX_CRASH_AT", "deploy:stage:after", 1);
	struct proc_result r = run(false, "service", "deploy", "Web", "--file", prog, "--transport-root", t1, NULL);
	unsetenv("PUNIX_CRASH_AT");
	cr_assert_eq(r.status, 128 + 9, "the deploy was killed: %s", r.err);
	proc_result_free(&r);
	r = run(true, "recover", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_plain(&r);
	expect_line(&r, "recover: 0 of 1 ops recovered");
	expect_line(&r, "recover: 1 of 1 ops recovered");
	cr_expect(strstr(r.out, "undone before the flip") != NULL, "%s", r.out);
	cr_expect(strstr(r.out, "ops recovered") == NULL, "%s", r.out);
	proc_result_free(&r);
	/* nothing left: nothing counted, nothing on standard error */
	r = run(true, "recover", NULL);
	cr_expect_eq(r.status, 0);
	cr_expect_str_eq(r.out, "nothing to recover\n");
	cr_expect_str_eq(r.err, "");
	proc_result_free(&r);
}
