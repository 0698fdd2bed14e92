/*
 * test_check.c - `punix check` driven as a user would: the bundled examples
 * and the seed documents' programs check clean, results do not depend on
 * the order of files, and bad input of every kind gets a clear error and
 * the right exit status, never a crash or a hang.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;

static void setup(void)
{
	tdir_make(&t);
}

static void teardown(void)
{
	tdir_free(&t);
}

static struct proc_result check1(const char *path)
{
	const char *args[] = {"check", path, NULL};
	return punix_run(NULL, args);
}

static void expect_ok(const char *path)
{
	struct proc_result r = check1(path);
	cr_expect_eq(r.status, 0, "%s: %s", path, r.err);
	cr_expect_str_eq(r.out, "ok\n", "%s", path);
	cr_expect_str_eq(r.err, "", "%s", path);
	proc_result_free(&r);
}

Test(check, bundled_examples_and_seed_programs_are_ok)
{
	expect_ok(PUNIX_SOURCE_DIR "/examples/hello");
	expect_ok(PUNIX_SOURCE_DIR "/examples/hello/hello.pcl");
	const char *fixtures[] = {"seed001_tutorial", "seed001_secrets", "seed003_service_config", "seed003_users",
				  "seed003_timer", "seed003_modules"};
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), PUNIX_SOURCE_DIR "/tests/e2e/fixtures/%s.pcl", fixtures[i]);
		expect_ok(path);
	}
}

Test(check, the_broken_example_reports_every_mistake)
{
	struct proc_result r = check1(PUNIX_SOURCE_DIR "/examples/broken");
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.out, "");
	int n = 0;
	for (const char *p = r.err; (p = strstr(p, ": error: [E")); p++)
		n++;
	cr_expect_eq(n, 4, "%s", r.err);
	proc_result_free(&r);
}

static const char *const split[3] = {
	"module Base { port = 8080 }\nmodule Hello { pname = \"hello\" version = \"1\" recipe = \"std.shell\" "
	"recipeArgs = { command = \"mkdir -p $OUTPUT\" } }\n",
	"module Stack { backend = \"systemd\" services = [{ name = \"web\" package = \"Hello\" binary = \"hi\" "
	"environment = { PORT = \"8080\" } }] }\n",
	"module Fleet { hosts = [{ name = \"h\" target = \"local\" stacks = [\"Stack\"] }] }\n",
};

static const char *const split_bad[3] = {
	"module Base { port = 8080 x = Nope.y }\n",
	"module Stack { backend = \"systemd\" services = [{ name = \"web\" package = \"Hello\" binary = \"hi\" }] }\n",
	"module Base { again = 1 }\nmodule Q { v = @ }\n",
};

static void permutations(const char *const *srcs, int want_status)
{
	const char *names[3] = {"a.pcl", "b.pcl", "c.pcl"};
	char *paths[3];
	for (int i = 0; i < 3; i++) {
		tdir_write(&t, names[i], srcs[i]);
		paths[i] = tdir_at(&t, names[i]);
	}
	static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
	struct proc_result first = {0};
	for (int k = 0; k < 6; k++) {
		const char *args[] = {"check", paths[orders[k][0]], paths[orders[k][1]], paths[orders[k][2]], NULL};
		struct proc_result r = punix_run(NULL, args);
		cr_expect_eq(r.status, want_status, "%s", r.err);
		if (k == 0) {
			first = r;
			continue;
		}
		cr_expect_str_eq(r.out, first.out, "order %d", k);
		cr_expect_str_eq(r.err, first.err, "order %d", k);
		proc_result_free(&r);
	}
	proc_result_free(&first);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
}

Test(check, the_order_of_files_does_not_matter, .init = setup, .fini = teardown)
{
	permutations(split, 0);
}

Test(check, the_order_of_files_does_not_change_errors, .init = setup, .fini = teardown)
{
	permutations(split_bad, 1);
}

Test(check, a_file_reached_twice_is_read_once, .init = setup, .fini = teardown)
{
	tdir_write(&t, "dir/a.pcl", split[0]);
	char *dir = tdir_at(&t, "dir"), *file = tdir_at(&t, "dir/a.pcl");
	const char *args[] = {"check", dir, file, file, NULL};
	struct proc_result r = punix_run(NULL, args);
	cr_expect_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, "ok\n");
	proc_result_free(&r);
	free(dir);
	free(file);
}

Test(check, missing_and_unusable_paths_exit_2, .init = setup, .fini = teardown)
{
	char *missing = tdir_at(&t, "nosuch.pcl");
	struct proc_result r = check1(missing);
	cr_expect_eq(r.status, 2);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "error: %s: No such file or directory\n", missing);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);

	tdir_write(&t, "empty/readme.txt", "not pcl");
	char *empty = tdir_at(&t, "empty");
	r = check1(empty);
	cr_expect_eq(r.status, 2);
	sbuf_reset(&want);
	sbuf_printf(&want, "error: %s: no .pcl files in this directory\n", empty);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);

	char *fifo = tdir_at(&t, "pipe.pcl");
	cr_assert_eq(mkfifo(fifo, 0644), 0);
	r = check1(fifo);
	cr_expect_eq(r.status, 2, "a FIFO is refused, not read");
	cr_expect(strstr(r.err, "not a regular file or directory") != NULL, "%s", r.err);
	proc_result_free(&r);

	const char *none[] = {"check", NULL};
	r = punix_run(NULL, none);
	cr_expect_eq(r.status, 2);
	cr_expect(strncmp(r.err, "usage: punix check", 18) == 0, "%s", r.err);
	proc_result_free(&r);

	sbuf_free(&want);
	free(missing);
	free(empty);
	free(fifo);
}

Test(check, an_unreadable_file_exits_2, .init = setup, .fini = teardown)
{
	tdir_write(&t, "secret.pcl", "module A { x = 1 }\n");
	char *path = tdir_at(&t, "secret.pcl");
	chmod(t.path, 0755);
	chmod(path, 0);
	/* root reads anything: run as nobody when we are root */
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(99);
		/* LeakSanitizer cannot inspect a process that dropped privileges */
		setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
		execl(PUNIX_BIN, PUNIX_BIN, "check", path, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char err[512] = "";
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(err) - 1 && (n = read(fd[0], err + got, sizeof(err) - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	cr_expect_eq(WEXITSTATUS(st), 2);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "error: %s: Permission denied\n", path);
	cr_expect_str_eq(err, want.sb_buf);
	sbuf_free(&want);
	free(path);
}

Test(check, commands_and_help, .init = setup, .fini = teardown)
{
	const char *help[] = {"--help", NULL};
	struct proc_result r = punix_run(NULL, help);
	cr_expect_eq(r.status, 0);
	cr_expect(strstr(r.out, "  check ") != NULL, "%s", r.out);
	proc_result_free(&r);
	const char *chelp[] = {"check", "--help", NULL};
	r = punix_run(NULL, chelp);
	cr_expect_eq(r.status, 0);
	cr_expect(strncmp(r.out, "usage: punix check", 18) == 0, "%s", r.out);
	proc_result_free(&r);
	const char *hcheck[] = {"help", "check", NULL};
	r = punix_run(NULL, hcheck);
	cr_expect_eq(r.status, 0);
	cr_expect(strncmp(r.out, "usage: punix check", 18) == 0);
	proc_result_free(&r);
	const char *unknown[] = {"frobnicate", NULL};
	r = punix_run(NULL, unknown);
	cr_expect_eq(r.status, 2);
	cr_expect_str_eq(r.err, "error: unknown command 'frobnicate' (see 'punix --help')\n");
	proc_result_free(&r);
}

Test(check, a_100_megabyte_file_is_refused_quickly, .init = setup, .fini = teardown)
{
	char *path = tdir_at(&t, "big.pcl");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_eq(ftruncate(fd, 100 * 1024 * 1024), 0);
	close(fd);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	struct proc_result r = check1(path);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_expect_eq(r.status, 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "%s: error: [E0] file is larger than 67108864 bytes, the limit for a PCL source\n", path);
	cr_expect_str_eq(r.err, want.sb_buf);
	cr_expect_lt((double)(b.tv_sec - a.tv_sec), 5.0);
	sbuf_free(&want);
	proc_result_free(&r);
	free(path);
}

Test(check, non_utf8_and_deep_nesting_are_located, .init = setup, .fini = teardown)
{
	tdir_write(&t, "bytes.pcl", "module A {\n  s = \"ok \xff\"\n}\n# \xfe\n");
	char *path = tdir_at(&t, "bytes.pcl");
	struct proc_result r = check1(path);
	cr_expect_eq(r.status, 1);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want,
		    "%s:2:11: error: [E0] invalid UTF-8 byte 0xFF in string\n"
		    "%s:4:3: error: [E0] invalid UTF-8 byte 0xFE in comment\n",
		    path, path);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);

	struct sbuf deep = SBUF_INIT;
	sbuf_puts(&deep, "module A { x = ");
	for (int i = 0; i < 100000; i++)
		sbuf_putc(&deep, '[');
	sbuf_puts(&deep, " }\n");
	tdir_write(&t, "deep.pcl", deep.sb_buf);
	char *dpath = tdir_at(&t, "deep.pcl");
	r = check1(dpath);
	cr_expect_eq(r.status, 1);
	sbuf_reset(&want);
	sbuf_printf(&want, "%s:1:143: error: [E0] values nested more than 128 levels deep\n", dpath);
	cr_expect_str_eq(r.err, want.sb_buf);
	proc_result_free(&r);
	sbuf_free(&deep);
	sbuf_free(&want);
	free(path);
	free(dpath);
}

