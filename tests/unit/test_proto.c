/*
 * test_proto.c - the host protocol (engine/proto.h) and receiving store
 * paths (store_receive.c): frames and their schema, the bundle, the stream
 * over fragments, and a received tree that is checked against its hash,
 * refused when it lies, and never valid half-written.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "engine/proto.h"
#include "store/store.h"

/* ---- frames --------------------------------------------------------------------------------- */

static void frame_of(struct proto_frame *fr, struct sbuf *out)
{
	sbuf_reset(out);
	proto_end(fr, out);
}

Test(proto, hello_round_trip)
{
	struct proto_frame fr;
	struct sbuf b = SBUF_INIT, err = SBUF_INIT;
	proto_begin(&fr, PM_HELLO);
	proto_put_text(&fr, PF_MAGIC, PROTO_MAGIC);
	proto_put_num(&fr, PF_VERSION, 7);
	proto_put_num(&fr, PF_MIN, 1);
	proto_put_text(&fr, PF_ARCH, "x86_64");
	frame_of(&fr, &b);
	struct proto_msg m;
	cr_assert_eq(proto_decode((unsigned char)b.sb_buf[0], b.sb_buf + 5, b.sb_len - 5, &m, &err), 0, "%s",
		     err.sb_buf);
	uint64_t v = 0;
	cr_expect(proto_num(&m, PF_VERSION, &v) && v == 7);
	char *arch = proto_text(&m, PF_ARCH);
	cr_expect_str_eq(arch, "x86_64");
	free(arch);
	proto_msg_free(&m);
	sbuf_free(&b);
	sbuf_free(&err);
}

/* Each schema violation is an error naming it, and leaves the message empty. */
Test(proto, schema_is_enforced)
{
	struct {
		unsigned char type;
		const char *why;
		void (*fill)(struct proto_frame *);
	} cases[] = {
		{'Z', "unknown type", NULL},
		{PM_HELLO, "is missing", NULL},
		{PM_EXIT, "is not a field of this message", NULL},
		{PM_PATH, "appears twice", NULL},
		{PM_EXIT, "does not have 8 bytes", NULL},
		{PM_RUN, "holds a NUL byte", NULL},
	};
	struct sbuf b = SBUF_INIT, err = SBUF_INIT;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proto_frame fr;
		proto_begin(&fr, cases[i].type);
		switch (i) {
		case 2: proto_put_num(&fr, PF_CODE, 0); proto_put_text(&fr, PF_ARCH, "x"); break;
		case 3:
			proto_put_text(&fr, PF_PATH, "/s/a");
			proto_put_text(&fr, PF_PATH, "/s/b");
			proto_put(&fr, PF_REG, "{}", 2);
			break;
		case 4: proto_put(&fr, PF_CODE, "abc", 3); break;
		case 5: proto_put(&fr, PF_ARG, "a\0b", 3); break;
		default: break;
		}
		frame_of(&fr, &b);
		struct proto_msg m;
		sbuf_reset(&err);
		cr_expect_eq(proto_decode(cases[i].type, b.sb_buf + 5, b.sb_len - 5, &m, &err), -EBADMSG, "case %zu", i);
		cr_expect(strstr(sbuf_str(&err), cases[i].why) != NULL, "case %zu: %s", i, sbuf_str(&err));
		cr_expect_eq(m.nf, 0);
	}
	/* a field longer than what is left */
	unsigned char cut[] = {PF_TEXT, 200, 0, 0, 0, 'x'};
	struct proto_msg m;
	sbuf_reset(&err);
	cr_expect_eq(proto_decode(PM_FAIL, cut, sizeof(cut), &m, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "past the end") != NULL, "%s", sbuf_str(&err));
	sbuf_free(&b);
	sbuf_free(&err);
}

/* ---- the stream ---------------------------------------------------------------------------- */

struct mem {
	const unsigned char *p;
	size_t n, at, step;
};

static ssize_t mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t k = m->n - m->at;
	if (k > n)
		k = n;
	if (k > m->step)
		k = m->step; /* irregular arrivals: a frame over many reads */
	memcpy(buf, m->p + m->at, k);
	m->at += k;
	return (ssize_t)k;
}

static ssize_t mem_write(void *ctx, const void *buf, size_t n)
{
	sbuf_append(ctx, buf, n);
	return (ssize_t)n;
}

