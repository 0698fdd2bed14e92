/*
 * test_check.c - `punix check` driven as a user would, through the built
 * binary: the bundled example and the product documents' programs check
 * clean; the order of files, modules and fields never changes a result; a
 * file reached twice is read once; paths that cannot be checked exit 2
 * with a message naming them; and bad input of every kind (huge, deep,
 * non-UTF-8, thousands of mistakes) gets located errors, all of them in one
 * run, never a crash or a hang. --json says the same thing to programs.
 *
 * Where the output is punix's own, whole lines are compared, byte for byte.
 * Most runs happen inside a scratch directory with relative paths, so the
 * expected lines read exactly as a user would see them.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "run_util.h"

#define FIXTURES PUNIX_SOURCE_DIR "/tests/e2e/fixtures"

static struct tmpdir t;

static void setup(void)
{
	tmpdir_make(&t);
}

static void teardown(void)
{
	tmpdir_remove(&t);
}

/* `punix check ARGS...` run inside the scratch directory. */
#define CHECK_IN_TMP(...) run_punix_in(&(struct run_opts){t.path, RUN_SAME_UID, 0}, "check", __VA_ARGS__, NULL)

/* The clean result: exit 0, "ok" and nothing else. */
static void expect_ok(const struct run_result *r, const char *what)
{
	cr_expect_eq(r->status, 0, "%s: exit %d, stderr:\n%s", what, r->status, r->err);
	cr_expect_str_eq(r->out, "ok\n", "%s", what);
	cr_expect_str_eq(r->err, "", "%s", what);
}

/*
 * got is exactly want. On a difference, the message shows the first line
 * that differs (and both texts when they are short), not thousands of lines.
 */
static void expect_text(const char *got, const char *want, const char *what)
{
	if (strcmp(got, want) == 0)
		return;
	size_t line = 1, i = 0;
	while (got[i] && got[i] == want[i])
		if (got[i++] == '\n')
			line++;
	while (i > 0 && got[i - 1] != '\n')
		i--;
	int glen = (int)strcspn(got + i, "\n"), wlen = (int)strcspn(want + i, "\n");
	bool short_texts = strlen(got) < 3000 && strlen(want) < 3000;
	cr_expect_fail("%s: line %zu differs\n  got:  %.*s\n  want: %.*s%s%s%s%s", what, line, glen, got + i, wlen,
		       want + i, short_texts ? "\n--- got:\n" : "", short_texts ? got : "",
		       short_texts ? "--- wanted:\n" : "", short_texts ? want : "");
}

/* Errors found: exit 1, nothing on stdout, stderr exactly want. */
static void expect_errors(const struct run_result *r, const char *want)
{
	cr_expect_not(run_crashed(r), "punix crashed:\n%.3000s", r->err);
	cr_expect_eq(r->status, 1, "exit %d, stderr:\n%.3000s", r->status, r->err);
	cr_expect_str_eq(r->out, "");
	expect_text(r->err, want, "stderr");
}

/* Exit 2 with exactly one message on stderr, nothing on stdout. */
static void expect_refused(const struct run_result *r, const char *want)
{
	cr_expect_not(r->timed_out, "punix hung and was killed after %.0f s", r->seconds);
	cr_expect_eq(r->status, 2, "exit %d, stderr:\n%s", r->status, r->err);
	cr_expect_str_eq(r->out, "");
	expect_text(r->err, want, "stderr");
}

/* Lines of the form "FILE: error: [E", "FILE:L:C: error: [E", "FILE:L:C: note: " or "hint: ". */
static bool is_diagnostic_line(const char *line, size_t len)
{
	if (len >= 6 && strncmp(line, "hint: ", 6) == 0)
		return true;
	const char *e = memmem(line, len, ": error: [E", 11);
	const char *n = memmem(line, len, ": note: ", 8);
	return (e && e > line) || (n && n > line);
}

/* Every line of text is a diagnostic line; the last one is complete. */
static bool all_diagnostic_lines(const char *text)
{
	if (!*text || text[strlen(text) - 1] != '\n')
		return false;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		if (!is_diagnostic_line(p, (size_t)(nl - p)))
			return false;
		p = nl + 1;
	}
	return true;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		unsigned c = *p;
		size_t n;
		unsigned cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 2, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 4, cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) < n)
			return false;
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n;
	}
	return true;
}

static json_t *parse_json(const struct run_result *r)
{
	json_error_t je;
	json_t *o = json_loads(r->out, 0, &je);
	cr_assert_not_null(o, "stdout is not JSON (%s):\n%s", je.text, r->out);
	cr_assert(json_is_object(o));
	return o;
}

/* ---- programs that are right check ok ------------------------------------ */

Test(check, the_hello_example_checks_ok_as_a_directory_and_as_a_file)
{
	struct run_result r = run_punix_args("check", PUNIX_SOURCE_DIR "/examples/hello", NULL);
	expect_ok(&r, "examples/hello");
	run_result_free(&r);
	r = run_punix_args("check", PUNIX_SOURCE_DIR "/examples/hello/hello.pcl", NULL);
	expect_ok(&r, "examples/hello/hello.pcl");
	run_result_free(&r);
}

Test(check, the_broken_example_gets_all_four_mistakes_located)
{
	struct run_result r =
		run_punix_in(&(struct run_opts){PUNIX_SOURCE_DIR, RUN_SAME_UID, 0}, "check", "examples/broken", NULL);
	expect_errors(&r, "examples/broken/broken.pcl:6:13: error: [E1] type mismatch in 'version': expected Str, got Int\n"
			  "examples/broken/broken.pcl:15:5: error: [E2] unknown field 'pacakge' in 'services[0]' of "
			  "module 'HelloStack'\n"
			  "hint: did you mean 'package'?\n"
			  "examples/broken/broken.pcl:17:23: error: [E6] 'ExecStart' is reserved in "
			  "'services[0].serviceConfig'\n"
			  "hint: ExecStart is computed from 'package', 'binary' and 'args'\n"
			  "examples/broken/broken.pcl:19:27: error: [E6] 'configFiles[0].path' must be an absolute path "
			  "without '.', '..' or empty components, got \"etc/hello.conf\"\n"
			  "hint: config files are written at this path on the target\n");
	run_result_free(&r);
}