Test(check, thousands_of_errors_are_capped_and_counted, .init = setup, .fini = teardown)
{
	struct sbuf src = SBUF_INIT;
	for (int i = 0; i < 3000; i++)
		sbuf_printf(&src, "module M%d { v = @ }\n", i);
	tdir_write(&t, "many.pcl", src.sb_buf);
	char *path = tdir_at(&t, "many.pcl");
	struct proc_result r = check1(path);
	cr_expect_eq(r.status, 1);
	int lines = 0;
	for (const char *p = r.err; (p = strchr(p, '\n')); p++)
		lines++;
	cr_expect_eq(lines, 1001);
	cr_expect(strstr(r.err, "\nerror: 2000 more errors not shown (the first 1000 are)\n") != NULL);
	proc_result_free(&r);
	sbuf_free(&src);
	free(path);
}

Test(check, json_output, .init = setup, .fini = teardown)
{
	tdir_write(&t, "v.pcl", "module A {\n  pname = \"a\"\n  version = 1\n  recipe = \"std.shell\"\n"
				"  recipeArgs = { command = \"x\" }\n}\n");
	char *path = tdir_at(&t, "v.pcl");
	const char *args[] = {"check", "--json", path, NULL};
	struct proc_result r = punix_run(NULL, args);
	cr_expect_eq(r.status, 1);
	cr_expect_str_eq(r.err, "");
	json_error_t je;
	json_t *o = json_loads(r.out, 0, &je);
	cr_assert_not_null(o, "%s", je.text);
	cr_expect(json_is_false(json_object_get(o, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(o, "error_count")), 1);
	cr_expect_eq(json_integer_value(json_object_get(o, "files")), 1);
	json_t *e = json_array_get(json_object_get(o, "errors"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "E1");
	cr_expect_str_eq(json_string_value(json_object_get(e, "file")), path);
	cr_expect_eq(json_integer_value(json_object_get(e, "line")), 3);
	cr_expect_eq(json_integer_value(json_object_get(e, "col")), 13);
	cr_expect_str_eq(json_string_value(json_object_get(e, "message")),
			 "type mismatch in 'version': expected Str, got Int");
	json_decref(o);
	proc_result_free(&r);
	free(path);
}

Test(check, a_directory_symlink_loop_is_not_followed, .init = setup, .fini = teardown)
{
	tdir_write(&t, "d/a.pcl", "module A { x = 1 }\n");
	char *loop = tdir_at(&t, "d/loop"), *dir = tdir_at(&t, "d");
	cr_assert_eq(symlink(".", loop), 0);
	expect_ok(dir);
	free(loop);
	free(dir);
}
