/*
 * test_store.c - the store's pure parts and its effects on a temporary
 * directory: hashes, the tree hash, derivation encoding and paths,
 * realisation (at the final path, as the build user when root), validity,
 * verification and cleanup of leftovers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "frontends/pcl/pcl.h"
#include "pcl_test_util.h"
#include "store/store.h"

static char tmp[64];
static struct punix_ops *o;

static void setup(void)
{
	strcpy(tmp, "/tmp/punix-store-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	/* as root, builds run as another user, who must reach the store */
	cr_assert_eq(chmod(tmp, 0755), 0);
	o = ops_local();
}

static void teardown(void)
{
	ops_remove_tree(o, tmp);
}

static char *at(const char *rel)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, rel);
	return buf[k];
}

static void write_file(const char *rel, const char *text, int mode)
{
	char *dir = ops_dirname(at(rel));
	cr_assert_eq(ops_mkdir_p(o, dir, 0755), 0);
	free(dir);
	cr_assert_eq(ops_write_atomic(o, at(rel), text, strlen(text), (uint32_t)mode), 0);
}

static void tree_hex(const char *rel, char out[65])
{
	unsigned char h[32];
	cr_assert_eq(store_hash_tree(o, at(rel), h, NULL), 0);
	store_hex(h, 32, out);
}

Test(hash, sha256_and_encodings_match_known_values)
{
	unsigned char h[32];
	char hex[65], b32[STORE_HASH_CHARS + 1];
	store_sha256("abc", 3, h);
	store_hex(h, 32, hex);
	cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	store_base32(h, b32);
	cr_expect_eq(strlen(b32), STORE_HASH_CHARS);
	cr_expect_eq(strspn(b32, "0123456789abcdfghijklmnpqrsvwxyz"), STORE_HASH_CHARS);
	/* the first 5 bits of 0xba (10111) are 23: 'r' in the alphabet */
	cr_expect_eq(b32[0], 'p');
}

Test(tree, hash_covers_names_contents_modes_and_links, .init = setup, .fini = teardown)
{
	char a[65], b[65];
	write_file("t/x/file", "hello\n", 0644);
	write_file("t/y", "data", 0644);
	cr_assert_eq(symlink("x/file", at("t/link")), 0);
	tree_hex("t", a);
	tree_hex("t", b);
	cr_expect_str_eq(a, b, "stable");

	chmod(at("t/y"), 0755);
	tree_hex("t", b);
	cr_expect_str_neq(a, b, "the executable bit counts");
	chmod(at("t/y"), 0600);
	tree_hex("t", b);
	cr_expect_str_eq(a, b, "other permission bits do not");

	write_file("t/y", "datA", 0644);
	tree_hex("t", b);
	cr_expect_str_neq(a, b, "contents count");
	write_file("t/y", "data", 0644);

	unlink(at("t/link"));
	cr_assert_eq(symlink("x/other", at("t/link")), 0);
	tree_hex("t", b);
	cr_expect_str_neq(a, b, "link targets count");
	unlink(at("t/link"));
	cr_assert_eq(symlink("x/file", at("t/link")), 0);

	rename(at("t/y"), at("t/z"));
	tree_hex("t", b);
	cr_expect_str_neq(a, b, "names count");
}

Test(tree, refuses_special_files, .init = setup, .fini = teardown)
{
	cr_assert_eq(mkdir(at("t"), 0755), 0);
	cr_assert_eq(mkfifo(at("t/fifo"), 0644), 0);
	unsigned char h[32];
	cr_expect_eq(store_hash_tree(o, at("t"), h, NULL), -EINVAL);
}

static struct store_drv base_drv(void)
{
	struct store_drv d = {0};
	d.pname = "hello";
	d.version = "1.0";
	d.recipe = "std.shell";
	d.args = "r1{7:commands4:true}";
	d.args_len = strlen(d.args);
	d.command = "true";
	d.system = "x86_64-linux";
	return d;
}