/*
 * The product documents' programs, copied into fixtures/ and completed
 * where the page shows only a fragment: each checks ok, and every module
 * in it was read.
 */
static void expect_fixture_ok(const char *name, int modules)
{
	char path[512];
	snprintf(path, sizeof(path), FIXTURES "/%s", name);
	struct run_result r = run_punix_args("check", path, NULL);
	expect_ok(&r, name);
	run_result_free(&r);

	r = run_punix_args("check", "--json", path, NULL);
	cr_expect_eq(r.status, 0, "%s", name);
	json_t *o = parse_json(&r);
	cr_expect(json_is_true(json_object_get(o, "ok")), "%s", name);
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 1, "%s", name);
	cr_expect_eq(json_integer_value(json_object_get(o, "modules")), modules, "%s", name);
	cr_expect_eq(json_integer_value(json_object_get(o, "error_count")), 0, "%s", name);
	cr_expect_eq(json_array_size(json_object_get(o, "errors")), 0, "%s", name);
	json_decref(o);
	run_result_free(&r);
}

Test(check, the_first_deploy_tutorial_program_checks_ok)
{
	expect_fixture_ok("seed001_tutorial.pcl", 2); /* Hello, HelloStack */
}

Test(check, the_tutorial_secrets_pointer_checks_ok)
{
	expect_fixture_ok("seed001_secrets.pcl", 2); /* Db, DbStack */
}

Test(check, the_service_config_example_checks_ok)
{
	expect_fixture_ok("seed003_service_config.pcl", 2); /* Appview, AppviewStack */
}

Test(check, the_system_users_and_groups_example_checks_ok)
{
	expect_fixture_ok("seed003_users.pcl", 2); /* Git, MyStack */
}

Test(check, the_store_gc_timer_and_oneshot_example_checks_ok)
{
	expect_fixture_ok("seed003_timer.pcl", 2); /* Punix, GcStack */
}

Test(check, the_module_form_services_example_checks_ok)
{
	expect_fixture_ok("seed003_modules.pcl", 5); /* ApiPkg, WorkerPkg, Api, Worker, MyStack */
}

Test(check, an_empty_file_is_an_empty_program, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "empty.pcl", "");
	tmpdir_write(&t, "comments.pcl", "# nothing here yet\n\n   # still nothing\n");
	struct run_result r = CHECK_IN_TMP("empty.pcl", "comments.pcl");
	expect_ok(&r, "empty files");
	run_result_free(&r);
}

/* ---- order never matters ---------------------------------------------------- */

static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
static const char *const names[3] = {"a.pcl", "b.pcl", "c.pcl"};

/* One program over three files, with references across them. */
static const char *const program[3] = {
	"module Settings { port = \"8080\" greeting = \"hello\" }\n"
	"module Hello {\n"
	"  pname = \"hello\"\n"
	"  version = \"1.0\"\n"
	"  recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"}\n",

	"module Worker {\n"
	"  pname = \"worker\"\n"
	"  version = \"0.3\"\n"
	"  recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"}\n"
	"module Api { package = \"Hello\" binary = \"hi\" environment = { PORT = Settings.port } }\n",

	"module Site {\n"
	"  backend = \"systemd\"\n"
	"  storeModules = [\"Hello\", \"Worker\"]\n"
	"  services = [\"Api\"]\n"
	"  configFiles = [{ path = \"/etc/site.conf\" content = Settings.greeting }]\n"
	"}\n",
};

/* The same program with the modules in each file, and the fields in each record, in another order. */
static const char *const program_reordered[3] = {
	"module Hello {\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"  recipe = \"std.shell\"\n"
	"  version = \"1.0\"\n"
	"  pname = \"hello\"\n"
	"}\n"
	"module Settings { greeting = \"hello\" port = \"8080\" }\n",

	"module Api { environment = { PORT = Settings.port } binary = \"hi\" package = \"Hello\" }\n"
	"module Worker {\n"
	"  recipe = \"std.shell\"\n"
	"  pname = \"worker\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"  version = \"0.3\"\n"
	"}\n",

	"module Site {\n"
	"  configFiles = [{ content = Settings.greeting path = \"/etc/site.conf\" }]\n"
	"  services = [\"Api\"]\n"
	"  storeModules = [\"Hello\", \"Worker\"]\n"
	"  backend = \"systemd\"\n"
	"}\n",
};

/* One mistake or more in each file; one module declared in two files. */
static const char *const program_bad[3] = {
	"# packages\n"
	"module Web {\n"
	"  pname = \"web\"\n"
	"  version = \"2.1\"\n"
	"  recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"}\n"
	"module Tools {\n"
	"  pname = \"tools\"\n"
	"  version = 3\n"
	"  recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
	"}\n",

	"# the stack\n"
	"module Site {\n"
	"  backend = \"systemd\"\n"
	"  storeModules = [\"Web\", \"Tols\"]\n"
	"  services = [{ name = \"web\" package = \"Web\" binary = \"web\" }]\n"
	"}\n",

	"# settings, and Web again\n"
	"module Settings { port = 8080 }\n"
	"module Web { pname = \"again\" }\n"
	"module Limits { max = 99999999999999999999 }\n",
};

/*
 * Whatever order the files are named in, the first declaration of Web is
 * the one in a.pcl (files are taken in path order), and the errors come
 * out sorted by file and position.
 */
static const char program_bad_errors[] =
	"a.pcl:10:13: error: [E1] type mismatch in 'version': expected Str, got Int\n"
	"b.pcl:4:26: error: [E2] unknown package module \"Tols\"\n"
	"hint: did you mean 'Tools'?\n"
	"c.pcl:3:8: error: [E3] module 'Web' is declared twice\n"
	"a.pcl:2:8: note: first declared here\n"
	"c.pcl:4:23: error: [E0] integer literal out of range (integers are 64-bit signed)\n";

static void write_program(const char *dir, const char *const srcs[3])
{
	for (int i = 0; i < 3; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "%s/%s", dir, names[i]);
		tmpdir_write(&t, rel, srcs[i]);
	}
}

