/*
 * test_json.c - the --json contract of docs/cli.md ("JSON"): every command
 * with results prints exactly one JSON object on standard output, success
 * or failure, and nothing else there:
 *
 *   {"ok": true, ...}
 *   {"ok": false, "exit": N, "error": {"code", "message", "file"?, "line"?}}
 *
 * while the "error: ..." line still goes to standard error. One success and
 * failures (a bad program, a stack that does not exist, a bad option, a
 * missing store, an engine error) for each command.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/support/proc.h"

static struct tdir t;
static char *home, *target, *prog, *bad, *fleetf, *nofleet, *failing;

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	target = tdir_at(&t, "target");
	mkdir(target, 0755);
	tdir_write(&t, "p/prog.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" } }\n"
		   "module Web { backend = \"systemd\"\n"
		   "  services = [{ name = \"web\" package = \"App\" binary = \"app\" }]\n"
		   "  configFiles = [{ path = \"/etc/web.conf\" content = \"port = 80\\n\" }] }\n");
	tdir_write(&t, "p/fleet.pcl",
		   "module Fleet { hosts = [ { file = \"prog.pcl\" stack = \"Web\" target = \"local\" } ] }\n");
	tdir_write(&t, "bad/bad.pcl", "module Bad { x = }\n");
	tdir_write(&t, "nofleet/data.pcl", "module Data { x = 1 }\n");
	tdir_write(&t, "fail/fail.pcl",
		   "module Broken { pname = \"broken\" version = \"1\" recipe = \"std.shell\"\n"
		   "  recipeArgs = { command = \"exit 7\" } }\n");
	prog = tdir_at(&t, "p/prog.pcl");
	fleetf = tdir_at(&t, "p/fleet.pcl");
	bad = tdir_at(&t, "bad/bad.pcl");
	nofleet = tdir_at(&t, "nofleet/data.pcl");
	failing = tdir_at(&t, "fail/fail.pcl");
}

static void teardown(void)
{
	free(home);
	free(target);
	free(prog);
	free(fleetf);
	free(bad);
	free(nofleet);
	free(failing);
	tdir_free(&t);
}

/* punix ARGS... (NULL-terminated) with PUNIX_HOME=home. */
static struct proc_result run(const char *arg, ...)
{
	const char *a[40];
	size_t n = 0;
	va_list ap;
	va_start(ap, arg);
	for (const char *s = arg; s && n < 39; s = va_arg(ap, const char *))
		a[n++] = s;
	va_end(ap);
	a[n] = NULL;
	return punix_run(home, a);
}

/* The whole of standard output as one JSON object (json_loads refuses anything after it). */
static json_t *the_object(const struct proc_result *r)
{
	json_error_t je;
	json_t *j = json_loads(r->out, 0, &je);
	cr_assert_not_null(j, "standard output is not one JSON value (%s): <%s>; stderr: %s", je.text, r->out, r->err);
	cr_assert(json_is_object(j), "not an object: %s", r->out);
	return j;
}

/* {"ok": true, ...} and exit 0; the object, for more checks. */
static json_t *expect_ok(struct proc_result *r)
{
	cr_expect_eq(r->status, 0, "exit %d; out: %s; err: %s", r->status, r->out, r->err);
	json_t *j = the_object(r);
	cr_expect(json_is_true(json_object_get(j, "ok")), "%s", r->out);
	cr_expect_null(json_object_get(j, "error"), "%s", r->out);
	return j;
}

/*
 * {"ok": false, "exit": code, "error": {"message" containing msg, "code": ecode}},
 * exit status code, and the error line on standard error. The object.
 */
static json_t *expect_fail(struct proc_result *r, int code, const char *msg, const char *ecode)
{
	cr_expect_eq(r->status, code, "exit %d, not %d; out: %s; err: %s", r->status, code, r->out, r->err);
	json_t *j = the_object(r);
	cr_expect(json_is_false(json_object_get(j, "ok")), "%s", r->out);
	cr_expect_eq(json_integer_value(json_object_get(j, "exit")), code, "%s", r->out);
	json_t *e = json_object_get(j, "error");
	cr_assert(json_is_object(e), "no error object: %s", r->out);
	const char *m = json_string_value(json_object_get(e, "message"));
	cr_assert_not_null(m, "%s", r->out);
	cr_expect(*m, "an empty message: %s", r->out);
	cr_expect(strstr(m, msg) != NULL, "message <%s> lacks <%s>", m, msg);
	/* ecode: the code wanted, "" none (null), NULL either */
	json_t *c = json_object_get(e, "code");
	cr_expect(json_is_null(c) || json_is_string(c), "%s", r->out);
	if (ecode && *ecode)
		cr_expect_str_eq(json_string_value(c) ? json_string_value(c) : "(none)", ecode, "%s", r->out);
	else if (ecode)
		cr_expect(json_is_null(c), "%s", r->out);
	cr_expect(strncmp(m, "[E", 2) != 0, "the code stays out of the message: %s", m);
	return j;
}

