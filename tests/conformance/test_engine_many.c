/*
 * test_engine_many.c - many ops in flight in one engine (engine.h), and
 * two engines side by side in one process.
 *
 * Ten stacks on one rebased target, each with its own files; rounds of 50
 * deploys, rollbacks and set-currents submitted to one engine at once,
 * some of them killed at a random effect (a child process runs the engine
 * and dies there), then recovered by a fresh engine. After every round the
 * invariants hold for every stack: current names a complete generation,
 * the live files are its files, files of other generations are gone, no
 * temporary survives, nothing is left running in the journal.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/ops.h"
#include "base/sbuf.h"
#include "engine/engine.h"
#include "engine/target.h"
#include "frontends/pcl/pcl.h"
#include "store/store.h"
#include "tests/support/proc.h"

extern char **environ;

#define NSTACKS 10
#define NOPS 50
#define DEP "/deployments"

static struct tdir t;
static struct pcl_program *prog[2];

/* Version v of a program of NSTACKS stacks: S<i> has /etc/s<i>/a.conf, and old.conf (v 0) or new.conf (v 1). */
static struct pcl_program *make_program(int v)
{
	struct sbuf src = SBUF_INIT;
	sbuf_printf(&src,
		    "module App { pname = \"app\" version = \"%d\" recipe = \"std.shell\"\n"
		    "  recipeArgs = { command = \"mkdir -p $OUTPUT/bin && printf v%d > $OUTPUT/bin/app\" } }\n",
		    v + 1, v + 1);
	for (int i = 0; i < NSTACKS; i++)
		sbuf_printf(&src,
			    "module S%d { backend = \"systemd\"\n"
			    "  services = [{ name = \"s%d\" package = \"App\" binary = \"app\" }]\n"
			    "  configFiles = [{ path = \"/etc/s%d/a.conf\" content = \"stack %d version %d\\n\" },\n"
			    "                 { path = \"/etc/s%d/%s.conf\" content = \"only in %d\\n\" }] }\n",
			    i, i, i, i, v, i, v ? "new" : "old", v);
	struct pcl_program *p = pcl_program_new();
	char *path = tdir_at(&t, v ? "b.pcl" : "a.pcl");
	tdir_write(&t, v ? "b.pcl" : "a.pcl", src.sb_buf);
	pcl_program_add_source(p, path, src.sb_buf, src.sb_len);
	cr_assert_eq(pcl_program_check(p), 0, "the test's program checks");
	free(path);
	sbuf_free(&src);
	return p;
}

static void setup(void)
{
	tdir_make(&t);
	prog[0] = make_program(0);
	prog[1] = make_program(1);
}

static void teardown(void)
{
	pcl_program_free(prog[0]);
	pcl_program_free(prog[1]);
	tdir_free(&t);
}

/* One engine over its own store, journal and target under <t>/<name>/. */
struct rig {
	char *store, *logs, *state, *target;
	struct store st;
	struct fault_plan *fp;
	struct engine *e;
};

static unsigned rig_local_workers; /* this test's bound on this machine's executor (0: none) */

static void rig_open(struct rig *r, const char *name, const struct fault_config *fc)
{
	struct sbuf sb = SBUF_INIT;
	sbuf_printf(&sb, "%s/store", name);
	r->store = tdir_at(&t, sb.sb_buf);
	sbuf_reset(&sb);
	sbuf_printf(&sb, "%s/logs", name);
	r->logs = tdir_at(&t, sb.sb_buf);
	sbuf_reset(&sb);
	sbuf_printf(&sb, "%s/state", name);
	r->state = tdir_at(&t, sb.sb_buf);
	sbuf_reset(&sb);
	sbuf_printf(&sb, "%s/target", name);
	r->target = tdir_at(&t, sb.sb_buf);
	sbuf_free(&sb);
	cr_assert_eq(ops_mkdir_p(ops_local(), r->target, 0755), 0);
	r->fp = fault_plan_new(fc);
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(store_open(&r->st, ops_faulty(r->fp, ops_local()), r->store, NULL, r->logs, STORE_CREATE, &err),
		     0, "store: %s", err.sb_buf);
	struct engine_config cfg = {r->state, &r->st, r->fp, NULL, environ, 0, rig_local_workers};
	r->e = engine_open(&cfg, &err);
	cr_assert_not_null(r->e, "engine: %s", err.sb_buf);
	sbuf_free(&err);
}

