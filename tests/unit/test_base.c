/*
 * test_base.c - the shared helpers: UTF-8 strictness, the string map,
 * the string buffer and the arena; running a command as another user
 * through the local ops table.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/ops.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/utf8.h"

Test(utf8, accepts_valid_and_rejects_the_rest)
{
	cr_expect(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	cr_expect(!utf8_valid("\xc0\xaf", 2), "overlong");
	cr_expect(!utf8_valid("\xed\xa0\x80", 3), "surrogate");
	cr_expect(!utf8_valid("\xf4\x90\x80\x80", 4), "above U+10FFFF");
	cr_expect(!utf8_valid("\xe2\x82", 2), "truncated");
	cr_expect(!utf8_valid("\x80", 1), "lone continuation");
}

Test(strmap, put_get_and_growth)
{
	struct strmap m;
	strmap_init(&m);
	static char keys[5000][16];
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		cr_assert_null(strmap_put(&m, keys[i], keys[i]));
	}
	for (int i = 0; i < 5000; i++)
		cr_assert_eq(strmap_get(&m, keys[i]), keys[i]);
	cr_expect_eq(strmap_put(&m, "k7", NULL), keys[7], "existing value is kept and returned");
	cr_expect_null(strmap_get(&m, "missing"));
	strmap_free(&m);
}

Test(sbuf, printf_append_detach)
{
	struct sbuf sb = SBUF_INIT;
	cr_expect_str_eq(sbuf_str(&sb), "");
	sbuf_printf(&sb, "%d-%s", 42, "x");
	sbuf_append(&sb, "\0y", 2);
	cr_expect_eq(sb.sb_len, 6);
	size_t len;
	char *s = sbuf_detach(&sb, &len);
	cr_expect_eq(len, 6);
	cr_expect_eq(memcmp(s, "42-x\0y", 6), 0);
	free(s);
	cr_expect_null(sb.sb_buf);
}

Test(arena, large_and_small_allocations_are_zeroed_and_aligned)
{
	struct arena a;
	arena_init(&a);
	for (int i = 0; i < 10000; i++) {
		size_t n = (size_t)(i % 7 == 0 ? 100000 : i % 13 + 1);
		unsigned char *p = arena_alloc(&a, n);
		cr_assert_eq((uintptr_t)p % 16, 0);
		cr_assert_eq(p[0], 0);
		cr_assert_eq(p[n - 1], 0);
		memset(p, 0xAB, n);
	}
	cr_expect_str_eq(arena_strndup(&a, "hello", 3), "hel");
	arena_free(&a);
}

/* ---- ops_cmd.has_ids: a command as another user --------------------------- */

static char run_dir[64];

static void run_setup(void)
{
	strcpy(run_dir, "/tmp/punix-run-XXXXXX");
	cr_assert_not_null(mkdtemp(run_dir));
}

static void run_teardown(void)
{
	ops_remove_tree(ops_local(), run_dir);
}

/* Runs script with /bin/sh as 65534:65534 (has_ids); its log in *log (malloc'd). */
static int run_as_nobody(const char *script, const char *cwd, int new_session, int *status, char **log)
{
	struct punix_ops *o = ops_local();
	char log_path[128];
	snprintf(log_path, sizeof(log_path), "%s/log", run_dir);
	unlink(log_path);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	const char *env[] = {"PATH=/usr/bin:/bin", NULL};
	struct ops_cmd cmd = {argv, env, cwd, log_path, new_session, 1, 65534, 65534};
	int r = o->run(o, &cmd, status);
	size_t len;
	*log = NULL;
	o->read_file(o, log_path, 4096, log, &len);
	return r;
}

Test(ops_run, has_ids_runs_as_that_user_without_groups, .init = run_setup, .fini = run_teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	int status;
	char *log;
	cr_assert_eq(run_as_nobody("id -u; id -g; id -G", NULL, 1, &status, &log), 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_expect_str_eq(log, "65534\n65534\n65534\n");
	free(log);
}

Test(ops_run, has_ids_enters_cwd_with_that_users_rights, .init = run_setup, .fini = run_teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	char shut[128];
	snprintf(shut, sizeof(shut), "%s/shut", run_dir);
	cr_assert_eq(mkdir(shut, 0700), 0);
	int status;
	char *log;
	cr_expect_eq(run_as_nobody("true", shut, 1, &status, &log), -EACCES, "a directory closed to it is refused");
	free(log);
}

Test(ops_run, has_ids_fails_the_run_when_the_change_is_refused, .init = run_setup, .fini = run_teardown)
{
	if (geteuid() == 0)
		cr_skip_test("needs a user that is not root");
	int status;
	char *log;
	cr_expect_eq(run_as_nobody("true", NULL, 1, &status, &log), -EPERM, "never runs as ourselves instead");
	free(log);
}

Test(ops_run, has_ids_kills_what_the_command_left_in_its_group, .init = run_setup, .fini = run_teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	int status;
	char *log;
	cr_assert_eq(run_as_nobody("sleep 60 & echo $!", NULL, 1, &status, &log), 0);
	cr_assert_not_null(log);
	pid_t left = (pid_t)atol(log);
	free(log);
	cr_assert_gt(left, 0);
	/* it was killed before run returned; it may linger a moment as a zombie of its adopter */
	bool dead = false;
	for (int i = 0; i < 200 && !dead; i++) {
		char path[64], buf[512] = "";
		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)left);
		FILE *f = fopen(path, "r");
		if (!f) {
			dead = true;
			break;
		}
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')');
		dead = rp && (rp[2] == 'Z' || rp[2] == 'X');
		if (!dead)
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	if (!dead)
		kill(left, SIGKILL);
	cr_expect(dead, "the background sleep %ld outlived its build", (long)left);
}