Test(proto, stream_over_fragments)
{
	struct sbuf wire = SBUF_INIT, err = SBUF_INIT, payload = SBUF_INIT;
	struct proto_io w;
	proto_io_init(&w, NULL, mem_write, &wire);
	for (int i = 0; i < 50; i++) {
		struct proto_frame fr;
		proto_begin(&fr, PM_OUT);
		char line[32];
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		proto_put(&fr, PF_BYTES, line, (size_t)n);
		cr_assert_eq(proto_send(&w, &fr), 0);
	}
	cr_assert_eq(proto_flush(&w), 0);
	struct mem m = {(const unsigned char *)wire.sb_buf, wire.sb_len, 0, 3};
	struct proto_io r;
	proto_io_init(&r, mem_read, NULL, &m);
	int got = 0, rc;
	struct proto_msg msg;
	while ((rc = proto_recv(&r, &payload, &msg, &err)) == 0) {
		char want[32];
		snprintf(want, sizeof(want), "line %d\n", got++);
		const struct proto_field *f = proto_get(&msg, PF_BYTES);
		cr_expect(f && f->n == strlen(want) && !memcmp(f->v, want, f->n));
		proto_msg_free(&msg);
	}
	cr_expect_eq(rc, 1, "%s", sbuf_str(&err));
	cr_expect_eq(got, 50);
	proto_io_free(&w);
	proto_io_free(&r);
	sbuf_free(&wire);
	sbuf_free(&payload);
	sbuf_free(&err);
}

/* A shell's complaint where a frame should be is shown as the text it is. */
Test(proto, text_is_not_a_frame)
{
	const char *text = "sh: 1: punix: not found\n";
	struct mem m = {(const unsigned char *)text, strlen(text), 0, 64};
	struct proto_io r;
	proto_io_init(&r, mem_read, NULL, &m);
	struct sbuf err = SBUF_INIT, payload = SBUF_INIT;
	struct proto_msg msg;
	cr_expect_eq(proto_recv(&r, &payload, &msg, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "punix: not found") != NULL, "%s", sbuf_str(&err));
	proto_io_free(&r);
	sbuf_free(&err);
	sbuf_free(&payload);
}

/* ---- the bundle ---------------------------------------------------------------------------- */

Test(proto, bundle_round_trip)
{
	char *paths[] = {"/s/aaaa-x-1"};
	unsigned char conf[] = "a = 1\n";
	struct bundle_file files[] = {
		{"/etc/x.conf", 0644, false, NULL, conf, 6},
		{"/etc/x.env", 0600, true, "svc", (unsigned char *)"K=v", 3},
	};
	struct bundle b = {.stack = "S", .request = "op-1", .deployed_at = "2026-12-03T00:00:00Z",
			   .source_hash = "ab", .services = "[]", .store_paths = paths, .npaths = 1,
			   .files = files, .nfiles = 2};
	struct sbuf enc = SBUF_INIT, err = SBUF_INIT;
	bundle_encode(&b, &enc);
	struct bundle d;
	cr_assert_eq(bundle_decode(enc.sb_buf, enc.sb_len, &d, &err), 0, "%s", sbuf_str(&err));
	cr_expect_str_eq(d.stack, "S");
	cr_expect_eq(d.npaths, 1);
	cr_expect_eq(d.nfiles, 2);
	cr_expect(d.files[1].secret && !strcmp(d.files[1].owner, "svc") && d.files[1].len == 3);
	cr_expect_eq(d.files[0].mode, 0644);
	bundle_free(&d);
	/* a file outside any normal absolute path is refused */
	files[0].path = "/etc/../x";
	sbuf_reset(&enc);
	bundle_encode(&b, &enc);
	sbuf_reset(&err);
	cr_expect_eq(bundle_decode(enc.sb_buf, enc.sb_len, &d, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "not a normal absolute path") != NULL, "%s", sbuf_str(&err));
	/* a version this punix does not read */
	enc.sb_buf[3] = 9;
	sbuf_reset(&err);
	cr_expect_eq(bundle_decode(enc.sb_buf, enc.sb_len, &d, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "version 9") != NULL, "%s", sbuf_str(&err));
	sbuf_free(&enc);
	sbuf_free(&err);
}

/* ---- receiving store paths ------------------------------------------------------------------ */

static char tmp[64];
static struct punix_ops *o;
static struct store src, dst;

static void setup(void)
{
	strcpy(tmp, "/tmp/punix-proto-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	o = ops_local();
	char a[128], b[128];
	snprintf(a, sizeof(a), "%s/a", tmp);
	snprintf(b, sizeof(b), "%s/b", tmp);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_open(&src, o, a, NULL, NULL, STORE_CREATE, &err), 0, "%s", sbuf_str(&err));
	cr_assert_eq(store_open(&dst, o, b, NULL, NULL, STORE_CREATE, &err), 0, "%s", sbuf_str(&err));
	sbuf_free(&err);
}