static void rig_close(struct rig *r)
{
	engine_close(r->e);
	store_close(&r->st);
	fault_plan_free(r->fp);
	free(r->store);
	free(r->logs);
	free(r->state);
	free(r->target);
}

static struct target_spec target_of(const struct rig *r)
{
	struct target_spec ts = {0};
	ts.transport_root = r->target;
	ts.deployments_root = DEP;
	ts.unit_dir = "/etc/systemd/system";
	return ts;
}

/* What one submitted op was, and how it ended. */
struct slot {
	char stack[16];
	struct deploy_input in;
	int exit;
	char error[256];
	bool done;
};

static void slot_done(void *arg, struct op_result *r)
{
	struct slot *s = arg;
	s->exit = r->exit;
	snprintf(s->error, sizeof(s->error), "%s", r->error.sb_len ? r->error.sb_buf : "");
	s->done = true;
}

static unsigned long next_rand(unsigned long *seed)
{
	*seed = *seed * 6364136223846793005UL + 1442695040888963407UL;
	return *seed >> 33;
}

/* Submits n random ops across the stacks (deploys of either version, rollbacks, set-currents). */
static void submit_random(struct rig *r, struct slot *slots, size_t n, unsigned long *seed)
{
	struct target_spec ts = target_of(r);
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &slots[i];
		memset(s, 0, sizeof(*s));
		unsigned long x = next_rand(seed);
		snprintf(s->stack, sizeof(s->stack), "S%lu", x % NSTACKS);
		struct op_request q = {.target = ts, .stack = s->stack, .wait = true};
		switch ((x / NSTACKS) % 4) {
		case 0:
		case 1: {
			struct pcl_program *p = prog[(x / 40) % 2];
			s->in.stack = pcl_program_stack(p, s->stack);
			s->in.npkgs = pcl_program_packages(p, &s->in.pkgs);
			s->in.tree_root = t.path;
			q.type = OP_DEPLOY;
			q.deploy = &s->in;
			break;
		}
		case 2: q.type = OP_ROLLBACK; break;
		default:
			q.type = OP_SET_CURRENT;
			q.generation = (long)((x / 80) % 3) + 1;
		}
		engine_submit(r->e, &q, slot_done, s);
	}
}

/* Every op ended: done, or a coded refusal ([E12]: nothing to roll back to); none was refused as busy. */
static void check_results(const struct slot *slots, size_t n, const char *when)
{
	for (size_t i = 0; i < n; i++) {
		cr_assert(slots[i].done, "%s: op %zu on %s never ended", when, i, slots[i].stack);
		cr_assert(slots[i].exit == 0 || slots[i].exit == 1,
			  "%s: op %zu on %s failed (%d): %s", when, i, slots[i].stack, slots[i].exit, slots[i].error);
	}
}

static char *read_all(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	if (ops_local()->read_file(ops_local(), path, 1 << 24, &buf, &n) < 0)
		return NULL;
	if (len)
		*len = n;
	return buf;
}

static void sha_hex(const char *buf, size_t len, char out[65])
{
	unsigned char h[32];
	store_sha256(buf, len, h);
	store_hex(h, 32, out);
}