Test(drv, every_input_changes_the_path)
{
	struct store s = {0};
	s.root = "/s";
	struct store_drv d = base_drv();
	char *p0 = store_drv_path(&s, &d);
	cr_expect(strncmp(p0, "/s/", 3) == 0);
	cr_expect(strcmp(p0 + 3 + STORE_HASH_CHARS, "-hello-1.0") == 0, "%s", p0);
	char *again = store_drv_path(&s, &d);
	cr_expect_str_eq(p0, again);
	free(again);

	struct store_drv v[6];
	for (int i = 0; i < 6; i++)
		v[i] = base_drv();
	v[0].version = "1.1";
	v[1].args = "r1{7:commands5:false}";
	v[1].args_len = strlen(v[1].args);
	v[2].system = "aarch64-linux";
	const char *deps[] = {"/s/aaaa-dep-1"};
	v[3].deps = deps;
	v[3].ndeps = 1;
	v[4].source_dir = "/src";
	v[5].pname = "hallo";
	for (int i = 0; i < 6; i++) {
		char *p = store_drv_path(&s, &v[i]);
		cr_expect_str_neq(p, p0, "input %d", i);
		free(p);
	}
	free(p0);
}

Test(drv, canonical_args_ignore_field_order)
{
	struct pcl_program *a = pcl_checked("module A { x = { b = 1 a = [\"s\", true] c = { z = 1 y = 2 } } }");
	struct pcl_program *b = pcl_checked("module A { x = { c = { y = 2 z = 1 } a = [\"s\", true] b = 1 } }");
	struct sbuf ea = SBUF_INIT, eb = SBUF_INIT;
	pcl_value_canonical(pcl_value_field(pcl_program_find(a, "A")->m_value, "x"), &ea);
	pcl_value_canonical(pcl_value_field(pcl_program_find(b, "A")->m_value, "x"), &eb);
	cr_expect_str_eq(sbuf_str(&ea), sbuf_str(&eb));
	cr_expect_str_eq(sbuf_str(&ea), "r3{1:al2[s1:sb1]1:bi1;1:cr2{1:yi2;1:zi1;}}");
	sbuf_free(&ea);
	sbuf_free(&eb);
	pcl_program_free(a);
	pcl_program_free(b);
}

static void open_store(struct store *s)
{
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_open(s, o, at("store"), NULL, at("logs"), STORE_CREATE, &err), 0, "%s", sbuf_str(&err));
	sbuf_free(&err);
}

Test(realise, builds_registers_and_caches, .init = setup, .fini = teardown)
{
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	d.command = "mkdir -p $OUTPUT/bin && printf '#!/bin/sh\\necho hi\\n' > $OUTPUT/bin/hi && chmod +x $OUTPUT/bin/hi "
		    "&& echo built >> ../../../../count";
	char *path = store_drv_path(&s, &d);
	cr_expect(!store_is_valid(&s, path));
	write_file("count", "", 0666);
	cr_assert_eq(chmod(at("count"), 0666), 0, "the build user appends to it");
	struct store_result r;
	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	cr_assert_eq(r.outcome, STORE_BUILT, "%s", sbuf_str(&r.error));
	store_result_free(&r);
	cr_expect(store_is_valid(&s, path));
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0222, 0, "outputs are read-only");

	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	cr_expect_eq(r.outcome, STORE_CACHED);
	store_result_free(&r);

	char *count;
	size_t len;
	cr_assert_eq(o->read_file(o, at("count"), 100, &count, &len), 0);
	cr_expect_str_eq(count, "built\n", "the command ran once");
	free(count);

	struct store_entry *e;
	size_t n;
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_list(&s, &e, &n, &err), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(store_verify_entry(&s, &e[0]), 0);
	chmod(path, 0755);
	chmod(at("store"), 0755);
	char hi[600];
	snprintf(hi, sizeof(hi), "%s/bin/hi", path);
	chmod(hi, 0755);
	FILE *f = fopen(hi, "a");
	fputs("tampered\n", f);
	fclose(f);
	cr_expect_eq(store_verify_entry(&s, &e[0]), 1, "a tampered file is caught");
	store_entries_free(e, n);
	sbuf_free(&err);
	free(path);
	store_close(&s);
}

Test(realise, a_failed_build_leaves_nothing, .init = setup, .fini = teardown)
{
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	d.command = "mkdir -p $OUTPUT/bin && echo partial > $OUTPUT/bin/x && echo oops && exit 3";
	char *path = store_drv_path(&s, &d);
	struct store_result r;
	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	cr_expect_eq(r.outcome, STORE_FAILED);
	cr_expect_str_eq(sbuf_str(&r.error), "the build command exited with status 3");
	char *log;
	size_t len;
	cr_assert_eq(o->read_file(o, r.log_path, 1000, &log, &len), 0);
	cr_expect_str_eq(log, "oops\n");
	free(log);
	store_result_free(&r);
	struct stat st;
	cr_expect_neq(stat(path, &st), 0, "no path");
	cr_expect(!store_is_valid(&s, path));
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, s.build_dir, &names, &n), 0);
	cr_expect_eq(n, 0, "no build directory left");
	ops_free_names(names, n);
	free(path);
	store_close(&s);
}