static void teardown(void)
{
	store_close(&src);
	store_close(&dst);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", tmp, tmp);
	cr_expect_eq(system(cmd), 0);
}

/* A registration for a tree {bin/app: data} at <root>/<name>, as the store would write it. */
static char *registration(const char *root, const char *name, const char *data, const char *dep)
{
	/* the tree's hash: built in a scratch directory and hashed as the store does */
	char dir[256], bin[280], file[300];
	snprintf(dir, sizeof(dir), "%s/scratch-%s", tmp, name);
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	snprintf(file, sizeof(file), "%s/app", bin);
	ops_remove_tree(o, dir);
	cr_assert_eq(ops_mkdir_p(o, bin, 0755), 0);
	cr_assert_eq(ops_write_atomic(o, file, data, strlen(data), 0555), 0);
	unsigned char h[32];
	uint64_t bytes = 0;
	cr_assert_eq(store_hash_tree(o, dir, h, &bytes), 0);
	char hex[65];
	store_hex(h, 32, hex);
	struct sbuf r = SBUF_INIT;
	sbuf_printf(&r, "{\"format\": 1, \"path\": \"%s/%s\", \"nar_sha256\": \"%s\", \"bytes\": %llu, \"deps\": [%s%s%s]}",
		    root, name, hex, (unsigned long long)bytes, dep ? "\"" : "", dep ? dep : "", dep ? "\"" : "");
	return sbuf_detach(&r, NULL);
}

static int receive(const char *name, const char *reg, const char *data, const char *rel_file, struct sbuf *err)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/%s", dst.root, name);
	struct store_recv rv;
	int r = store_recv_begin(&dst, path, reg, strlen(reg), &rv, err);
	if (r < 0)
		return r; /* 1 (here already): what follows is read and dropped, commit says 1 */
	if ((r = store_recv_entry(&rv, 'd', "", NULL, 0, err)) == 0 && (r = store_recv_entry(&rv, 'd', "bin", NULL, 0, err)) == 0 &&
	    (r = store_recv_entry(&rv, 'x', rel_file, NULL, strlen(data), err)) == 0)
		r = store_recv_data(&rv, data, strlen(data), err);
	if (r < 0) {
		store_recv_abort(&rv);
		return r;
	}
	return store_recv_commit(&rv, err);
}

#define NAME "0123456789abcdfghijklmnpqrsvwxyz-app-1"

Test(receive, a_true_tree_becomes_valid, .init = setup, .fini = teardown)
{
	char *reg = registration(dst.root, NAME, "hello", NULL);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(receive(NAME, reg, "hello", "bin/app", &err), 0, "%s", sbuf_str(&err));
	char path[192];
	snprintf(path, sizeof(path), "%s/%s", dst.root, NAME);
	cr_expect(store_is_valid(&dst, path));
	/* again: it is there, and what is sent is dropped */
	cr_expect_eq(receive(NAME, reg, "hello", "bin/app", &err), 1);
	free(reg);
	sbuf_free(&err);
}

