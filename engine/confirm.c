/*
 * confirm.c - confirm-or-revert (docs/deploy.md, "Confirm or revert").
 *
 * With a confirm timeout, the last step of a deploy, rollback or
 * set-current waits, on the target, for two things: the deployer's
 * confirmation (host mode: `punix service confirm` over a new connection,
 * proof that the deploy did not cut the deployer off) and the health check
 * (--health, run on the target until it succeeds once). Without both in
 * time the target flips back to the generation that was current before, by
 * itself, and the op ends aborted with the reason.
 *
 * The decision is one file beside the stack's lock,
 * <deployments-root>/.locks/<stack>.confirm, changed only under the flock of
 * <stack>.confirm.lock (never the stack's lock, which the waiting op holds):
 *
 *   punix-confirm 1 TAB token TAB state TAB deadline TAB why LF
 *
 * state: waiting, acked, confirmed, reverting, reverted. The confirmer
 * turns "waiting" (its token, before the deadline) into "acked"; the
 * waiter alone decides: "confirmed" once it holds an ack and the health
 * check passed, else, at the deadline, "reverting" before it flips back,
 * so a confirmation and a revert never both win. Each write is durable (temp,
 * fsync, rename, fsync of the directory). A recovery of an op that reached
 * its flip decides at once: "confirmed" with its token stands, and so does
 * "acked" when the op has no health check; anything else (its punix died
 * while it waited) is flipped back.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "../base/xalloc.h"
#include "engine.h"
#include "op_internal.h"
#include "target.h"

#define CONFIRM_POLL_MS 100
#define HEALTH_EVERY_MS 1000

struct cstate {
	char token[96];
	char state[16];
	int64_t deadline;
	char why[600];
};

static char *cpath(const char *dep, const char *stack, const char *suffix)
{
	struct sbuf p = SBUF_INIT;
	sbuf_printf(&p, "%s/.locks/%s%s", strcmp(dep, "/") ? dep : "", stack, suffix);
	return sbuf_detach(&p, NULL);
}

/* 0, -ENOENT (none), -EBADMSG (not ours, or torn), or an I/O error. */
static int read_state(struct punix_ops *o, const char *dep, const char *stack, struct cstate *s)
{
	memset(s, 0, sizeof(*s));
	char *path = cpath(dep, stack, ".confirm");
	char *buf = NULL;
	size_t len = 0;
	int r = o->read_file(o, path, 4096, &buf, &len);
	free(path);
	if (r < 0)
		return r;
	char *f[5] = {0};
	char *p = buf;
	size_t k = 0;
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	else
		r = -EBADMSG;
	while (r == 0 && k < 5) {
		f[k++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	if (r == 0 && (k != 5 || strcmp(f[0], "punix-confirm 1") != 0 || strlen(f[1]) >= sizeof(s->token) ||
		       strlen(f[2]) >= sizeof(s->state)))
		r = -EBADMSG;
	if (r == 0) {
		snprintf(s->token, sizeof(s->token), "%s", f[1]);
		snprintf(s->state, sizeof(s->state), "%s", f[2]);
		s->deadline = strtoll(f[3], NULL, 10);
		snprintf(s->why, sizeof(s->why), "%s", f[4]);
	}
	free(buf);
	return r;
}

static int write_state(struct punix_ops *o, const char *dep, const char *stack, const struct cstate *s)
{
	struct sbuf t = SBUF_INIT;
	sbuf_printf(&t, "punix-confirm 1\t%s\t%s\t%" PRId64 "\t", s->token, s->state, s->deadline);
	for (const char *w = s->why; *w; w++)
		sbuf_printf(&t, "%c", *w == '\t' || *w == '\n' ? ' ' : *w);
	sbuf_puts(&t, "\n");
	char *path = cpath(dep, stack, ".confirm");
	int r = ops_write_atomic(o, path, t.sb_buf, t.sb_len, 0600);
	free(path);
	sbuf_free(&t);
	return r;
}

static int lock_decision(struct punix_ops *o, const char *dep, const char *stack, int *h)
{
	struct sbuf d = SBUF_INIT;
	sbuf_printf(&d, "%s/.locks", strcmp(dep, "/") ? dep : "");
	char *dir = sbuf_detach(&d, NULL);
	int r = ops_mkdir_p(o, dir, 0755);
	free(dir);
	char *path = cpath(dep, stack, ".confirm.lock");
	if (r == 0)
		r = o->lock(o, path, 1, 1, h);
	free(path);
	return r;
}

int confirm_refused(struct op_ctx *c)
{
	if (!c->plan.confirm_timeout)
		return 0;
	op_fail(c, 1,
		"[E18] --confirm-timeout: stack '%s' has no live generation to go back to on this target; deploy it once "
		"without --confirm-timeout",
		c->stack);
	return 1;
}

char *confirm_new_token(void)
{
	char a[OPS_TMP_SUFFIX_LEN + 1], b[OPS_TMP_SUFFIX_LEN + 1];
	ops_tmp_suffix(a);
	ops_tmp_suffix(b);
	struct sbuf t = SBUF_INIT;
	sbuf_printf(&t, "%s%s", a, b);
	return sbuf_detach(&t, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* Runs the health check once, at most ms long; 0 if it succeeded, else why (in why). */
static int run_health(struct op_ctx *c, long ms, struct sbuf *why)
{
	struct engine *e = c->e;
	struct sbuf log = SBUF_INIT;
	sbuf_printf(&log, "%s/health-%s.log", e->store->log_dir ? e->store->log_dir : "/tmp", c->stack);
	const char *argv[] = {"/bin/sh", "-c", c->plan.health, NULL};
	const char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	struct ops_cmd cmd = {argv, env, "/", log.sb_buf, 1, 0, 0, 0, (int)(ms > 0 ? ms : 1)};
	int status = 0;
	int r = ops_write_atomic_nodirsync(e->local, log.sb_buf, "", 0, 0600);
	if (r == 0)
		r = e->local->run(e->local, &cmd, &status);
	sbuf_reset(why);
	if (r < 0)
		sbuf_printf(why, "the health check `%s` could not run: %s", c->plan.health, ops_strerror(r));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		r = 0;
	else if (WIFEXITED(status))
		sbuf_printf(why, "the health check `%s` failed (exit %d; its output: %s)", c->plan.health,
			    WEXITSTATUS(status), log.sb_buf), r = 1;
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		sbuf_printf(why, "the health check `%s` did not succeed in time (killed; its output: %s)", c->plan.health,
			    log.sb_buf), r = 1;
	else
		sbuf_printf(why, "the health check `%s` was killed by signal %d (its output: %s)", c->plan.health,
			    WIFSIGNALED(status) ? WTERMSIG(status) : 0, log.sb_buf), r = 1;
	sbuf_free(&log);
	return r;
}

/* Flips back to the generation current before the op (c->plan.previous): flip, materialise, activate. */
static int flip_back(struct op_ctx *c, const char *why)
{
	const struct op_plan *p = &c->plan;
	struct op_ctx b = *c;
	memset(&b.plan, 0, sizeof(b.plan));
	memset(&b.rf, 0, sizeof(b.rf));
	b.in = NULL;
	b.have_bp = false;
	b.secrets = NULL;
	b.nsecrets = 0;
	struct op_plan *q = &b.plan;
	q->ssh = plan_strdup(p->ssh);
	q->known_hosts = plan_strdup(p->known_hosts);
	q->key = plan_strdup(p->key);
	q->transport_root = plan_strdup(p->transport_root);
	q->deployments_root = plan_strdup(p->deployments_root);
	q->unit_dir = plan_strdup(p->unit_dir);
	q->store_root = plan_strdup(p->store_root);
	q->stack = plan_strdup(p->stack);
	q->supervisor_conf = plan_strdup(p->supervisor_conf);
	q->activate = p->activate;
	q->enable = p->enable;
	/* the revert's activation lines follow the op's own, which step_activate would reset */
	struct sbuf before = SBUF_INIT;
	sbuf_append(&before, sbuf_str(&c->res->activation), c->res->activation.sb_len);
	int r = plan_from_manifest(&b, p->previous, p->generation);
	if (r == 0)
		r = step_flip(&b);
	if (r == 0)
		r = step_materialise(&b);
	if (r == 0 && p->activate) {
		r = step_activate(&b);
		if (before.sb_len) {
			sbuf_printf(&before, "flipping back to gen-%03ld:\n", p->previous);
			sbuf_append(&before, sbuf_str(&c->res->activation), c->res->activation.sb_len);
			sbuf_reset(&c->res->activation);
			sbuf_append(&c->res->activation, before.sb_buf, before.sb_len);
		}
	}
	sbuf_free(&before);
	plan_free(&b.plan);
	if (r != 0 && !c->res->exit)
		op_fail(c, 3, "flipping back to gen-%03ld (%s) failed", p->previous, why);
	return r;
}

/* Decided: flip back, and say so. */
static int revert(struct op_ctx *c, struct cstate *s)
{
	const struct op_plan *p = &c->plan;
	struct punix_ops *o = c->tops;
	const char *dep = dep_root(c);
	int r = flip_back(c, s->why);
	if (r != 0)
		return r ? r : 3;
	snprintf(s->state, sizeof(s->state), "reverted");
	int h;
	if (lock_decision(o, dep, c->stack, &h) == 0) {
		write_state(o, dep, c->stack, s); /* what a late confirmer is told; the journal has the rest */
		o->unlock(o, h);
	}
	c->reverted = xstrdup(s->why);
	c->res->confirmed = -1;
	c->res->reverted_from = p->generation;
	c->res->generation = p->previous;
	c->res->previous = p->generation;
	if (!c->parent)
		op_fail(c, 1, "[E18] stack %s: gen-%03ld was not kept: reverted to gen-%03ld: %s", c->stack, p->generation,
			p->previous, s->why);
	return 0;
}

/* Whether s, read for token, says the op is to be kept: decided so, or acked with no health check to pass. */
static bool kept(const struct cstate *s, const char *token, const struct op_plan *p)
{
	if (strcmp(s->token, token) != 0)
		return false;
	return !strcmp(s->state, "confirmed") || (!strcmp(s->state, "acked") && !p->health);
}

bool confirm_kept(struct op_ctx *c)
{
	struct cstate s;
	const char *token = c->plan.confirm_token ? c->plan.confirm_token : "-";
	return read_state(c->tops, dep_root(c), c->stack, &s) == 0 && kept(&s, token, &c->plan);
}

/* The decision file of a live op could not be read (an I/O error, not "none"): nothing is decided on it. */
static int unreadable(struct op_ctx *c, const char *dep, int r)
{
	return op_fail(c, 3, "confirm: reading %s/.locks/%s.confirm: %s (nothing was decided; 'punix recover' decides)",
		       dep, c->stack, ops_strerror(r));
}

/*
 * The decision file cannot be locked or written (a hostile link in its
 * place, a full or read-only disk): nothing can confirm the op, so it is
 * flipped back now, rather than left past its flip with nothing decided.
 */
static int revert_undecidable(struct op_ctx *c, const char *dep, const char *token, int r)
{
	struct cstate s;
	memset(&s, 0, sizeof(s));
	snprintf(s.token, sizeof(s.token), "%s", token);
	snprintf(s.state, sizeof(s.state), "reverting");
	snprintf(s.why, sizeof(s.why), "its decision file %s/.locks/%s.confirm cannot be used (%s), so nothing could "
				       "confirm it",
		 dep, c->stack, ops_strerror(r));
	return revert(c, &s);
}

int step_confirm(struct op_ctx *c)
{
	const struct op_plan *p = &c->plan;
	if (!p->confirm_timeout)
		return 0;
	struct punix_ops *o = c->tops;
	const char *dep = dep_root(c);
	const char *token = p->confirm_token ? p->confirm_token : "-";
	struct cstate s;
	int h, r;
	if (c->parent) {
		/* a recovery: nobody waits any more; what was decided stands, else back */
		if ((r = lock_decision(o, dep, c->stack, &h)) < 0)
			return revert_undecidable(c, dep, token, r);
		r = read_state(o, dep, c->stack, &s);
		if (r < 0 && r != -ENOENT && r != -EBADMSG) {
			o->unlock(o, h);
			return unreadable(c, dep, r);
		}
		bool have = r == 0 && !strcmp(s.token, token);
		if (have && kept(&s, token, p)) {
			if (strcmp(s.state, "confirmed")) {
				snprintf(s.state, sizeof(s.state), "confirmed");
				write_state(o, dep, c->stack, &s); /* what a late confirmer is told */
			}
			o->unlock(o, h);
			c->res->confirmed = 1;
			return 0;
		}
		if (!have || (strcmp(s.state, "reverting") && strcmp(s.state, "reverted"))) {
			snprintf(s.token, sizeof(s.token), "%s", token);
			snprintf(s.why, sizeof(s.why), "its punix stopped before the op was %s",
				 p->confirm_needed ? "confirmed" : "found healthy");
		}
		snprintf(s.state, sizeof(s.state), "reverting");
		r = write_state(o, dep, c->stack, &s);
		o->unlock(o, h);
		if (r < 0)
			return op_fail(c, 3, "confirm: recording the revert: %s", ops_strerror(r));
		return revert(c, &s);
	}

	/* waiting: the deadline counts from here, after activation */
	memset(&s, 0, sizeof(s));
	snprintf(s.token, sizeof(s.token), "%s", token);
	snprintf(s.state, sizeof(s.state), "waiting");
	s.deadline = o->now(o) + p->confirm_timeout;
	if ((r = lock_decision(o, dep, c->stack, &h)) == 0) {
		r = write_state(o, dep, c->stack, &s);
		o->unlock(o, h);
	}
	if (r < 0)
		return revert_undecidable(c, dep, token, r);
	/* a test's crash while it waits, before anyone could have confirmed */
	op_maybe_crash(c, "confirm", "waiting");
	if (p->confirm_needed && c->req.target.confirm_waiting)
		c->req.target.confirm_waiting(c->stack);
	bool acked = !p->confirm_needed, healthy = !p->health;
	int64_t end = mono_ms() + (int64_t)p->confirm_timeout * 1000, next_health = 0;
	struct sbuf hwhy = SBUF_INIT;
	for (;;) {
		int64_t now = mono_ms();
		if (!acked) {
			struct cstate t;
			acked = read_state(o, dep, c->stack, &t) == 0 && !strcmp(t.token, token) && !strcmp(t.state, "acked");
		}
		if (!healthy && now >= next_health && now < end) {
			healthy = run_health(c, (long)(end - now), &hwhy) == 0;
			next_health = mono_ms() + HEALTH_EVERY_MS;
		}
		if ((acked && healthy) || mono_ms() >= end)
			break;
		nap_ms(CONFIRM_POLL_MS);
	}
	/* the decision, against a confirmation arriving at the same instant: this op's alone */
	if ((r = lock_decision(o, dep, c->stack, &h)) < 0) {
		sbuf_free(&hwhy);
		return revert_undecidable(c, dep, token, r);
	}
	if (!acked) {
		struct cstate t;
		r = read_state(o, dep, c->stack, &t);
		if (r < 0 && r != -ENOENT && r != -EBADMSG) {
			o->unlock(o, h);
			sbuf_free(&hwhy);
			return unreadable(c, dep, r);
		}
		acked = r == 0 && !strcmp(t.token, token) && !strcmp(t.state, "acked");
	}
	if (acked && healthy) {
		snprintf(s.state, sizeof(s.state), "confirmed");
		r = write_state(o, dep, c->stack, &s);
		o->unlock(o, h);
		sbuf_free(&hwhy);
		if (r < 0)
			return op_fail(c, 3, "confirm: recording the confirmation: %s", ops_strerror(r));
		c->res->confirmed = 1;
		return 0;
	}
	if (!acked)
		snprintf(s.why, sizeof(s.why), "no confirmation came from the deployer within %ld s%s%s", p->confirm_timeout,
			 healthy ? "" : "; and ", healthy ? "" : hwhy.sb_len ? hwhy.sb_buf : "the health check never passed");
	else
		snprintf(s.why, sizeof(s.why), "%s within %ld s", hwhy.sb_len ? hwhy.sb_buf : "the health check never passed",
			 p->confirm_timeout);
	sbuf_free(&hwhy);
	snprintf(s.state, sizeof(s.state), "reverting");
	r = write_state(o, dep, c->stack, &s);
	o->unlock(o, h);
	if (r < 0)
		return op_fail(c, 3, "confirm: recording the revert: %s", ops_strerror(r));
	op_maybe_crash(c, "confirm", "reverting");
	return revert(c, &s);
}

int engine_confirm(struct punix_ops *o, const char *dep, const char *stack, const char *token, long wait_s,
		   struct sbuf *msg)
{
	int64_t end = mono_ms() + (int64_t)wait_s * 1000;
	for (;;) {
		int h;
		int r = lock_decision(o, dep, stack, &h);
		if (r < 0) {
			sbuf_printf(msg, "locking %s/.locks/%s.confirm.lock: %s", dep, stack, ops_strerror(r));
			return r;
		}
		struct cstate s;
		r = read_state(o, dep, stack, &s);
		bool mine = r == 0 && !strcmp(s.token, token);
		if (mine && !strcmp(s.state, "waiting") && o->now(o) <= s.deadline) {
			/* an ack: the waiting op decides, once its health check (if any) passed too */
			snprintf(s.state, sizeof(s.state), "acked");
			r = write_state(o, dep, stack, &s);
			o->unlock(o, h);
			if (r < 0) {
				sbuf_printf(msg, "recording the confirmation in %s/.locks/%s.confirm: %s", dep, stack,
					    ops_strerror(r));
				return r;
			}
			sbuf_printf(msg, "stack %s: confirmed", stack);
			return 0;
		}
		o->unlock(o, h);
		if (mine && (!strcmp(s.state, "acked") || !strcmp(s.state, "confirmed"))) {
			sbuf_printf(msg, "stack %s: confirmed (already)", stack);
			return 0;
		}
		if (mine && !strcmp(s.state, "waiting")) {
			sbuf_printf(msg, "[E18] stack %s: too late: its deadline passed; the target flips back", stack);
			return 1;
		}
		if (mine) {
			sbuf_printf(msg, "[E18] stack %s: too late: the target %s: %s", stack,
				    strcmp(s.state, "reverted") ? "is flipping back" : "flipped back", s.why);
			return 1;
		}
		if (r < 0 && r != -ENOENT && r != -EBADMSG) {
			sbuf_printf(msg, "reading %s/.locks/%s.confirm: %s", dep, stack, ops_strerror(r));
			return r;
		}
		if (mono_ms() >= end) {
			sbuf_printf(msg,
				    "[E18] stack %s: no op there waits for this confirmation (it never asked for one, or "
				    "another op's is waited for)",
				    stack);
			return 1;
		}
		nap_ms(CONFIRM_POLL_MS);
	}
}