/* Runs check on dir's three files in all six orders; returns the first run's --json output. */
static char *check_all_orders(const char *dir, int want_status, const char *want_out, const char *want_err)
{
	char *cwd = tmpdir_at(&t, dir);
	struct run_opts o = {cwd, RUN_SAME_UID, 0};
	for (int k = 0; k < 6; k++) {
		const char *a = names[orders[k][0]], *b = names[orders[k][1]], *c = names[orders[k][2]];
		struct run_result r = run_punix_in(&o, "check", a, b, c, NULL);
		cr_expect_not(run_crashed(&r), "%s %s %s:\n%s", a, b, c, r.err);
		cr_expect_eq(r.status, want_status, "check %s %s %s: exit %d\n%s", a, b, c, r.status, r.err);
		cr_expect_str_eq(r.out, want_out, "check %s %s %s", a, b, c);
		char what[64];
		snprintf(what, sizeof(what), "stderr of check %s %s %s", a, b, c);
		expect_text(r.err, want_err, what);
		run_result_free(&r);
	}
	char *first = NULL;
	for (int k = 0; k < 6; k++) {
		const char *a = names[orders[k][0]], *b = names[orders[k][1]], *c = names[orders[k][2]];
		struct run_result r = run_punix_in(&o, "check", "--json", a, b, c, NULL);
		cr_expect_eq(r.status, want_status, "check --json %s %s %s", a, b, c);
		if (!first)
			first = strdup(r.out);
		else
			cr_expect_str_eq(r.out, first, "check --json %s %s %s differs from a b c", a, b, c);
		run_result_free(&r);
	}
	free(cwd);
	return first;
}

Test(check, the_order_of_files_on_the_command_line_does_not_matter, .init = setup, .fini = teardown)
{
	write_program("p", program);
	free(check_all_orders("p", 0, "ok\n", ""));
}

Test(check, the_order_of_modules_and_fields_inside_files_does_not_matter, .init = setup, .fini = teardown)
{
	write_program("p", program);
	write_program("q", program_reordered);
	char *p = check_all_orders("p", 0, "ok\n", "");
	char *q = check_all_orders("q", 0, "ok\n", "");
	cr_expect_str_eq(q, p, "--json differs between the program and its reordering");
	json_error_t je;
	json_t *o = json_loads(q, 0, &je);
	cr_assert_not_null(o, "%s", je.text);
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 3);
	cr_expect_eq(json_integer_value(json_object_get(o, "modules")), 5);
	json_decref(o);
	free(p);
	free(q);
}

Test(check, the_order_of_files_does_not_change_the_errors, .init = setup, .fini = teardown)
{
	write_program("p", program_bad);
	free(check_all_orders("p", 1, "", program_bad_errors));
}

Test(check, a_directory_gives_the_same_result_as_its_files, .init = setup, .fini = teardown)
{
	write_program("p", program_bad);
	struct run_result r = run_punix_in(&(struct run_opts){t.path, RUN_SAME_UID, 0}, "check", "p", NULL);
	struct sbuf want = SBUF_INIT;
	/* the same errors, the paths as reached through the directory */
	for (const char *s = program_bad_errors; *s;) {
		const char *nl = strchr(s, '\n');
		if (strncmp(s, "hint: ", 6) != 0)
			sbuf_puts(&want, "p/");
		sbuf_append(&want, s, (size_t)(nl - s + 1));
		s = nl + 1;
	}
	expect_errors(&r, sbuf_str(&want));
	sbuf_free(&want);
	run_result_free(&r);
}

/* ---- which files make the program ------------------------------------------- */

/* Each file declares a module: read twice, it would be "declared twice". */
Test(check, a_file_named_twice_is_read_once, .init = setup, .fini = teardown)
{
	write_program("d", program);
	struct run_opts o = {t.path, RUN_SAME_UID, 0};
	struct run_result r = run_punix_in(&o, "check", "d/a.pcl", "d/a.pcl", "d/b.pcl", "d/c.pcl", NULL);
	expect_ok(&r, "the same path twice");
	run_result_free(&r);

	r = run_punix_in(&o, "check", "d", "d/a.pcl", NULL);
	expect_ok(&r, "a directory and a file in it");
	run_result_free(&r);

	r = run_punix_in(&o, "check", "d/b.pcl", "./d/b.pcl", "d", "d/../d", NULL);
	expect_ok(&r, "one file under several spellings");
	run_result_free(&r);

	r = run_punix_in(&o, "check", "--json", "d", "d/c.pcl", "d", NULL);
	cr_expect_eq(r.status, 0);
	json_t *j = parse_json(&r);
	cr_expect_eq(json_integer_value(json_object_get(j, "files")), 3, "%s", r.out);
	json_decref(j);
	run_result_free(&r);
}

Test(check, a_directory_means_every_pcl_file_under_it_hidden_entries_skipped, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "tree/top.pcl", "module Top { v = Deep.v }\n");
	tmpdir_write(&t, "tree/a/b/c/deep.pcl", "module Deep { v = \"found\" }\n");
	tmpdir_write(&t, "tree/notes.txt", "module Notes { v = @ }\n");
	tmpdir_write(&t, "tree/old.pcl.bak", "module Old { v = @ }\n");
	tmpdir_write(&t, "tree/.hidden.pcl", "module Hidden { v = @ }\n");
	tmpdir_write(&t, "tree/.git/x.pcl", "module Git { v = @ }\n");
	tmpdir_write(&t, "tree/a/.cache/y.pcl", "module Cache { v = @ }\n");
	struct run_result r = CHECK_IN_TMP("--json", "tree");
	cr_expect_eq(r.status, 0, "%s", r.out);
	json_t *o = parse_json(&r);
	cr_expect(json_is_true(json_object_get(o, "ok")), "%s", r.out);
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 2, "%s", r.out);
	cr_expect_eq(json_integer_value(json_object_get(o, "modules")), 2, "%s", r.out);
	json_decref(o);
	run_result_free(&r);
}

Test(check, a_symlink_loop_does_not_hang_or_crash, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "d/a.pcl", "module A { x = 1 }\n");
	char *d = tmpdir_at(&t, "d"), *loop = tmpdir_at(&t, "d/loop"), *self = tmpdir_at(&t, "d/self.pcl");
	cr_assert_eq(symlink(d, loop), 0);  /* d/loop -> d */
	cr_assert_eq(symlink(".", self), 0); /* d/self.pcl -> d, a "file" that is a directory */
	struct run_result r = CHECK_IN_TMP("d");
	cr_expect_not(r.timed_out);
	expect_ok(&r, "d with d/loop -> d");
	run_result_free(&r);

	r = CHECK_IN_TMP("d/loop");
	cr_expect_not(r.timed_out);
	expect_ok(&r, "d/loop");
	run_result_free(&r);

	r = CHECK_IN_TMP("--json", "d", "d/loop/loop/loop/a.pcl");
	cr_expect_eq(r.status, 0, "%s", r.err);
	json_t *o = parse_json(&r);
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 1, "one file, however reached: %s", r.out);
	json_decref(o);
	run_result_free(&r);
	free(d);
	free(loop);
	free(self);
}