static void count_report(void *arg, const char *what, const char *path)
{
	(void)what;
	(void)path;
	(*(int *)arg)++;
}

Test(recover, leftovers_are_removed_and_valid_paths_kept, .init = setup, .fini = teardown)
{
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	d.command = "mkdir -p $OUTPUT";
	char *path = store_drv_path(&s, &d);
	struct store_result r;
	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	store_result_free(&r);
	/* what a build killed at three different moments leaves */
	cr_assert_eq(mkdir(at("store/.build/aaaa-dead-1-999999"), 0755), 0);
	cr_assert_eq(mkdir(at("store/0123456789abcdfghijklmnpqrsvwxyz-unregistered-1"), 0755), 0);
	/* not a store path's name: nothing of ours, never removed */
	cr_assert_eq(mkdir(at("store/bbbb-foreign"), 0755), 0);
	write_file("store/.meta/.cccc-x-1.json.tmp-12345", "{", 0644);
	int seen = 0;
	cr_assert_eq(store_clean_leftovers(&s, true, count_report, &seen), 0);
	cr_expect_eq(seen, 3);
	struct stat st;
	cr_expect_eq(stat(at("store/0123456789abcdfghijklmnpqrsvwxyz-unregistered-1"), &st), 0, "--list changes nothing");
	seen = 0;
	cr_assert_eq(store_clean_leftovers(&s, false, count_report, &seen), 0);
	cr_expect_eq(seen, 3);
	cr_expect_neq(stat(at("store/0123456789abcdfghijklmnpqrsvwxyz-unregistered-1"), &st), 0);
	cr_expect_eq(stat(at("store/bbbb-foreign"), &st), 0, "a name that is not a store path's stays");
	cr_expect_neq(stat(at("store/.build/aaaa-dead-1-999999"), &st), 0);
	cr_expect(store_is_valid(&s, path), "the valid path stays");
	seen = 0;
	cr_assert_eq(store_clean_leftovers(&s, false, count_report, &seen), 0);
	cr_expect_eq(seen, 0, "a second run finds nothing");
	free(path);
	store_close(&s);
}

/* ---- how a build runs: at its final path, as whom, with which home ------- */

/* The uid builds run as: ours unless we are root, then punixbld's or nobody's. */
static uid_t expected_build_uid(void)
{
	if (geteuid() != 0)
		return geteuid();
	struct passwd *pw = getpwnam(STORE_BUILD_USER);
	return pw ? pw->pw_uid : 65534;
}

/* Builds command into a fresh store; returns the path (malloc'd), valid. */
static char *build_ok(struct store *s, const char *command)
{
	open_store(s);
	struct store_drv d = base_drv();
	d.command = command;
	char *path = store_drv_path(s, &d);
	struct store_result r;
	cr_assert_eq(store_realise(s, &d, path, &r), 0);
	char *log = NULL;
	size_t len;
	o->read_file(o, r.log_path, 4096, &log, &len);
	cr_assert_eq(r.outcome, STORE_BUILT, "%s\n%s", sbuf_str(&r.error), log ? log : "");
	free(log);
	store_result_free(&r);
	cr_assert(store_is_valid(s, path));
	return path;
}

/* The text of <path>/<rel> without its trailing newline, malloc'd. */
static char *out_text(const char *path, const char *rel)
{
	char file[1024], *text;
	size_t len;
	snprintf(file, sizeof(file), "%s/%s", path, rel);
	cr_assert_eq(o->read_file(o, file, 4096, &text, &len), 0, "%s", file);
	while (len && text[len - 1] == '\n')
		text[--len] = '\0';
	return text;
}