/* Invariants 1, 2 and 6 for stack i on r's target (a stack never deployed is skipped). */
static void check_stack(const struct rig *r, int i, const char *when)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s" DEP "/S%d/current", r->target, i);
	char link[64] = "";
	ssize_t n = readlink(p.sb_buf, link, sizeof(link) - 1);
	sbuf_free(&p);
	if (n <= 0)
		return;
	link[n] = '\0';
	long gen = 0;
	cr_assert_eq(sscanf(link, "gen-%ld.json", &gen), 1, "%s: S%d: current names '%s'", when, i, link);
	sbuf_printf(&p, "%s" DEP "/S%d/gen-%03ld.json", r->target, i, gen);
	json_error_t je;
	json_t *m = json_load_file(p.sb_buf, JSON_REJECT_DUPLICATES, &je);
	cr_assert_not_null(m, "%s: S%d: %s: %s", when, i, p.sb_buf, je.text);
	sbuf_free(&p);
	json_t *pins = json_object_get(m, "store_paths"), *files = json_object_get(m, "config_files");
	for (size_t k = 0; k < json_array_size(pins); k++) {
		sbuf_printf(&p, "%s%s", r->target, json_string_value(json_array_get(pins, k)));
		struct stat st;
		cr_assert_eq(stat(p.sb_buf, &st), 0, "%s: S%d: pinned %s is on the target", when, i, p.sb_buf);
		sbuf_free(&p);
	}
	bool has_old = false, has_new = false;
	for (size_t k = 0; k < json_array_size(files); k++) {
		json_t *f = json_array_get(files, k);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		has_old |= strstr(path, "/old.conf") != NULL;
		has_new |= strstr(path, "/new.conf") != NULL;
		sbuf_printf(&p, "%s%s", r->target, path);
		size_t len;
		char *live = read_all(p.sb_buf, &len), hex[65];
		cr_assert_not_null(live, "%s: S%d: live %s exists", when, i, path);
		sha_hex(live, len, hex);
		cr_assert_str_eq(hex, sha, "%s: S%d: live %s equals gen-%03ld's", when, i, path, gen);
		free(live);
		sbuf_free(&p);
	}
	const char *gone[] = {has_old ? NULL : "old", has_new ? NULL : "new"};
	for (int k = 0; k < 2; k++) {
		if (!gone[k])
			continue;
		sbuf_printf(&p, "%s/etc/s%d/%s.conf", r->target, i, gone[k]);
		struct stat st;
		cr_assert_neq(stat(p.sb_buf, &st), 0, "%s: S%d: %s of another generation is gone", when, i, p.sb_buf);
		sbuf_free(&p);
	}
	json_decref(m);
}

static void check_all(const struct rig *r, const char *when)
{
	for (int i = 0; i < NSTACKS; i++)
		check_stack(r, i, when);
	/* 6: no temporary file anywhere on the target */
	struct sbuf cmd = SBUF_INIT;
	sbuf_printf(&cmd, "find %s -name '*.tmp-*' -o -name '*.push-*' | grep -c . ", r->target);
	FILE *f = popen(cmd.sb_buf, "r");
	int n = -1;
	cr_assert_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	cr_assert_eq(n, 0, "%s: no temporary files survive", when);
	sbuf_free(&cmd);
}

struct lines {
	struct sbuf text;
	size_t interrupted;
};

static void on_line(void *arg, const char *line)
{
	struct lines *l = arg;
	sbuf_printf(&l->text, "%s\n", line);
	l->interrupted += strstr(line, "was interrupted") != NULL;
}

/* A fresh engine recovers everything; nothing stays running. */
static void recover_all(struct rig *r, const char *name, const char *when)
{
	struct fault_config none = {0};
	rig_open(r, name, &none);
	struct lines l = {SBUF_INIT, 0};
	struct sbuf err = SBUF_INIT;
	cr_assert_eq(engine_recover(r->e, false, on_line, &l, &err), 0, "%s: recover: %s\n%s", when, err.sb_buf,
		     l.text.sb_buf);
	sbuf_reset(&l.text);
	cr_assert_eq(engine_recover(r->e, true, on_line, &l, &err), 0);
	cr_assert_eq(l.interrupted, 0, "%s: ops still running after recovery:\n%s", when, l.text.sb_buf);
	sbuf_free(&l.text);
	sbuf_free(&err);
	check_all(r, when);
	rig_close(r);
}