/* ---- paths that cannot be checked: exit 2 ------------------------------------- */

Test(check, a_missing_path_exits_2_naming_it, .init = setup, .fini = teardown)
{
	struct run_result r = CHECK_IN_TMP("nosuch.pcl");
	expect_refused(&r, "error: nosuch.pcl: No such file or directory\n");
	run_result_free(&r);

	tmpdir_write(&t, "good.pcl", "module A { x = 1 }\n");
	r = CHECK_IN_TMP("good.pcl", "gone/");
	expect_refused(&r, "error: gone/: No such file or directory\n");
	run_result_free(&r);

	char *abs = tmpdir_at(&t, "nosuch");
	r = run_punix_args("check", abs, NULL);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "error: %s: No such file or directory\n", abs);
	expect_refused(&r, sbuf_str(&want));
	sbuf_free(&want);
	run_result_free(&r);
	free(abs);
}

Test(check, a_directory_with_no_pcl_files_exits_2, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "docs/readme.txt", "not PCL\n");
	tmpdir_write(&t, "docs/.hidden.pcl", "module Hidden { x = 1 }\n");
	tmpdir_mkdir(&t, "docs/empty/inside");
	struct run_result r = CHECK_IN_TMP("docs");
	expect_refused(&r, "error: docs: no .pcl files in this directory\n");
	run_result_free(&r);

	tmpdir_mkdir(&t, "bare");
	r = CHECK_IN_TMP("bare");
	expect_refused(&r, "error: bare: no .pcl files in this directory\n");
	run_result_free(&r);
}

Test(check, a_fifo_named_on_the_command_line_exits_2_without_hanging, .init = setup, .fini = teardown)
{
	char *fifo = tmpdir_at(&t, "x.pcl");
	cr_assert_eq(mkfifo(fifo, 0644), 0);
	struct run_result r = CHECK_IN_TMP("x.pcl");
	expect_refused(&r, "error: x.pcl: not a regular file or directory\n");
	run_result_free(&r);
	free(fifo);
}

/* Under a directory, an x.pcl that is not a file is passed over, like a link to a directory. */
Test(check, a_fifo_inside_a_directory_is_not_read, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "d/a.pcl", "module A { x = 1 }\n");
	char *fifo = tmpdir_at(&t, "d/x.pcl");
	cr_assert_eq(mkfifo(fifo, 0644), 0);
	struct run_result r = CHECK_IN_TMP("d");
	cr_expect_not(r.timed_out, "punix opened the FIFO and waited on it");
	expect_ok(&r, "d with a FIFO x.pcl");
	run_result_free(&r);
	free(fifo);
}

/* Root reads anything: the runs are made as nobody when the tests run as root. */
Test(check, an_unreadable_file_or_directory_exits_2_naming_it, .init = setup, .fini = teardown)
{
	struct run_opts nobody = {t.path, RUN_NOBODY, 0};
	tmpdir_write(&t, "secret.pcl", "module A { x = 1 }\n");
	char *secret = tmpdir_at(&t, "secret.pcl");
	cr_assert_eq(chmod(secret, 0), 0);
	struct run_result r = run_punix_in(&nobody, "check", "secret.pcl", NULL);
	expect_refused(&r, "error: secret.pcl: Permission denied\n");
	run_result_free(&r);

	tmpdir_write(&t, "d/a.pcl", "module B { x = 1 }\n");
	tmpdir_write(&t, "d/locked.pcl", "module C { x = 1 }\n");
	char *locked = tmpdir_at(&t, "d/locked.pcl");
	cr_assert_eq(chmod(locked, 0), 0);
	r = run_punix_in(&nobody, "check", "d", NULL);
	expect_refused(&r, "error: d/locked.pcl: Permission denied\n");
	run_result_free(&r);
	cr_assert_eq(chmod(locked, 0644), 0);

	tmpdir_write(&t, "d/sub/b.pcl", "module D { x = 1 }\n");
	char *sub = tmpdir_at(&t, "d/sub");
	cr_assert_eq(chmod(sub, 0), 0);
	r = run_punix_in(&nobody, "check", "d", NULL);
	expect_refused(&r, "error: d/sub: Permission denied\n");
	run_result_free(&r);
	free(secret);
	free(locked);
	free(sub);
}

/* ---- the command line ---------------------------------------------------------- */

Test(check, check_without_paths_is_a_usage_error)
{
	struct run_result r = run_punix_args("check", NULL);
	expect_refused(&r, "usage: punix check [--json] FILE|DIR...\n");
	run_result_free(&r);

	/* with --json the refusal is also the failure object on stdout (tests/e2e/test_json.c) */
	r = run_punix_args("check", "--json", NULL);
	cr_expect_eq(r.status, 2);
	cr_expect(strstr(r.out, "\"exit\": 2") != NULL, "%s", r.out);
	expect_text(r.err, "usage: punix check [--json] FILE|DIR...\n", "stderr");
	run_result_free(&r);

	r = run_punix_args("check", "--frobnicate", PUNIX_SOURCE_DIR "/examples/hello", NULL);
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect(strstr(r.err, "usage: punix check [--json] FILE|DIR...\n") != NULL, "%s", r.err);
	run_result_free(&r);
}

Test(check, punix_without_arguments_prints_usage_and_exits_2)
{
	struct run_result r = run_punix(NULL, (const char *[]){NULL});
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect(strncmp(r.err, "usage: punix COMMAND", 20) == 0, "%s", r.err);
	cr_expect(strstr(r.err, "\n  check ") != NULL, "the usage lists check:\n%s", r.err);
	run_result_free(&r);
}