/* ---- ops remove_children: rm -rf of many entries by descriptors ------------ */

static int sh(const char *fmt, const char *dir)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), fmt, dir, dir, dir, dir, dir, dir, dir, dir);
	return system(cmd);
}

/* Read-only trees, a symlink out, a file, an entry that is not there: through the local and the beneath tables. */
Test(ops_remove, children_of_one_directory_never_following_a_link, .init = run_setup, .fini = run_teardown)
{
	for (int beneath = 0; beneath < 2; beneath++) {
		cr_assert_eq(sh("mkdir -p %s/d/a/b/c %s/d/e %s/out && echo x > %s/d/a/b/c/f && echo y > %s/d/a/g && "
				"ln -s %s/out %s/d/a/l && echo z > %s/out/keep",
				run_dir),
			     0);
		cr_assert_eq(sh("echo f > %s/d/file && ln -s %s/out %s/d/link && mkdir %s/d/stays && "
				"chmod 0555 %s/d/a/b/c %s/d/a/b && chmod 0 %s/d/e",
				run_dir),
			     0);
		struct sbuf why = SBUF_INIT;
		struct punix_ops *o = beneath ? ops_beneath(run_dir, &why) : ops_local();
		cr_assert_not_null(o, "%s", why.sb_buf);
		char dir[128];
		snprintf(dir, sizeof(dir), "%s/d", beneath ? "" : run_dir);
		const char *names[] = {"a", "e", "file", "link", "missing"};
		cr_expect_eq(ops_remove_children(o, dir, names, 5), 0);
		const char *bad[] = {"../out"};
		cr_expect_eq(ops_remove_children(o, dir, bad, 1), -EINVAL);
		cr_expect_eq(sh("test \"$(ls -A %s/d)\" = stays && test \"$(cat %s/out/keep)\" = z", run_dir), 0,
			     "only the entries named went; what the links name stays");
		struct stat st;
		snprintf(dir, sizeof(dir), "%s/d", run_dir);
		cr_assert_eq(stat(dir, &st), 0);
		cr_expect_eq(st.st_mode & 0777, 0755, "the directory itself is not changed");
		if (beneath)
			ops_beneath_free(o);
		sbuf_free(&why);
		cr_assert_eq(sh("rm -rf %s/d %s/out", run_dir), 0);
	}
}

/*
 * chown_user from many threads at once, to two users in turn: each file
 * gets the owner it was given. (With getpwnam's one static result, a
 * fleet's builds chowning to the build user beside others chowning back
 * to root sometimes got the other thread's user: a build then could not
 * write its own output.)
 */
struct chown_arg {
	int k;
	int wrong;
};

static void *chown_many(void *p)
{
	struct chown_arg *a = p;
	struct punix_ops *o = ops_local();
	char path[160];
	snprintf(path, sizeof(path), "%s/f%d", run_dir, a->k);
	FILE *f = fopen(path, "w");
	if (f)
		fclose(f);
	for (int i = 0; i < 400; i++) {
		bool root = (i + a->k) % 2;
		if (o->chown_user(o, path, root ? "root" : "nobody") < 0) {
			a->wrong++;
			continue;
		}
		struct stat st;
		if (stat(path, &st) < 0 || (st.st_uid == 0) != root)
			a->wrong++;
	}
	return NULL;
}

Test(ops_chown, chown_user_from_threads_gives_each_file_its_own_user, .init = run_setup, .fini = run_teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to give files away");
	pthread_t th[8];
	struct chown_arg args[8];
	for (int k = 0; k < 8; k++) {
		args[k] = (struct chown_arg){k, 0};
		cr_assert_eq(pthread_create(&th[k], NULL, chown_many, &args[k]), 0);
	}
	int wrong = 0;
	for (int k = 0; k < 8; k++) {
		pthread_join(th[k], NULL);
		wrong += args[k].wrong;
	}
	cr_expect_eq(wrong, 0, "%d chown(s) gave a file another thread's user", wrong);
}