/* The error line is still on standard error. */
static void expect_err_line(const struct proc_result *r, const char *msg)
{
	cr_expect(strstr(r->err, msg) != NULL, "stderr lacks <%s>: %s", msg, r->err);
}

#define DONE(r, j)                                                                                                   \
	do {                                                                                                          \
		json_decref(j);                                                                                       \
		proc_result_free(&(r));                                                                               \
	} while (0)

Test(json, check, .init = setup, .fini = teardown, .timeout = 60)
{
	struct proc_result r = run("check", "--json", prog, NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "files")), 1);
	DONE(r, j);

	/* errors in the program: the existing shape, with "exit" and the first error as "error" */
	r = run("check", "--json", bad, NULL);
	j = expect_fail(&r, 1, "", NULL);
	json_t *e = json_object_get(j, "error");
	cr_expect(json_string_value(json_object_get(e, "code")) &&
		  json_string_value(json_object_get(e, "code"))[0] == 'E', "%s", r.out);
	cr_expect(strstr(json_string_value(json_object_get(e, "file")), "bad.pcl") != NULL, "%s", r.out);
	cr_expect_eq(json_integer_value(json_object_get(e, "line")), 1, "%s", r.out);
	cr_expect(json_array_size(json_object_get(j, "errors")) >= 1, "%s", r.out);
	DONE(r, j);

	r = run("check", "--bogus", "--json", prog, NULL);
	j = expect_fail(&r, 2, "unknown option '--bogus'", "");
	expect_err_line(&r, "error: punix check: unknown option '--bogus'");
	DONE(r, j);

	r = run("check", "--json", NULL);
	j = expect_fail(&r, 2, "usage: punix check", NULL);
	expect_err_line(&r, "usage: punix check");
	DONE(r, j);

	char *missing = tdir_at(&t, "nothing-here.pcl");
	r = run("check", "--json", missing, NULL);
	j = expect_fail(&r, 2, "nothing-here.pcl", NULL);
	expect_err_line(&r, "error: ");
	DONE(r, j);
	free(missing);

	/* after "--", --json is an operand: no JSON */
	r = run("check", "--", "--json", NULL);
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.out, "", "%s", r.out);
	proc_result_free(&r);
}

Test(json, build, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = run("build", "--json", prog, NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "built")), 1, "%s", r.out);
	cr_expect_eq(json_integer_value(json_object_get(j, "failed")), 0, "%s", r.out);
	DONE(r, j);

	r = run("build", "--json", bad, NULL);
	j = expect_fail(&r, 1, "", NULL);
	cr_expect_not_null(json_object_get(json_object_get(j, "error"), "file"), "%s", r.out);
	cr_expect(strstr(r.err, "error: [E") != NULL, "%s", r.err);
	DONE(r, j);

	r = run("build", "--json", "--only", "Nope", prog, NULL);
	j = expect_fail(&r, 2, "no package module named 'Nope'", NULL);
	expect_err_line(&r, "error: --only: no package module named 'Nope'");
	DONE(r, j);

	/* a build that fails: the packages, and which failed */
	r = run("build", "--json", failing, NULL);
	j = expect_fail(&r, 3, "Broken", NULL);
	cr_expect_eq(json_integer_value(json_object_get(j, "failed")), 1, "%s", r.out);
	cr_expect_eq(json_array_size(json_object_get(j, "packages")), 1, "%s", r.out);
	DONE(r, j);

	r = run("build", "--json", "--dry-run", NULL);
	j = expect_fail(&r, 2, "usage: punix build", NULL);
	DONE(r, j);
}

