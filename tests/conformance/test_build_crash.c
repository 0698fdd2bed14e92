/*
 * test_build_crash.c - the store's guarantees under crashes and contention.
 *
 *   - `punix build` killed with SIGKILL at random moments never leaves a
 *     path that is registered (valid) but incomplete or altered, and after
 *     `punix recover` nothing unregistered is left at all;
 *   - two `punix build` processes building one package at once produce one
 *     correct path, and the build command runs once;
 *   - a build killed while it writes its final store path leaves that path
 *     unregistered, takes its command down with it, and `punix recover` or
 *     the next build removes what it wrote.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "store/store.h"

static char dir[64];
static struct punix_ops *o;

static void setup(void)
{
	strcpy(dir, "/tmp/punix-crash-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* as root, builds run as another user, who must reach the store */
	cr_assert_eq(chmod(dir, 0755), 0);
	o = ops_local();
}

static void teardown(void)
{
	ops_remove_tree(o, dir);
}

static char *at(const char *rel)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, rel);
	return buf[k];
}

static void write_text(const char *rel, const char *text)
{
	cr_assert_eq(ops_write_atomic(o, at(rel), text, strlen(text), 0644), 0);
}

/* Starts punix with PUNIX_HOME in the test directory; output to out_rel. */
static pid_t start(const char *out_rel, const char *const *args)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		setenv("PUNIX_HOME", at("home"), 1);
		int fd = open(at(out_rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		const char *argv[16] = {PUNIX_BIN};
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		execv(PUNIX_BIN, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int finish(pid_t pid)
{
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(const char *out_rel, const char *const *args)
{
	return finish(start(out_rel, args));
}

/* No registered path is altered or missing; returns how many there are. */
static size_t check_valid_paths_intact(struct store *s)
{
	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_list(s, &e, &n, &err), 0, "%s", sbuf_str(&err));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(store_verify_entry(s, &e[i]), 0, "registered but not intact: %s", e[i].path);
	store_entries_free(e, n);
	sbuf_free(&err);
	return n;
}

/* Entries of the store root (outputs) and of .build that are not valid. */
static size_t count_leftovers(struct store *s)
{
	size_t left = 0;
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, s->root, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (names[i][0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", s->root, names[i]);
		left += !store_is_valid(s, path);
	}
	ops_free_names(names, n);
	cr_assert_eq(o->list_dir(o, s->build_dir, &names, &n), 0);
	left += n;
	ops_free_names(names, n);
	return left;
}

static const char program[] =
	"module Many {\n"
	"  pname = \"many\" version = \"1\" recipe = \"std.shell\"\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT/share && i=0 && while [ $i -lt 300 ]; do "
	"echo file $i > $OUTPUT/share/f$i; i=$((i+1)); done && sleep 0.05\" }\n"
	"}\n"
	"module After {\n"
	"  pname = \"after\" version = \"1\" recipe = \"std.shell\" deps = [\"Many\"]\n"
	"  recipeArgs = { command = \"mkdir -p $OUTPUT && cp -r ../../../../home/store/*-many-1/share $OUTPUT/ "
	"2>/dev/null; echo done > $OUTPUT/done\" }\n"
	"}\n";

Test(build_crash, sigkill_at_random_moments_never_leaves_a_bad_valid_path, .init = setup, .fini = teardown,
     .timeout = 240)
{
	write_text("prog.pcl", program);
	char prog_path[512];
	snprintf(prog_path, sizeof(prog_path), "%s/prog.pcl", dir);
	const char *build[] = {"build", prog_path, NULL};
	const char *recover[] = {"recover", NULL};
	unsigned seed = 12345;
	int killed_mid_build = 0;
	for (int round = 0; round < 30; round++) {
		pid_t pid = start("out.txt", build);
		seed = seed * 1103515245 + 12345;
		/* 0 to 400 ms: before, during and after the build, hashing, fsync, rename */
		long delay_us = (long)((seed >> 8) % 400000);
		struct timespec ts = {0, delay_us * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int rc = finish(pid);
		killed_mid_build += rc == 128 + SIGKILL;

		struct store s;
		struct sbuf err = SBUF_INIT;
		cr_assert_eq(store_open(&s, o, at("home/store"), NULL, at("home/logs"), STORE_CREATE, &err), 0);
		check_valid_paths_intact(&s);
		cr_assert_eq(run("rec.txt", recover), 0);
		cr_assert_eq(count_leftovers(&s), 0, "recover leaves nothing unregistered (round %d)", round);
		check_valid_paths_intact(&s);
		store_close(&s);
		sbuf_free(&err);

		/* Sometimes start over, so early moments are hit again. */
		if (round % 3 == 2)
			ops_remove_tree(o, at("home"));
	}
	cr_expect_gt(killed_mid_build, 5, "the kills must land while punix runs (%d did)", killed_mid_build);
	cr_assert_eq(run("out.txt", build), 0, "a build after all that succeeds");
	struct store s;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_open(&s, o, at("home/store"), NULL, at("home/logs"), STORE_CREATE, &err), 0);
	size_t nvalid = check_valid_paths_intact(&s);
	cr_expect_eq(nvalid, 2, "valid paths: %zu", nvalid);
	store_close(&s);
	sbuf_free(&err);
}

Test(build_crash, two_builds_of_one_package_build_it_once, .init = setup, .fini = teardown, .timeout = 60)
{
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog,
		    "module Slow { pname = \"slow\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"echo run >> %s/count && sleep 0.5 && mkdir -p $OUTPUT && echo ok > "
		    "$OUTPUT/ok\" } }\n",
		    dir);
	write_text("prog.pcl", prog.sb_buf);
	sbuf_free(&prog);
	write_text("count", "");
	cr_assert_eq(chmod(at("count"), 0666), 0, "the build user appends to it");
	char prog_path[512];
	snprintf(prog_path, sizeof(prog_path), "%s/prog.pcl", dir);
	const char *build[] = {"build", prog_path, NULL};
	pid_t a = start("a.txt", build);
	pid_t b = start("b.txt", build);
	cr_expect_eq(finish(a), 0);
	cr_expect_eq(finish(b), 0);
	char *ta, *tb, *count;
	size_t len;
	cr_assert_eq(o->read_file(o, at("a.txt"), 4096, &ta, &len), 0);
	cr_assert_eq(o->read_file(o, at("b.txt"), 4096, &tb, &len), 0);
	cr_assert_eq(o->read_file(o, at("count"), 4096, &count, &len), 0);
	cr_expect_str_eq(ta, tb, "both report the same path");
	cr_expect(strncmp(ta, "ok\tSlow\t", 8) == 0, "%s", ta);
	cr_expect_str_eq(count, "run\n", "the command ran once");
	free(ta);
	free(tb);
	free(count);
}

/* Is process pid gone, or a zombie (dead, not yet reaped by whoever adopted it)? */
static bool gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return !rp || (rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

Test(build_crash, a_build_killed_midway_leaves_an_unregistered_final_path_that_is_cleaned, .init = setup,
     .fini = teardown, .timeout = 120)
{
	/* With the flag file, the command writes part of its output, then waits to be killed. */
	struct sbuf prog = SBUF_INIT;
	sbuf_printf(&prog,
		    "module Half { pname = \"half\" version = \"1\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT && if [ -e %s/slow ]; then echo partial > "
		    "$OUTPUT/junk && echo $$ > $OUTPUT/pid.tmp && mv $OUTPUT/pid.tmp $OUTPUT/pid && exec sleep 60; fi; "
		    "echo whole > $OUTPUT/data\" } }\n",
		    dir);
	write_text("prog.pcl", prog.sb_buf);
	sbuf_free(&prog);
	char prog_path[512];
	snprintf(prog_path, sizeof(prog_path), "%s/prog.pcl", dir);
	const char *build[] = {"build", prog_path, NULL};
	const char *recover[] = {"recover", NULL};
	const char *store_path[] = {"store", "path", prog_path, "Half", NULL};
	cr_assert_eq(run("path.txt", store_path), 0);
	char *path, *pidfile_path;
	size_t len;
	cr_assert_eq(o->read_file(o, at("path.txt"), 4096, &path, &len), 0);
	path[strcspn(path, "\n")] = '\0';
	struct sbuf pf = SBUF_INIT;
	sbuf_printf(&pf, "%s/pid", path);
	pidfile_path = sbuf_detach(&pf, NULL);

	for (int round = 0; round < 2; round++) {
		write_text("slow", "");
		pid_t punix = start("out.txt", build);
		/* the command writes straight into the final path: wait until it has */
		char *text = NULL;
		for (int i = 0; i < 3000 && o->read_file(o, pidfile_path, 64, &text, &len) < 0; i++)
			sleep_ms(10);
		cr_assert_not_null(text, "the build never wrote %s (round %d)", pidfile_path, round);
		pid_t builder = (pid_t)atol(text);
		free(text);
		cr_assert_gt(builder, 0);
		kill(punix, SIGKILL);
		cr_assert_eq(finish(punix), 128 + SIGKILL);
		for (int i = 0; i < 500 && !gone(builder); i++)
			sleep_ms(10);
		cr_expect(gone(builder), "the build command dies with punix (round %d)", round);

		struct store s;
		struct sbuf err = SBUF_INIT;
		cr_assert_eq(store_open(&s, o, at("home/store"), NULL, at("home/logs"), STORE_CREATE, &err), 0);
		struct stat st;
		cr_expect_eq(stat(path, &st), 0, "the half-written path is there");
		cr_expect(!store_is_valid(&s, path), "but not valid");
		cr_expect_eq(check_valid_paths_intact(&s), 0, "nothing is registered");

		if (round == 0) {
			cr_assert_eq(run("rec.txt", recover), 0);
			char *rec;
			cr_assert_eq(o->read_file(o, at("rec.txt"), 4096, &rec, &len), 0);
			cr_expect(strstr(rec, path) != NULL, "recover reports the path:\n%s", rec);
			free(rec);
			cr_expect_neq(stat(path, &st), 0, "recover removed it");
			cr_expect_eq(count_leftovers(&s), 0);
		} else {
			cr_assert_eq(unlink(at("slow")), 0);
			cr_assert_eq(run("out.txt", build), 0, "the next build succeeds");
			cr_expect(store_is_valid(&s, path));
			char **names;
			size_t n;
			cr_assert_eq(o->list_dir(o, path, &names, &n), 0);
			cr_expect(n == 1 && strcmp(names[0], "data") == 0, "nothing of the killed build stays (%zu entries)",
				  n);
			ops_free_names(names, n);
			cr_expect_eq(check_valid_paths_intact(&s), 1);
			cr_expect_eq(count_leftovers(&s), 0);
		}
		store_close(&s);
		sbuf_free(&err);
	}
	free(pidfile_path);
	free(path);
}