Test(check, an_unknown_command_exits_2)
{
	struct run_result r = run_punix_args("chek", "x.pcl", NULL);
	expect_refused(&r, "error: unknown command 'chek' (did you mean 'check'?)\n");
	run_result_free(&r);
	r = run_punix_args("help", "chek", NULL);
	expect_refused(&r, "error: unknown command 'chek' (did you mean 'check'?)\n");
	run_result_free(&r);
	r = run_punix_args("frobnicate", NULL);
	expect_refused(&r, "error: unknown command 'frobnicate' (see 'punix --help')\n");
	run_result_free(&r);
}

Test(check, an_unknown_option_names_the_nearest_and_options_go_anywhere, .init = setup, .fini = teardown)
{
	struct run_result r = run_punix_args("check", "--jsn", "x.pcl", NULL);
	expect_refused(&r, "error: punix check: unknown option '--jsn' (did you mean '--json'?)\n"
			   "usage: punix check [--json] FILE|DIR...\n");
	run_result_free(&r);
	r = run_punix_args("check", "--frob=1", "x.pcl", NULL);
	expect_refused(&r, "error: punix check: unknown option '--frob' (see 'punix check --help')\n"
			   "usage: punix check [--json] FILE|DIR...\n");
	run_result_free(&r);
	/* an option after the operands, and '--' before an operand that looks like one */
	tmpdir_write(&t, "a.pcl", "module A { pname = \"a\" version = \"1\" recipe = \"std.shell\" "
				  "recipeArgs = { command = \"true\" } }\n");
	r = CHECK_IN_TMP("a.pcl", "--json");
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_expect(strstr(r.out, "\"ok\": true") != NULL, "%s", r.out);
	run_result_free(&r);
	r = CHECK_IN_TMP("--", "a.pcl");
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	run_result_free(&r);
}

Test(check, help_exits_0_and_describes_check)
{
	struct run_result top = run_punix_args("--help", NULL);
	cr_expect_eq(top.status, 0);
	cr_expect_str_eq(top.err, "");
	cr_expect(strstr(top.out, "\n  check      type-check PCL files and directories\n") != NULL, "%s", top.out);
	run_result_free(&top);

	struct run_result a = run_punix_args("check", "--help", NULL);
	struct run_result b = run_punix_args("help", "check", NULL);
	struct run_result c = run_punix_args("check", "-h", NULL);
	cr_expect_eq(a.status, 0);
	cr_expect_str_eq(a.err, "");
	cr_expect(strncmp(a.out, "usage: punix check [--json] FILE|DIR...\n", 40) == 0, "%s", a.out);
	cr_expect(strstr(a.out, "--json") != NULL);
	cr_expect(strstr(a.out, "Exit status: 0 ok, 1 errors found, 2 ") != NULL, "%s", a.out);
	cr_expect_eq(b.status, 0);
	cr_expect_str_eq(b.out, a.out, "`punix help check` and `punix check --help` say the same");
	cr_expect_eq(c.status, 0);
	cr_expect_str_eq(c.out, a.out, "`punix check -h` and `punix check --help` say the same");
	run_result_free(&a);
	run_result_free(&b);
	run_result_free(&c);
}

/* ---- bad input: located errors, all of them, never a crash ------------------------- */

Test(check, a_100_megabyte_file_is_refused_quickly_and_the_other_files_still_checked, .init = setup,
     .fini = teardown)
{
	char *big = tmpdir_at(&t, "big.pcl");
	int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 100 * 1024 * 1024), 0);
	close(fd);
	tmpdir_write(&t, "small.pcl", "module Small { v = @ }\n");
	struct run_result r = CHECK_IN_TMP("small.pcl", "big.pcl");
	expect_errors(&r, "big.pcl: error: [E0] file is larger than 67108864 bytes, the limit for a PCL source\n"
			  "small.pcl:1:20: error: [E0] unexpected character '@'\n");
	cr_expect_lt(r.seconds, 5.0, "took %.1f s", r.seconds);
	run_result_free(&r);
	free(big);
}

Test(check, lexical_mistakes_are_located_and_all_reported, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "lex.pcl",
		     "module A {\n"
		     "  big = 99999999999999999999\n"
		     "  low = -9223372036854775809\n"
		     "  min = -9223372036854775808\n"
		     "  esc = \"tab\\q\"\n"
		     "  cut = \"no end\n"
		     "  odd = ~~~ 1\n"
		     "}\n"
		     "module B { s = \"open");
	struct run_result r = CHECK_IN_TMP("lex.pcl");
	expect_errors(&r, "lex.pcl:2:9: error: [E0] integer literal out of range (integers are 64-bit signed)\n"
			  "lex.pcl:3:9: error: [E0] integer literal out of range (integers are 64-bit signed)\n"
			  "lex.pcl:5:13: error: [E0] unknown escape '\\q' in string\n"
			  "hint: the escapes are \\n \\t \\r \\\" \\\\; '$' needs none ('$${' is a literal '${')\n"
			  "lex.pcl:6:16: error: [E0] newline inside a string\n"
			  "hint: close the string on the same line, or write \\n for a newline\n"
			  "lex.pcl:7:9: error: [E0] unexpected character '~'\n"
			  "lex.pcl:9:16: error: [E0] unterminated string\n");
	run_result_free(&r);
}

Test(check, non_utf8_bytes_are_located_errors, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "bytes.pcl",
		     "module A {\n"
		     "  s = \"caf\xc3\xa9 \xff!\"\n" /* é is one column; 0xFF is column 13 */
		     "  t = 1 \xfe\xfe\n"
		     "  u = \"\xed\xa0\x80\"\n" /* an encoded surrogate is not UTF-8 */
		     "}\n"
		     "# na\xefve \xc3\n");
	struct run_result r = CHECK_IN_TMP("bytes.pcl");
	expect_errors(&r, "bytes.pcl:2:13: error: [E0] invalid UTF-8 byte 0xFF in string\n"
			  "bytes.pcl:3:9: error: [E0] invalid UTF-8 byte 0xFE\n"
			  "bytes.pcl:4:8: error: [E0] invalid UTF-8 byte 0xED in string\n"
			  "bytes.pcl:6:5: error: [E0] invalid UTF-8 byte 0xEF in comment\n");
	run_result_free(&r);
}

