/*
 * test_git_source.c - git and fixed_output sources (docs/pcl.md,
 * "Sources"; docs/building.md, "git sources"): a tag of a real git
 * repository made here, cloned into the download cache by the git program,
 * its tree's hash checked against the declared one ([E10] naming both, so
 * the first build tells the hash to declare), the build seeing the tree;
 * another tag, another store path; the cache used with the repository gone;
 * a missing tag. A fixed_output source whose tree is not the declared one
 * is [E13], located, and builds once it is.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "tests/support/proc.h"

static struct tdir t;
static char *home, *repo;

static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	struct sbuf c = SBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	sbuf_vprintf(&c, fmt, ap);
	va_end(ap);
	int r = system(c.sb_buf);
	sbuf_free(&c);
	return r;
}

static void setup(void)
{
	tdir_make(&t);
	home = tdir_at(&t, "home");
	repo = tdir_at(&t, "repo");
	cr_assert_eq(sh("set -e; git init -q %s; cd %s; echo hi >hello.txt; mkdir bin; printf '#!/bin/sh\\necho tool\\n' "
			">bin/tool; chmod +x bin/tool; git add -A; git -c user.name=t -c user.email=t@t commit -qm v1; "
			"git tag v1; echo bye >hello.txt; git -c user.name=t -c user.email=t@t commit -qam v2; git tag v2",
			repo, repo),
		     0, "making the repository (is git installed?)");
}

static void teardown(void)
{
	free(home);
	free(repo);
	tdir_free(&t);
}

TestSuite(git, .init = setup, .fini = teardown, .timeout = 120);

/* A program whose package App (version ver) takes tag of the repository, declared with hash. */
static char *program(const char *tag, const char *hash, const char *ver)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module App { pname = \"app\" version = \"%s\" recipe = \"std.shell\"\n"
		    "  source = { type = \"git\" url = \"file://%s\" tag = \"%s\" hash = \"%s\" }\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT && cp -r . $OUTPUT/tree\" } }\n",
		    ver, repo, tag, hash);
	char rel[64];
	snprintf(rel, sizeof(rel), "p/%s-%s-%.8s.pcl", ver, tag, hash);
	tdir_write(&t, rel, p.sb_buf);
	sbuf_free(&p);
	return tdir_at(&t, rel);
}

static struct proc_result build(const char *file)
{
	const char *a[] = {"build", file, NULL};
	return punix_run(home, a);
}

/* The tree hash the refusal names: "hashes to H, not the declared ...". */
static char *told_hash(const char *err)
{
	const char *h = strstr(err, "hashes to ");
	cr_assert_not_null(h, "%s", err);
	return strndup(h + 10, 64);
}

static char *built_path(const char *out)
{
	const char *s = strstr(out, "/");
	cr_assert_not_null(s, "%s", out);
	return strndup(s, strcspn(s, " \n\t"));
}