Test(realise, output_is_the_final_store_path, .init = setup, .fini = teardown)
{
	struct store s;
	char *path = build_ok(&s, "mkdir -p $OUTPUT/bin; printf '#!/bin/sh\\necho %s\\n' \"$OUTPUT\" > "
				  "$OUTPUT/bin/whoami-path; chmod +x $OUTPUT/bin/whoami-path");
	char cmd[1024], line[1024] = "";
	snprintf(cmd, sizeof(cmd), "%s/bin/whoami-path", path);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	cr_expect_eq(pclose(f), 0);
	line[strcspn(line, "\n")] = '\0';
	cr_expect_str_eq(line, path, "what the build recorded of $OUTPUT is where the package is");
	struct stat st;
	cr_expect_eq(stat(line, &st), 0, "and it exists");
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, s.build_dir, &names, &n), 0);
	cr_expect_eq(n, 0, "no build directory left");
	ops_free_names(names, n);
	free(path);
	store_close(&s);
}

Test(realise, runs_as_the_build_user_when_root, .init = setup, .fini = teardown)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	struct store s;
	char *path = build_ok(&s, "id -u > $OUTPUT/uid; id -G > $OUTPUT/groups; id -g > $OUTPUT/gid");
	char *uid = out_text(path, "uid"), *groups = out_text(path, "groups"), *gid = out_text(path, "gid");
	char want[32];
	snprintf(want, sizeof(want), "%lu", (unsigned long)expected_build_uid());
	cr_expect_str_neq(uid, "0", "never root");
	cr_expect_str_eq(uid, want, "%s, else nobody", STORE_BUILD_USER);
	cr_expect_str_eq(groups, gid, "no supplementary groups (root's are dropped)");
	cr_expect_str_neq(gid, "0");
	free(uid);
	free(groups);
	free(gid);
	free(path);
	store_close(&s);
}

Test(realise, home_tmpdir_and_cwd_are_private_and_the_builders, .init = setup, .fini = teardown)
{
	struct store s;
	char *path = build_ok(&s, "echo note > $HOME/note && cp $HOME/note $OUTPUT/note && echo t > $TMPDIR/t && "
				  "echo w > ./w && echo $HOME > $OUTPUT/home && "
				  "stat -c %u $HOME $TMPDIR . $OUTPUT | sort -u > $OUTPUT/owners && id -u > $OUTPUT/uid");
	char *note = out_text(path, "note"), *home = out_text(path, "home"), *owners = out_text(path, "owners"),
	     *uid = out_text(path, "uid");
	cr_expect_str_eq(note, "note", "writing to $HOME works");
	const char *real = getenv("HOME");
	cr_expect(!real || strcmp(home, real) != 0, "HOME is not the real home: %s", home);
	cr_expect(strncmp(home, s.build_dir, strlen(s.build_dir)) == 0, "HOME is in the build directory: %s", home);
	char want[32];
	snprintf(want, sizeof(want), "%lu", (unsigned long)expected_build_uid());
	cr_expect_str_eq(uid, want);
	cr_expect_str_eq(owners, uid, "HOME, TMPDIR, the working directory and $OUTPUT are the builder's");
	struct stat st;
	cr_expect_neq(stat(home, &st), 0, "HOME goes with the build");
	free(note);
	free(home);
	free(owners);
	free(uid);
	free(path);
	store_close(&s);
}

static void expect_read_only_and_ours(const char *path)
{
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0, "%s", path);
	if (S_ISLNK(st.st_mode))
		return;
	cr_expect_eq(st.st_uid, geteuid(), "%s is owned by punix's user (root when root)", path);
	cr_expect_eq(st.st_gid, getegid(), "%s: group", path);
	cr_expect_eq(st.st_mode & 07222, 0, "%s is read-only, no set-id bits (mode %o)", path, st.st_mode & 07777);
	if (!S_ISDIR(st.st_mode))
		return;
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, path, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		char child[1024];
		snprintf(child, sizeof(child), "%s/%s", path, names[i]);
		expect_read_only_and_ours(child);
	}
	ops_free_names(names, n);
}

Test(realise, output_is_taken_back_and_read_only, .init = setup, .fini = teardown)
{
	struct store s;
	char *path = build_ok(&s, "stat -c %u $OUTPUT > $OUTPUT/owner-during-build && mkdir -p $OUTPUT/a/b && "
				  "echo x > $OUTPUT/a/b/f && chmod 777 $OUTPUT/a $OUTPUT/a/b && chmod 6777 $OUTPUT/a/b/f "
				  "&& echo y > $OUTPUT/g && chmod 666 $OUTPUT/g && ln -s a/b/f $OUTPUT/link");
	char *during = out_text(path, "owner-during-build");
	char want[32];
	snprintf(want, sizeof(want), "%lu", (unsigned long)expected_build_uid());
	cr_expect_str_eq(during, want, "the builder owned $OUTPUT while it built");
	expect_read_only_and_ours(path);
	struct stat st;
	cr_assert_eq(stat(at("store"), &st), 0);
	cr_expect_eq(st.st_uid, geteuid(), "the store directory stays ours");
	free(during);
	free(path);
	store_close(&s);
}