Test(check, deep_nesting_is_one_clear_error, .init = setup, .fini = teardown)
{
	struct sbuf src = SBUF_INIT;
	sbuf_puts(&src, "module A { x = ");
	for (int i = 0; i < 100000; i++)
		sbuf_putc(&src, '[');
	sbuf_puts(&src, " }\n");
	tmpdir_write(&t, "deep.pcl", sbuf_str(&src));
	struct run_result r = CHECK_IN_TMP("deep.pcl");
	/* column 143 is the bracket one level past the limit of 128 (the module's record is the first) */
	expect_errors(&r, "deep.pcl:1:143: error: [E0] values nested more than 128 levels deep\n");
	cr_expect_eq(count_substr(r.err, "error: [E"), 1);
	run_result_free(&r);

	/* closed again, and records rather than lists: still one error, and the next module is still checked */
	sbuf_reset(&src);
	sbuf_puts(&src, "module A { x = ");
	for (int i = 0; i < 100000; i++)
		sbuf_puts(&src, "{ a = ");
	sbuf_puts(&src, "1");
	for (int i = 0; i < 100000; i++)
		sbuf_puts(&src, " }");
	sbuf_puts(&src, " }\nmodule B { y = @ }\n");
	tmpdir_write(&t, "records.pcl", sbuf_str(&src));
	r = CHECK_IN_TMP("records.pcl");
	expect_errors(&r, "records.pcl:1:778: error: [E0] values nested more than 128 levels deep\n"
			  "records.pcl:2:16: error: [E0] unexpected character '@'\n");
	run_result_free(&r);
	sbuf_free(&src);
}

/*
 * Each module nests lists 120 deep, inside the limit, around a reference
 * to the next module's value: 900 modules make one value 108000 levels
 * deep. The bound on depth must hold for values reached through
 * references too: a located error, not a stack overflow.
 */
Test(check, deep_nesting_through_references_is_bounded_too, .init = setup, .fini = teardown)
{
	struct sbuf src = SBUF_INIT;
	for (int i = 0; i < 900; i++) {
		sbuf_printf(&src, "module M%04d { v = ", i);
		for (int k = 0; k < 120; k++)
			sbuf_putc(&src, '[');
		sbuf_printf(&src, "M%04d.v", i + 1);
		for (int k = 0; k < 120; k++)
			sbuf_putc(&src, ']');
		sbuf_puts(&src, " }\n");
	}
	sbuf_puts(&src, "module M0900 { v = 1 }\n");
	tmpdir_write(&t, "chain.pcl", sbuf_str(&src));
	struct run_result r = CHECK_IN_TMP("chain.pcl");
	cr_expect_not(run_crashed(&r), "punix crashed (exit %d):\n%.2000s", r.status, r.err);
	cr_expect_eq(r.status, 1, "exit %d", r.status);
	cr_expect_str_eq(r.out, "");
	cr_expect(all_diagnostic_lines(r.err), "not only located errors:\n%.2000s", r.err);
	cr_expect_geq(count_substr(r.err, "nested"), 1, "no error about nesting:\n%.2000s", r.err);
	run_result_free(&r);
	sbuf_free(&src);
}

Test(check, every_mistake_is_reported_in_one_run, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "five.pcl",
		     "module Banner { text = \"tab\\q\" }\n"
		     "module Limits { max 10 }\n"
		     "module Tools {\n"
		     "  pname = \"tools\"\n"
		     "  version = 3\n"
		     "  recipe = \"std.shell\"\n"
		     "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
		     "}\n"
		     "module Web {\n"
		     "  pname = \"web\"\n"
		     "  version = \"1\"\n"
		     "  recipe = \"std.shell\"\n"
		     "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin\" }\n"
		     "  sorce = { type = \"local\" path = \"./src\" }\n"
		     "}\n"
		     "module Site {\n"
		     "  backend = \"systemd\"\n"
		     "  services = [{ name = \"web\" package = \"Web\" }]\n"
		     "}\n");
	struct run_result r = CHECK_IN_TMP("five.pcl");
	expect_errors(&r, "five.pcl:1:28: error: [E0] unknown escape '\\q' in string\n"
			  "hint: the escapes are \\n \\t \\r \\\" \\\\; '$' needs none ('$${' is a literal '${')\n"
			  "five.pcl:2:21: error: [E0] expected '=' after field name 'max', got an integer\n"
			  "five.pcl:5:13: error: [E1] type mismatch in 'version': expected Str, got Int\n"
			  "five.pcl:14:3: error: [E2] unknown field 'sorce' on module 'Web'\n"
			  "hint: did you mean 'source'?\n"
			  "five.pcl:18:15: error: [E3] missing required field 'binary' in 'services[0]' of module "
			  "'Site'\n");
	cr_expect_eq(count_substr(r.err, "error: [E"), 5);
	run_result_free(&r);
}

/* 3000 modules, each with a stray '@' at column 20 of its own line. */
static void write_many_errors(const char *rel, int n)
{
	struct sbuf src = SBUF_INIT;
	for (int i = 0; i < n; i++)
		sbuf_printf(&src, "module M%04d { v = @ }\n", i);
	tmpdir_write(&t, rel, sbuf_str(&src));
	sbuf_free(&src);
}

Test(check, thousands_of_errors_show_the_first_1000_and_count_the_rest, .init = setup, .fini = teardown)
{
	write_many_errors("many.pcl", 3000);
	struct run_result r = CHECK_IN_TMP("many.pcl");
	struct sbuf want = SBUF_INIT;
	for (int line = 1; line <= 1000; line++)
		sbuf_printf(&want, "many.pcl:%d:20: error: [E0] unexpected character '@'\n", line);
	sbuf_puts(&want, "error: 2000 more errors not shown (the first 1000 are)\n");
	expect_errors(&r, sbuf_str(&want));
	sbuf_free(&want);
	run_result_free(&r);
}

/*
 * "The first 1000 are" shown: the first in the order errors are printed
 * (file, line, column), whichever stage found them. Here 1500 type errors,
 * one per line, in modules written in reverse name order.
 */