Test(git, a_tag_is_cloned_checked_against_its_tree_hash_and_cached)
{
	char *p0 = program("v1", zeros, "1");
	struct proc_result r = build(p0);
	cr_expect_neq(r.status, 0);
	cr_expect(strstr(r.out, "[E10]") || strstr(r.err, "[E10]"), "%s%s", r.out, r.err);
	char *h1 = told_hash(strstr(r.err, "hashes to ") ? r.err : r.out);
	proc_result_free(&r);

	char *p1 = program("v1", h1, "1");
	r = build(p1);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *out1 = built_path(r.out);
	proc_result_free(&r);
	struct sbuf f = SBUF_INIT;
	sbuf_printf(&f, "cat %s/tree/hello.txt | grep -qx hi && test -x %s/tree/bin/tool && test ! -e %s/tree/.git", out1,
		    out1, out1);
	cr_expect_eq(sh("%s", f.sb_buf), 0, "the build saw tag v1's tree, without .git: %s", out1);
	sbuf_free(&f);

	/* another tag: another tree hash, another store path */
	char *pz = program("v2", zeros, "1");
	r = build(pz);
	char *h2 = told_hash(strstr(r.err, "hashes to ") ? r.err : r.out);
	proc_result_free(&r);
	cr_expect_str_neq(h1, h2);
	char *p2 = program("v2", h2, "1");
	r = build(p2);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *out2 = built_path(r.out);
	cr_expect_str_neq(out1, out2);
	proc_result_free(&r);

	/* the repository gone: a new build of tag v1 comes from the cache */
	cr_assert_eq(sh("rm -rf %s", repo), 0);
	char *p3 = program("v1", h1, "2");
	r = build(p3);
	cr_expect_eq(r.status, 0, "from the cache: %s%s", r.out, r.err);
	proc_result_free(&r);

	/* a tag that is not there */
	cr_assert_eq(sh("set -e; git init -q %s; cd %s; echo x >x; git add x; git -c user.name=t -c user.email=t@t "
			"commit -qm x",
			repo, repo),
		     0);
	char *p4 = program("v9", zeros, "3");
	r = build(p4);
	cr_expect_neq(r.status, 0);
	cr_expect(strstr(r.out, "[E10] package 'App': cannot fetch file://") &&
			  strstr(r.out, "git clone of tag v9 failed: fatal: Remote branch v9 not found"),
		  "%s%s", r.out, r.err);
	proc_result_free(&r);
	free(p0), free(p1), free(p2), free(p3), free(p4), free(pz);
	free(h1), free(h2), free(out1), free(out2);
}

Test(git, a_git_source_is_checked_as_pcl)
{
	tdir_write(&t, "bad.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  source = { type = \"git\" url = \"ssh://h/r\" tag = \"-x\" hash = \"00\" }\n"
		   "  recipeArgs = { command = \"true\" } }\n"
		   "module B { pname = \"b\" version = \"1\" recipe = \"std.shell\"\n"
		   "  source = { type = \"svn\" path = \".\" }\n"
		   "  recipeArgs = { command = \"true\" } }\n");
	char *bad = tdir_at(&t, "bad.pcl");
	const char *a[] = {"check", bad, NULL};
	struct proc_result r = punix_run(home, a);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "must be an http://, https:// or file:/// URL of a git repository"), "%s", r.err);
	cr_expect(strstr(r.err, "must be a git tag name"), "%s", r.err);
	cr_expect(strstr(r.err, "must be a SHA-256 in 64 lower-case hex digits"), "%s", r.err);
	cr_expect(strstr(r.err, "unknown source type \"svn\"; supported: local, url, url_per_arch, git, fixed_output"), "%s", r.err);
	proc_result_free(&r);
	free(bad);
}

Test(git, a_fixed_output_source_must_be_the_declared_tree)
{
	tdir_write(&t, "fx/vendor/lib.txt", "vendored\n");
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
			"  source = { type = \"fixed_output\" path = \"./vendor\" hash = \"%s\" }\n"
			"  recipeArgs = { command = \"mkdir -p $OUTPUT && cp lib.txt $OUTPUT/\" } }\n",
		    zeros);
	tdir_write(&t, "fx/prog.pcl", p.sb_buf);
	char *prog = tdir_at(&t, "fx/prog.pcl");
	struct proc_result r = build(prog);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "prog.pcl:2:") && strstr(r.err, "error: [E13] fixed_output source \"./vendor\" of 'App' has tree hash "),
		  "%s", r.err);
	char *h = strndup(strstr(r.err, "tree hash ") + 10, 64);
	proc_result_free(&r);
	sbuf_reset(&p);
	sbuf_printf(&p, "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
			"  source = { type = \"fixed_output\" path = \"./vendor\" hash = \"%s\" }\n"
			"  recipeArgs = { command = \"mkdir -p $OUTPUT && cp lib.txt $OUTPUT/\" } }\n",
		    h);
	tdir_write(&t, "fx/prog.pcl", p.sb_buf);
	r = build(prog);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	proc_result_free(&r);
	/* the tree changes: refused again, before anything is built */
	tdir_write(&t, "fx/vendor/lib.txt", "changed\n");
	r = build(prog);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	cr_expect(strstr(r.err, "[E13]") != NULL, "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&p);
	free(h);
	free(prog);
}