Test(receive, a_lying_tree_is_refused_and_nothing_is_valid, .init = setup, .fini = teardown)
{
	char *reg = registration(dst.root, NAME, "hello", NULL);
	struct sbuf err = SBUF_INIT;
	cr_expect_eq(receive(NAME, reg, "HELLO", "bin/app", &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "not the registered") != NULL, "%s", sbuf_str(&err));
	char path[192];
	snprintf(path, sizeof(path), "%s/%s", dst.root, NAME);
	cr_expect(!store_is_valid(&dst, path));
	struct ops_stat st;
	cr_expect_eq(o->stat(o, path, 0, &st), -ENOENT);
	/* no temporary left beside it */
	char **names;
	size_t n;
	cr_assert_eq(o->list_dir(o, dst.root, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		cr_expect(!strstr(names[i], ".tmp-"), "left: %s", names[i]);
	ops_free_names(names, n);
	free(reg);
	sbuf_free(&err);
}

Test(receive, hostile_names_and_missing_deps_are_refused, .init = setup, .fini = teardown)
{
	struct sbuf err = SBUF_INIT;
	char *reg = registration(dst.root, NAME, "hello", NULL);
	const char *bad[] = {"../app", "bin/../../x", "bin//app", "/bin/app", "bin/./app"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sbuf_reset(&err);
		cr_expect_eq(receive(NAME, reg, "hello", bad[i], &err), -EBADMSG, "%s", bad[i]);
		cr_expect(strstr(sbuf_str(&err), "not a safe name") != NULL, "%s: %s", bad[i], sbuf_str(&err));
	}
	free(reg);
	/* a dependency that is not valid here */
	char dep[192];
	snprintf(dep, sizeof(dep), "%s/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-lib-1", dst.root);
	reg = registration(dst.root, NAME, "hello", dep);
	sbuf_reset(&err);
	cr_expect_eq(receive(NAME, reg, "hello", "bin/app", &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "not valid here") != NULL, "%s", sbuf_str(&err));
	free(reg);
	/* a registration naming another path, or another store */
	reg = registration("/elsewhere", NAME, "hello", NULL);
	sbuf_reset(&err);
	cr_expect_eq(receive(NAME, reg, "hello", "bin/app", &err), -EBADMSG);
	free(reg);
	sbuf_free(&err);
}

/* A transfer cut short leaves a temporary that recovery removes, and nothing valid. */
Test(receive, a_cut_transfer_is_cleaned_by_recovery, .init = setup, .fini = teardown)
{
	char *reg = registration(dst.root, NAME, "hello", NULL);
	char path[192];
	snprintf(path, sizeof(path), "%s/%s", dst.root, NAME);
	struct sbuf err = SBUF_INIT;
	struct store_recv rv;
	cr_assert_eq(store_recv_begin(&dst, path, reg, strlen(reg), &rv, &err), 0);
	cr_assert_eq(store_recv_entry(&rv, 'd', "", NULL, 0, &err), 0);
	cr_assert_eq(store_recv_entry(&rv, 'd', "bin", NULL, 0, &err), 0);
	/* the process dies here: simulate by closing what it held without cleaning */
	char *t = strdup(rv.tmp);
	o->unlock(o, rv.lock_h);
	free(rv.path);
	free(rv.tmp);
	store_registration_free(&rv.reg);
	struct ops_stat st;
	cr_expect_eq(o->stat(o, t, 0, &st), 0);
	cr_expect(!store_is_valid(&dst, path));
	cr_assert_eq(store_clean_leftovers(&dst, false, NULL, NULL), 0);
	cr_expect_eq(o->stat(o, t, 0, &st), -ENOENT);
	free(t);
	free(reg);
	sbuf_free(&err);
}

/*
 * A tree that sends a symlink and then a file below it would write through
 * the symlink (entries are written beneath the host's root, not the
 * store's): refused, and nothing appears where the symlink points.
 */
Test(receive, nothing_is_written_through_a_symlink_of_the_tree, .init = setup, .fini = teardown)
{
	char *reg = registration(dst.root, NAME, "hello", NULL);
	char path[192], outside[192], victim[256];
	snprintf(path, sizeof(path), "%s/%s", dst.root, NAME);
	snprintf(outside, sizeof(outside), "%s/outside", tmp);
	snprintf(victim, sizeof(victim), "%s/app", outside);
	cr_assert_eq(mkdir(outside, 0755), 0);
	struct sbuf err = SBUF_INIT;
	struct store_recv rv;
	cr_assert_eq(store_recv_begin(&dst, path, reg, strlen(reg), &rv, &err), 0);
	cr_assert_eq(store_recv_entry(&rv, 'd', "", NULL, 0, &err), 0);
	cr_assert_eq(store_recv_entry(&rv, 'l', "bin", outside, 0, &err), 0, "%s", sbuf_str(&err));
	cr_expect_eq(store_recv_entry(&rv, 'x', "bin/app", NULL, 5, &err), -EBADMSG);
	cr_expect(strstr(sbuf_str(&err), "below a file or symlink") != NULL, "%s", sbuf_str(&err));
	store_recv_abort(&rv);
	struct ops_stat st;
	cr_expect_eq(o->stat(o, victim, 0, &st), -ENOENT, "a file was written through the symlink");
	cr_expect(!store_is_valid(&dst, path));
	/* nor below a file, nor anything after a root that is not a directory */
	cr_assert_eq(store_recv_begin(&dst, path, reg, strlen(reg), &rv, &err), 0);
	cr_assert_eq(store_recv_entry(&rv, 'f', "", NULL, 0, &err), 0);
	cr_expect_eq(store_recv_entry(&rv, 'f', "x", NULL, 0, &err), -EBADMSG);
	store_recv_abort(&rv);
	free(reg);
	sbuf_free(&err);
}