Test(check, the_1000_errors_shown_are_the_first_1000, .init = setup, .fini = teardown)
{
	struct sbuf src = SBUF_INIT;
	for (int i = 1499; i >= 0; i--)
		sbuf_printf(&src,
			    "module M%04d { pname = 1 version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"x\" } }\n",
			    i);
	tmpdir_write(&t, "order.pcl", sbuf_str(&src));
	struct run_result r = CHECK_IN_TMP("order.pcl");
	struct sbuf want = SBUF_INIT;
	for (int line = 1; line <= 1000; line++)
		sbuf_printf(&want, "order.pcl:%d:24: error: [E1] type mismatch in 'pname': expected Str, got Int\n",
			    line);
	sbuf_puts(&want, "error: 500 more errors not shown (the first 1000 are)\n");
	cr_expect_eq(r.status, 1);
	cr_expect_eq(count_substr(r.err, "error: [E"), 1000);
	cr_expect(strncmp(r.err, "order.pcl:1:24: ", 16) == 0, "the first error shown is not line 1's:\n%.300s",
		  r.err);
	expect_text(r.err, sbuf_str(&want), "stderr");
	sbuf_free(&want);
	sbuf_free(&src);
	run_result_free(&r);
}

/* The start of a program whose stack Site quotes back the values of two fields. */
static void write_quoting_program(const char *rel, const char *backend, const char *from_file)
{
	struct sbuf src = SBUF_INIT;
	sbuf_printf(&src,
		    "module Web {\n"
		    "  pname = \"web\"\n"
		    "  version = \"1\"\n"
		    "  recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"x\" }\n"
		    "}\n"
		    "module Site {\n"
		    "  backend = \"%s\"\n"
		    "  services = [{ name = \"web\" package = \"Web\" binary = \"web\"\n"
		    "    environment = { KEY = { from_file = \"%s\" } } }]\n"
		    "}\n",
		    backend, from_file);
	tmpdir_write(&t, rel, sbuf_str(&src));
	sbuf_free(&src);
}

/* Every error in --json output has its message. */
static void expect_json_messages(const char *rel, size_t n)
{
	struct run_result r = CHECK_IN_TMP("--json", rel);
	cr_expect_eq(r.status, 1);
	json_t *o = parse_json(&r);
	json_t *errs = json_object_get(o, "errors");
	cr_expect_eq(json_array_size(errs), n, "%s", r.out);
	for (size_t i = 0; i < json_array_size(errs); i++) {
		json_t *e = json_array_get(errs, i);
		cr_expect(json_is_string(json_object_get(e, "message")), "error %zu has no message:\n%s", i, r.out);
	}
	json_decref(o);
	run_result_free(&r);
}

/*
 * An error quoting a value that holds a newline (written "\n") is still
 * one line: "FILE:L:C: error: [E#] ..." is how every error starts.
 */
Test(check, a_message_quoting_a_value_stays_on_one_line, .init = setup, .fini = teardown)
{
	write_quoting_program("newline.pcl", "sys\\ntemd", "relative\\npath");
	struct run_result r = CHECK_IN_TMP("newline.pcl");
	cr_expect_eq(r.status, 1);
	cr_expect_eq(count_substr(r.err, "error: [E"), 2, "%s", r.err);
	cr_expect(all_diagnostic_lines(r.err), "a message broke over lines:\n%s", r.err);
	run_result_free(&r);
	expect_json_messages("newline.pcl", 2);
}

/*
 * A message quoting the first bytes of a long value is valid UTF-8, even
 * when the cut falls inside a character; --json keeps it.
 */
Test(check, a_message_cutting_a_long_value_is_valid_utf8, .init = setup, .fini = teardown)
{
	struct sbuf longval = SBUF_INIT;
	sbuf_puts(&longval, "a");
	for (int i = 0; i < 50; i++)
		sbuf_puts(&longval, "\xc3\xa9"); /* é: byte 80 falls inside one */
	write_quoting_program("cut.pcl", "systemd", sbuf_str(&longval));
	struct run_result r = CHECK_IN_TMP("cut.pcl");
	cr_expect_eq(r.status, 1);
	cr_expect_eq(count_substr(r.err, "error: [E"), 1, "%s", r.err);
	cr_expect(valid_utf8(r.err, r.err_len), "stderr is not valid UTF-8:\n%s", r.err);
	run_result_free(&r);
	expect_json_messages("cut.pcl", 1);
	sbuf_free(&longval);
}

/*
 * A value that reaches a line of a rendered file may not end in '\' (systemd
 * would continue the line onto the next) nor hold a control character other
 * than tab (DEL is the one a string can hold raw): each is a located [E6]
 * naming the field. A '\' inside a value and tabs are fine.
 */
Test(check, a_rendered_value_cannot_end_in_a_backslash_or_hold_a_control_character, .init = setup,
     .fini = teardown)
{
	tmpdir_write(&t, "bs.pcl",
		     "module P { pname = \"p\" version = \"1\" recipe = \"std.shell\" recipeArgs = { command = \"x\" } }\n"
		     "module S {\n"
		     "  backend = \"systemd\"\n"
		     "  systemUsers = [{ name = \"git\" home = \"/var/git\\\\\" }]\n"
		     "  services = [{ name = \"a\" package = \"P\" binary = \"b\"\n"
		     "    args = [\"--root\", \"C:\\\\\"]\n"
		     "    serviceConfig = { User = \"nobody\\\\\" Group = \"no\x7f" "body\" WorkingDirectory = \"/a\\\\b\" }\n"
		     "    environment = { A = \"v\\\\\" B = \"tab\\tok\" }\n"
		     "    timer = { OnCalendar = \"daily\\\\\" }\n"
		     "    tmpfiles = [\"d\\t/run/a\\t0755 - - -\", \"d /run/b 0755 - - - \\\\\"] }]\n"
		     "}\n");
	struct run_result r = CHECK_IN_TMP("bs.pcl");
	const char *hint = "hint: a line ending in '\\' continues on the next one; no rendered value may end in one\n";
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "bs.pcl:4:40: error: [E6] 'systemUsers[0].home' must not end in a backslash, got \"/var/git\\\\\"\n%s"
		    "bs.pcl:6:23: error: [E6] 'services[0].args[1]' must not end in a backslash, got \"C:\\\\\"\n%s"
		    "bs.pcl:7:30: error: [E6] 'services[0].serviceConfig.User' must not end in a backslash, got "
		    "\"nobody\\\\\"\n%s"
		    "bs.pcl:7:49: error: [E6] 'services[0].serviceConfig.Group' must not hold control characters other "
		    "than tab, got \"no\\x7Fbody\"\n"
		    "hint: systemd would not read the line as it is written\n"
		    "bs.pcl:8:25: error: [E6] 'services[0].environment.A' must not end in a backslash, got \"v\\\\\"\n%s"
		    "bs.pcl:9:28: error: [E6] 'services[0].timer.OnCalendar' must not end in a backslash, got "
		    "\"daily\\\\\"\n%s"
		    "bs.pcl:10:42: error: [E6] 'services[0].tmpfiles[1]' must not end in a backslash, got "
		    "\"d /run/b 0755 - - - \\\\\"\n%s",
		    hint, hint, hint, hint, hint, hint);
	expect_errors(&r, sbuf_str(&want));
	sbuf_free(&want);
	run_result_free(&r);
}