Test(json, store, .init = setup, .fini = teardown, .timeout = 120)
{
	/* no store yet: info says 0 paths, verify and gc refuse */
	struct proc_result r = run("store", "info", "--json", NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "paths")), 0, "%s", r.out);
	DONE(r, j);
	r = run("store", "verify", "--json", NULL);
	j = expect_fail(&r, 1, "no store", NULL);
	expect_err_line(&r, "error: there is no store");
	DONE(r, j);
	r = run("store", "gc", "--json", NULL);
	j = expect_fail(&r, 1, "no store", NULL);
	DONE(r, j);

	r = run("build", prog, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	tdir_write(&t, "home/deployments/.keep", ""); /* gc's roots: none, but a place for them */

	r = run("store", "path", "--json", prog, "App", NULL);
	j = expect_ok(&r);
	const char *p = json_string_value(json_object_get(j, "path"));
	cr_expect(p && strstr(p, "-app-1"), "%s", r.out);
	DONE(r, j);
	r = run("store", "path", "--json", prog, "Nope", NULL);
	j = expect_fail(&r, 1, "no module named 'Nope'", "E2");
	expect_err_line(&r, "error: [E2] no module named 'Nope'");
	DONE(r, j);

	r = run("store", "info", "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "paths")), 1, "%s", r.out);
	DONE(r, j);
	r = run("store", "verify", "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "verified")), 1, "%s", r.out);
	DONE(r, j);
	r = run("store", "gc", "--dry-run", "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "dead")), 1, "%s", r.out);
	DONE(r, j);
	r = run("store", "gc", "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "removed")), 1, "%s", r.out);
	DONE(r, j);

	r = run("store", "info", "--jsn", "--json", NULL);
	j = expect_fail(&r, 2, "did you mean '--json'", NULL);
	DONE(r, j);
	r = run("store", "nope", "--json", NULL);
	j = expect_fail(&r, 2, "unknown store command 'nope'", NULL);
	DONE(r, j);
	r = run("store", "info", "--json", "--store-root", "rel/../x", NULL);
	j = expect_fail(&r, 2, "--store-root", NULL);
	DONE(r, j);
}

Test(json, service, .init = setup, .fini = teardown, .timeout = 180)
{
	struct proc_result r = run("service", "deploy", "Web", "--file", prog, "--transport-root", target, "--json", NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "generation")), 1, "%s", r.out);
	DONE(r, j);

	/* an error of the engine's: no older generation */
	r = run("service", "rollback", "Web", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "no previous generation", "E12");
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	cr_expect(m && strstr(r.err, m), "the message is the error line's: %s / %s", m, r.err);
	cr_expect_str_eq(json_string_value(json_object_get(j, "stack")), "Web", "%s", r.out);
	DONE(r, j);

	r = run("service", "set-current", "Web", "9", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "has no generation 9", "E12");
	DONE(r, j);

	r = run("service", "deploy", "Web", "--file", prog, "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	DONE(r, j);
	r = run("service", "set-current", "Web", "1", "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "previous")), 2, "%s", r.out);
	DONE(r, j);
	r = run("service", "rollback", "Web", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "no previous generation", "E12"); /* gen-001 is the oldest */
	DONE(r, j);

	r = run("service", "status", "Web", "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_array_size(json_object_get(j, "generations")), 2, "%s", r.out);
	DONE(r, j);
	r = run("service", "status", "Nope", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "stack 'Nope' has no generations", NULL);
	expect_err_line(&r, "error: stack 'Nope' has no generations");
	DONE(r, j);

	r = run("service", "verify", "Web", "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	DONE(r, j);
	char *conf = tdir_at(&t, "target/etc/web.conf");
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fputs("port = 8080\n", f);
	fclose(f);
	free(conf);
	r = run("service", "verify", "Web", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "1 file(s) drifted", NULL);
	cr_expect_eq(json_array_size(json_object_get(j, "drift")), 1, "%s", r.out);
	DONE(r, j);
	r = run("service", "verify", "Nope", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "", NULL);
	DONE(r, j);

	r = run("service", "prune", "Web", "--keep", "0", "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "deleted")), 1, "%s", r.out);
	DONE(r, j);
	r = run("service", "prune", "Web", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 2, "prune needs --keep N", NULL);
	expect_err_line(&r, "error: prune needs --keep N");
	DONE(r, j);

	/* a program with errors; a stack the program does not have; a bad option before --json */
	r = run("service", "deploy", "Web", "--file", bad, "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "", NULL);
	cr_expect_not_null(json_object_get(json_object_get(j, "error"), "line"), "%s", r.out);
	DONE(r, j);
	r = run("service", "deploy", "Nope", "--file", prog, "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "the program has no stack module 'Nope'", "E2");
	expect_err_line(&r, "error: [E2] the program has no stack module 'Nope'");
	DONE(r, j);
	r = run("service", "status", "Web", "--bogus", "--json", NULL);
	j = expect_fail(&r, 2, "unknown option '--bogus'", NULL);
	DONE(r, j);
	r = run("service", "stauts", "Web", "--json", NULL);
	j = expect_fail(&r, 2, "did you mean 'status'", NULL);
	DONE(r, j);
	r = run("service", "status", "--json", NULL);
	j = expect_fail(&r, 2, "usage: punix service", NULL);
	DONE(r, j);
}

Test(json, deploy_several_stacks_is_one_object, .init = setup, .fini = teardown, .timeout = 120)
{
	tdir_write(&t, "two/two.pcl",
		   "module A { backend = \"systemd\" configFiles = [{ path = \"/etc/a\" content = \"a\" }] }\n"
		   "module B { backend = \"systemd\" configFiles = [{ path = \"/etc/b\" content = \"b\" }] }\n");
	char *two = tdir_at(&t, "two/two.pcl");
	struct proc_result r = run("service", "deploy", "A,B", "--file", two, "--transport-root", target, "--json", NULL);
	json_t *j = expect_ok(&r);
	json_t *s = json_object_get(j, "stacks");
	cr_expect_eq(json_array_size(s), 2, "%s", r.out);
	cr_expect(json_is_true(json_object_get(json_array_get(s, 1), "ok")), "%s", r.out);
	DONE(r, j);
	free(two);
}

Test(json, fleet, .init = setup, .fini = teardown, .timeout = 180)
{
	struct proc_result r = run("fleet", "apply", fleetf, "--transport-root", target, "--json", NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_array_size(json_object_get(j, "hosts")), 1, "%s", r.out);
	DONE(r, j);
	r = run("fleet", "status", fleetf, "--transport-root", target, "--json", NULL);
	j = expect_ok(&r);
	DONE(r, j);
	/* one generation: nothing to roll back to, the host fails */
	r = run("fleet", "rollback", fleetf, "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 1, "host ", NULL);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "hosts"), 0), "status")),
			 "failed", "%s", r.out);
	DONE(r, j);

	r = run("fleet", "status", nofleet, "--json", NULL);
	j = expect_fail(&r, 1, "has no fleet module", "E2");
	DONE(r, j);
	r = run("fleet", "apply", fleetf, "--parallel", "0", "--json", NULL);
	j = expect_fail(&r, 2, "--parallel", NULL);
	DONE(r, j);
	r = run("fleet", "apply", fleetf, "--on", "nothing-here", "--transport-root", target, "--json", NULL);
	j = expect_fail(&r, 2, "selects none", NULL);
	DONE(r, j);
}

Test(json, journal_and_recover, .init = setup, .fini = teardown, .timeout = 120)
{
	struct proc_result r = run("journal", "show", "--json", NULL);
	json_t *j = expect_ok(&r);
	cr_expect_eq(json_array_size(json_object_get(j, "ops")), 0, "%s", r.out);
	DONE(r, j);
	r = run("service", "deploy", "Web", "--file", prog, "--transport-root", target, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	proc_result_free(&r);
	r = run("journal", "show", "1", "--json", NULL);
	j = expect_ok(&r);
	cr_expect_str_eq(json_string_value(json_object_get(j, "state")), "done", "%s", r.out);
	DONE(r, j);
	r = run("journal", "show", "99", "--json", NULL);
	j = expect_fail(&r, 1, "99", NULL);
	DONE(r, j);
	r = run("journal", "show", "x", "--json", NULL);
	j = expect_fail(&r, 2, "'x' is not an op number", NULL);
	DONE(r, j);
	r = run("journal", "prune", "--json", NULL); /* prune has no --json: a usage error, in JSON */
	j = expect_fail(&r, 2, "usage: punix journal", NULL);
	DONE(r, j);

	r = run("recover", "--json", NULL);
	j = expect_ok(&r);
	cr_expect(json_is_array(json_object_get(j, "ops")), "%s", r.out);
	DONE(r, j);
	r = run("recover", "--list", "--json", "extra", NULL);
	j = expect_fail(&r, 2, "usage: punix recover", NULL);
	DONE(r, j);
	char *nostore = tdir_at(&t, "no-store-here");
	r = run("recover", "--json", "--store-root", nostore, NULL);
	j = expect_fail(&r, 1, "no store", NULL);
	DONE(r, j);
	free(nostore);
}

Test(json, unknown_command_and_no_ansi, .init = setup, .fini = teardown, .timeout = 60)
{
	struct proc_result r = run("chek", "--json", NULL);
	json_t *j = expect_fail(&r, 2, "did you mean 'check'", NULL);
	DONE(r, j);
	/* NO_COLOR: nothing punix prints holds an ANSI escape */
	r = run("check", bad, NULL);
	cr_expect(strchr(r.out, '\033') == NULL && strchr(r.err, '\033') == NULL, "%s%s", r.out, r.err);
	proc_result_free(&r);
}