Test(many, fifty_ops_across_ten_stacks_at_once_with_crashes, .init = setup, .fini = teardown, .timeout = 900)
{
	unsigned long seed = 20261203;
	struct slot *slots = calloc(NOPS, sizeof(*slots));
	/* round 0: every stack deployed, then 50 ops at once, all counted */
	struct rig r;
	struct fault_config count = {.kill_at = 1L << 40}; /* active, never reached: it counts */
	rig_open(&r, "rig", &count);
	struct target_spec ts = target_of(&r);
	for (int i = 0; i < NSTACKS; i++) {
		struct slot *s = &slots[i];
		memset(s, 0, sizeof(*s));
		snprintf(s->stack, sizeof(s->stack), "S%d", i);
		s->in.stack = pcl_program_stack(prog[0], s->stack);
		s->in.npkgs = pcl_program_packages(prog[0], &s->in.pkgs);
		s->in.tree_root = t.path;
		struct op_request q = {.type = OP_DEPLOY, .target = ts, .deploy = &s->in};
		engine_submit(r.e, &q, slot_done, s);
	}
	engine_run(r.e);
	for (int i = 0; i < NSTACKS; i++)
		cr_assert_eq(slots[i].exit, 0, "first deploy of S%d: %s", i, slots[i].error);
	long before = fault_plan_count(r.fp);
	submit_random(&r, slots, NOPS, &seed);
	engine_run(r.e);
	long effects = fault_plan_count(r.fp) - before;
	check_results(slots, NOPS, "round 0");
	int ok = 0;
	for (int i = 0; i < NOPS; i++)
		ok += slots[i].exit == 0;
	cr_expect_gt(ok, NOPS / 2, "most of the 50 ops changed something (%d did)", ok);
	rig_close(&r);
	recover_all(&r, "rig", "round 0");
	cr_log_info("50 ops at once: %ld effects, %d of them done", effects, ok);

	/* rounds 1..: 50 ops at once, the engine's process killed at a random effect */
	int killed = 0;
	for (int round = 1; round <= 10; round++) {
		long kill_at = (long)(next_rand(&seed) % (unsigned long)effects) + 1;
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			struct fault_config fc = {.kill_at = kill_at};
			struct rig c;
			rig_open(&c, "rig", &fc);
			submit_random(&c, slots, NOPS, &seed);
			engine_run(c.e);
			rig_close(&c);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		killed += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		cr_assert(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0), "round %d: the engine died badly",
			  round);
		char when[64];
		snprintf(when, sizeof(when), "round %d (killed at effect %ld)", round, kill_at);
		recover_all(&r, "rig", when);
		next_rand(&seed); /* the child's ops drew from its copy of the seed: move on */
	}
	cr_expect_gt(killed, 5, "most kills must land while the ops run (%d of 10 did)", killed);
	free(slots);
}

Test(many, two_engines_in_one_process_do_not_interfere, .init = setup, .fini = teardown, .timeout = 300)
{
	/* a fails every effect from its 300th on; b has no fault plan at all, and one worker for this machine */
	struct fault_config failing = {.eio_at = 300, .forever = true}, none = {0};
	struct rig a, b;
	rig_local_workers = 1; /* b's ops take turns on one thread: its executor's queue is exercised */
	rig_open(&b, "b", &none);
	rig_local_workers = 0;
	rig_open(&a, "a", &failing);
	struct slot sa[5], sb[5];
	struct target_spec ta = target_of(&a), tb = target_of(&b);
	for (int i = 0; i < 5; i++) {
		struct slot *s[2] = {&sa[i], &sb[i]};
		for (int k = 0; k < 2; k++) {
			memset(s[k], 0, sizeof(*s[k]));
			snprintf(s[k]->stack, sizeof(s[k]->stack), "S%d", i);
			s[k]->in.stack = pcl_program_stack(prog[k], s[k]->stack);
			s[k]->in.npkgs = pcl_program_packages(prog[k], &s[k]->in.pkgs);
			s[k]->in.tree_root = t.path;
		}
		struct op_request qa = {.type = OP_DEPLOY, .target = ta, .deploy = &sa[i].in};
		struct op_request qb = {.type = OP_DEPLOY, .target = tb, .deploy = &sb[i].in};
		engine_submit(a.e, &qa, slot_done, &sa[i]);
		engine_submit(b.e, &qb, slot_done, &sb[i]);
	}
	engine_run(a.e);
	engine_run(b.e);
	int afailed = 0;
	for (int i = 0; i < 5; i++) {
		cr_assert(sa[i].done && sb[i].done);
		cr_expect_eq(sb[i].exit, 0, "b's deploy of S%d: %s", i, sb[i].error);
		afailed += sa[i].exit != 0;
	}
	cr_expect_gt(afailed, 0, "a's fault plan made some of its ops fail");
	/* b's generations are version 1's, on b's target only */
	check_all(&b, "engine b");
	for (int i = 0; i < 5; i++) {
		struct sbuf p = SBUF_INIT;
		sbuf_printf(&p, "%s/etc/s%d/new.conf", b.target, i);
		struct stat st;
		cr_expect_eq(stat(p.sb_buf, &st), 0, "b deployed S%d's version 1", i);
		sbuf_free(&p);
	}
	rig_close(&a);
	rig_close(&b);
	/* a's journal is a's: recovering it touches only a's target */
	recover_all(&a, "a", "engine a after its faults");
}