/* ---- --json ------------------------------------------------------------------------------ */

Test(check, json_reports_a_clean_program, .init = setup, .fini = teardown)
{
	write_program("p", program);
	struct run_result r = CHECK_IN_TMP("--json", "p");
	cr_expect_eq(r.status, 0);
	cr_expect_str_eq(r.err, "");
	json_t *o = parse_json(&r);
	cr_expect(json_is_true(json_object_get(o, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 3);
	cr_expect_eq(json_integer_value(json_object_get(o, "modules")), 5);
	cr_expect_eq(json_integer_value(json_object_get(o, "error_count")), 0);
	cr_expect(json_is_array(json_object_get(o, "errors")));
	cr_expect_eq(json_array_size(json_object_get(o, "errors")), 0);
	cr_expect_eq(json_object_size(o), 5, "exactly ok, files, modules, error_count, errors:\n%s", r.out);
	json_decref(o);
	run_result_free(&r);
}

static json_t *error_at(json_t *errs, const char *file, int line)
{
	for (size_t i = 0; i < json_array_size(errs); i++) {
		json_t *e = json_array_get(errs, i);
		if (!strcmp(json_string_value(json_object_get(e, "file")) ?: "", file) &&
		    json_integer_value(json_object_get(e, "line")) == line)
			return e;
	}
	cr_assert_fail("no error at %s:%d", file, line);
	return NULL;
}

Test(check, json_reports_every_error_with_its_location_hint_and_note, .init = setup, .fini = teardown)
{
	write_program("p", program_bad);
	struct run_result r =
		run_punix_in(&(struct run_opts){t.path, RUN_SAME_UID, 0}, "check", "--json", "p/c.pcl", "p/a.pcl",
			     "p/b.pcl", NULL);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "", "--json keeps stderr quiet");
	json_t *o = parse_json(&r);
	cr_expect(json_is_false(json_object_get(o, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 3);
	cr_expect_eq(json_integer_value(json_object_get(o, "error_count")), 4);
	json_t *errs = json_object_get(o, "errors");
	cr_assert_eq(json_array_size(errs), 4);

	json_t *e = error_at(errs, "p/a.pcl", 10);
	cr_expect_str_eq(json_string_value(json_object_get(e, "file")), "p/a.pcl");
	cr_expect_eq(json_integer_value(json_object_get(e, "line")), 10);
	cr_expect_eq(json_integer_value(json_object_get(e, "col")), 13);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E1");
	cr_expect_str_eq(json_string_value(json_object_get(e, "message")),
			 "type mismatch in 'version': expected Str, got Int");
	cr_expect_null(json_object_get(e, "hint"));
	cr_expect_null(json_object_get(e, "note"));

	e = error_at(errs, "p/b.pcl", 4);
	cr_expect_eq(json_integer_value(json_object_get(e, "col")), 26);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E2");
	cr_expect_str_eq(json_string_value(json_object_get(e, "message")), "unknown package module \"Tols\"");
	cr_expect_str_eq(json_string_value(json_object_get(e, "hint")), "did you mean 'Tools'?");

	e = error_at(errs, "p/c.pcl", 3);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E3");
	cr_expect_str_eq(json_string_value(json_object_get(e, "message")), "module 'Web' is declared twice");
	json_t *note = json_object_get(e, "note");
	cr_expect_str_eq(json_string_value(json_object_get(note, "file")), "p/a.pcl");
	cr_expect_eq(json_integer_value(json_object_get(note, "line")), 2);
	cr_expect_eq(json_integer_value(json_object_get(note, "col")), 8);
	cr_expect_str_eq(json_string_value(json_object_get(note, "message")), "first declared here");

	e = error_at(errs, "p/c.pcl", 4);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E0");
	json_decref(o);
	run_result_free(&r);
}

Test(check, json_counts_every_error_and_lists_the_first_1000, .init = setup, .fini = teardown)
{
	write_many_errors("many.pcl", 3000);
	struct run_result r = CHECK_IN_TMP("--json", "many.pcl");
	cr_expect_eq(r.status, 1);
	json_t *o = parse_json(&r);
	cr_expect(json_is_false(json_object_get(o, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(o, "error_count")), 3000);
	cr_expect_eq(json_integer_value(json_object_get(o, "modules")), 3000);
	json_t *errs = json_object_get(o, "errors");
	cr_expect_eq(json_array_size(errs), 1000);
	json_t *last = json_array_get(errs, 999);
	cr_expect_eq(json_integer_value(json_object_get(last, "line")), 1000);
	cr_expect_str_eq(json_string_value(json_object_get(last, "message")), "unexpected character '@'");
	json_decref(o);
	run_result_free(&r);
}

Test(check, json_reports_a_file_whose_name_is_not_utf8, .init = setup, .fini = teardown)
{
	tmpdir_write(&t, "caf\xe9.pcl", "module A { v = @ }\n"); /* Latin-1 é */
	struct run_result r = CHECK_IN_TMP("caf\xe9.pcl");
	expect_errors(&r, "caf\xe9.pcl:1:16: error: [E0] unexpected character '@'\n");
	run_result_free(&r);

	r = CHECK_IN_TMP("--json", "caf\xe9.pcl");
	cr_expect_eq(r.status, 1);
	json_t *o = parse_json(&r);
	json_t *e = json_array_get(json_object_get(o, "errors"), 0);
	cr_expect(json_is_string(json_object_get(e, "file")), "the error has no \"file\":\n%s", r.out);
	cr_expect_eq(json_integer_value(json_object_get(e, "line")), 1);
	cr_expect_eq(json_integer_value(json_object_get(e, "col")), 16);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E0");
	json_decref(o);
	run_result_free(&r);
}