/* url_per_arch: the build takes this machine's url (file:// here); one without it is [E14], located. */
Test(git, url_per_arch_takes_the_url_of_the_machine_it_builds_for)
{
	char arch[64] = "";
	FILE *u = popen("uname -m", "r");
	cr_assert(u && fgets(arch, sizeof(arch), u));
	pclose(u);
	arch[strcspn(arch, "\n")] = '\0';
	const char *other = strcmp(arch, "riscv64") ? "riscv64" : "s390x";
	tdir_write(&t, "files/mine.txt", "mine\n");
	tdir_write(&t, "files/theirs.txt", "theirs\n");
	char *mine = tdir_at(&t, "files/mine.txt"), *theirs = tdir_at(&t, "files/theirs.txt");
	/* sha256 of "mine\n" and "theirs\n" */
	char hm[65] = "", ht[65] = "";
	struct sbuf c = SBUF_INIT;
	sbuf_printf(&c, "sha256sum %s %s | cut -c1-64", mine, theirs);
	FILE *h = popen(c.sb_buf, "r");
	cr_assert(h && fscanf(h, "%64s %64s", hm, ht) == 2);
	pclose(h);
	sbuf_free(&c);
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p,
		    "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		    "  source = { type = \"url_per_arch\" urls = {\n"
		    "    %s = { url = \"file://%s\" hash = \"%s\" }\n"
		    "    %s = { url = \"file://%s\" hash = \"%s\" } } }\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT && cp *.txt $OUTPUT/\" } }\n",
		    arch, mine, hm, other, theirs, ht);
	tdir_write(&t, "pa/prog.pcl", p.sb_buf);
	char *prog = tdir_at(&t, "pa/prog.pcl");
	struct proc_result r = build(prog);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	char *out = built_path(r.out);
	struct sbuf f = SBUF_INIT;
	sbuf_printf(&f, "test -f %s/mine.txt && test ! -e %s/theirs.txt", out, out);
	cr_expect_eq(sh("%s", f.sb_buf), 0, "%s holds this machine's file alone", out);
	sbuf_free(&f);
	proc_result_free(&r);
	free(out);

	/* no url for this machine */
	sbuf_reset(&p);
	sbuf_printf(&p,
		    "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		    "  source = { type = \"url_per_arch\" urls = { %s = { url = \"file://%s\" hash = \"%s\" } } }\n"
		    "  recipeArgs = { command = \"true\" } }\n",
		    other, theirs, ht);
	tdir_write(&t, "pa/prog.pcl", p.sb_buf);
	r = build(prog);
	cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
	struct sbuf want = SBUF_INIT;
	sbuf_printf(&want, "prog.pcl:2:43: error: [E14] url_per_arch source of 'App' has no url for %s, the machine it is "
			   "built for (it has: %s)",
		    arch, other);
	cr_expect(strstr(r.err, want.sb_buf) != NULL, "want '%s' in: %s", want.sb_buf, r.err);
	sbuf_free(&want);
	proc_result_free(&r);

	/* an architecture nobody has is refused by check */
	tdir_write(&t, "pa/bad.pcl",
		   "module App { pname = \"app\" version = \"1\" recipe = \"std.shell\"\n"
		   "  source = { type = \"url_per_arch\" urls = { amd64 = { url = \"file:///x/y\" } } }\n"
		   "  recipeArgs = { command = \"true\" } }\n");
	char *bad = tdir_at(&t, "pa/bad.pcl");
	const char *a[] = {"check", bad, NULL};
	r = punix_run(home, a);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect(strstr(r.err, "[E6] 'amd64' is not a machine architecture punix knows"), "%s", r.err);
	proc_result_free(&r);
	sbuf_free(&p);
	free(prog), free(bad), free(mine), free(theirs);
}