Test(realise, ownership_changes_never_follow_links, .init = setup, .fini = teardown)
{
	/* files a link in the source or the output points at must keep their owner and mode */
	write_file("victim-src", "mine\n", 0600);
	write_file("victim-out", "mine\n", 0640);
	cr_assert_eq(chmod(at("victim-src"), 0600), 0);
	cr_assert_eq(chmod(at("victim-out"), 0640), 0);
	write_file("src/README", "source\n", 0644);
	cr_assert_eq(symlink(at("victim-src"), at("src/link")), 0);
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "mkdir -p $OUTPUT && ln -s %s $OUTPUT/link && cp -P link $OUTPUT/srclink",
		 at("victim-out"));
	d.command = cmd;
	d.source_dir = at("src");
	char *path = store_drv_path(&s, &d);
	struct store_result r;
	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	cr_assert_eq(r.outcome, STORE_BUILT, "%s", sbuf_str(&r.error));
	store_result_free(&r);
	struct stat st;
	cr_assert_eq(stat(at("victim-src"), &st), 0);
	cr_expect_eq(st.st_uid, geteuid());
	cr_expect_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(stat(at("victim-out"), &st), 0);
	cr_expect_eq(st.st_uid, geteuid());
	cr_expect_eq(st.st_mode & 07777, 0640);
	free(path);
	store_close(&s);
}

Test(realise, a_half_written_final_path_is_replaced, .init = setup, .fini = teardown)
{
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	d.command = "mkdir -p $OUTPUT && echo whole > $OUTPUT/data";
	char *path = store_drv_path(&s, &d);
	/* what a build killed while writing leaves: its output, unregistered, partly read-only */
	char file[1024];
	snprintf(file, sizeof(file), "%s/sub/partial", path);
	cr_assert_eq(ops_mkdir_p(o, file, 0755), 0);
	cr_assert_eq(chmod(file, 0555), 0);
	cr_expect(!store_is_valid(&s, path));
	struct store_result r;
	cr_assert_eq(store_realise(&s, &d, path, &r), 0);
	cr_assert_eq(r.outcome, STORE_BUILT, "%s", sbuf_str(&r.error));
	store_result_free(&r);
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, path, &names, &n), 0);
	cr_expect_eq(n, 1, "only what this build wrote");
	cr_expect_str_eq(names[0], "data");
	ops_free_names(names, n);
	free(path);
	store_close(&s);
}

Test(recover, a_half_written_final_path_is_removed, .init = setup, .fini = teardown)
{
	struct store s;
	open_store(&s);
	struct store_drv d = base_drv();
	char *path = store_drv_path(&s, &d);
	char file[1024], dir[1024];
	snprintf(file, sizeof(file), "%s/bin/partial", path);
	cr_assert_eq(ops_mkdir_p(o, file, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/%s-0123456789ab", s.build_dir, store_path_name(path));
	cr_assert_eq(mkdir(dir, 0755), 0);
	/* while its build holds the lock, it is left alone */
	char lock[1024];
	snprintf(lock, sizeof(lock), "%s/%s.lock", s.lock_dir, store_path_name(path));
	int h;
	cr_assert_eq(o->lock(o, lock, 1, 1, &h), 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* flock is per open file: another process sees the lock taken */
		int seen = 0;
		int rc = store_clean_leftovers(&s, false, count_report, &seen);
		_exit(rc == 0 && seen == 0 ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a locked build is not a leftover");
	struct stat sb;
	cr_expect_eq(stat(path, &sb), 0);
	o->unlock(o, h);
	int seen = 0;
	cr_assert_eq(store_clean_leftovers(&s, false, count_report, &seen), 0);
	cr_expect_eq(seen, 2, "the build directory and the unregistered path");
	cr_expect_neq(stat(path, &sb), 0, "the half-written path is gone");
	cr_expect_neq(stat(dir, &sb), 0);
	free(path);
	store_close(&s);
}
