/*
 * op_internal.h - what the op runner shares with the op kinds defined
 * outside op.c (garbage collection): the context of a running op, the
 * shape of a step table, and the runner's helpers.
 */
#ifndef PUNIX_ENGINE_OP_INTERNAL_H
#define PUNIX_ENGINE_OP_INTERNAL_H

#include <jansson.h>
#include <uv.h>

#include "../base/strmap.h"
#include "../base/vec.h"

#include "build.h"
#include "plan.h"
#include "engine.h"
#include "systemd.h"
#include "vault.h"

struct op_ctx;

/* The engine (engine.h): built only by engine_open. */
struct engine {
	struct journal *journal;
	struct store *store;     /* the local store builds go into */
	struct punix_ops *local; /* the local machine (state, locks), fault-wrapped */
	char *state_dir;         /* the journal's directory; locks live below it */
	struct fault_plan *fault;
	char *crash_at;
	char *const *env;
	struct vault vault;             /* the --vault-secrets file, read once by engine_open (empty: none) */
	struct secret_sources secrets;  /* env, the vault (if given), local: where secrets come from */
	struct fetch_settings fetch;    /* downloads' limits and CA bundle, from env (fetch_settings_from_env) */
	uv_loop_t loop;
	uv_idle_t flush;         /* runs once per loop iteration while records wait to be made durable */
	uv_idle_t here;          /* runs work on the loop thread when one local op is all there is (machine.c) */
	struct op_ctx *hhead, **htail; /* that work, in order */
	unsigned on_pool;        /* work items (and flushes) on libuv's pool now */
	bool ssh_ready;          /* libssh2 was initialised for an op of this engine */
	/* the journal's records, queued on the loop and written by one flush at a time (machine.c) */
	struct jrec *jhead, **jtail; /* queued for the next flush */
	struct jrec *jflight;        /* in the flush under way */
	bool jbusy;
	uv_work_t jwork;
	int jflush_rc;
	struct journal_err jflush_err;
	bool compact_due;            /* a compaction failed: try again after the next flush */
	struct ssh_defaults ssh;       /* copies of the config's */
	char *static_punix;            /* a static build of punix to bootstrap targets with, or NULL */
	struct executor *executors;
	unsigned per_host;             /* each SSH host's bound (engine_config) */
	unsigned local_workers;        /* this machine's (0: none) */
	struct op_ctx *waiting_next;   /* ops waiting for the next flush */
	struct op_ctx *waiting_flight; /* ops waiting for the flush under way */
	struct op_ctx *running;  /* every op in flight (the registry) */
	uint64_t submitted;
	size_t inflight;
};

/* A target host's executor (machine.c): its work items on the pool, bounded. */
struct executor {
	char *key;         /* the host ("ssh://USER@HOST:PORT"), or "local" */
	unsigned limit;    /* at most this many on the pool at once; 0: no bound of its own */
	unsigned inflight;
	struct op_ctx *qhead, **qtail; /* waiting, in order */
	struct executor *next;
};

/* What an op does next once its journal records are durable, or its work is back. */
typedef void (*op_cont_fn)(struct op_ctx *c);

struct op_ctx {
	struct engine *e;
	struct punix_ops *tops;
	uint64_t id;
	const struct op_kind *kind;
	struct op_plan plan; /* typed (plan.h); recorded after the plan step */
	bool have_plan;      /* a recovery's: its record had a plan */
	struct op_result *res;
	/* in memory, for the steps before the commit point of a deploy */
	const struct deploy_input *in;
	struct build_plan bp;
	bool have_bp;
	struct rendered rf;
	long want; /* set-current: the generation asked for */
	struct secret_value *secrets; /* resolved at plan time, in memory only */
	size_t nsecrets;
	const char *stack;
	long keep; /* prune */
	struct gc_state *gc; /* gc: the locked store, from the plan to the sweep (gc.c) */

	/* ---- the runner's ---- */
	struct op_request req;   /* as submitted (borrowed) */
	uint64_t seq;            /* the submission's number */
	char *scope;             /* the lock key */
	int lock_h, store_h;     /* -1 when not held */
	int tlock_h;             /* the stack's lock on the target, -1 when not held */
	uv_work_t work;
	void (*work_fn)(struct op_ctx *c); /* runs on a worker thread */
	op_cont_fn after;        /* then this, on the loop */
	op_cont_fn on_end;       /* when the steps (or the undo) have ended */
	size_t i;                /* the step running */
	long u;                  /* the step being undone */
	int rc, undo_rc;
	struct op_ctx *next_running, *next_waiting, *next_queued;
	struct executor *ex;     /* its target host's */
	op_done_fn done;
	void *done_arg;
	/* recovery: the interrupted ops of the scope, finished or undone before this one runs */
	struct journal_op *rops;
	size_t nrops, ri;
	struct op_ctx *parent;   /* a recovery's: the op it runs for */
	op_cont_fn after_recovery; /* what the op does once its scope is recovered */
	bool committed;          /* a recovery's: the op had reached its commit point */
	long last;               /* a recovery's: the last step the journal shows */
	struct journal_op rop;   /* a recovery's: the op being recovered */
	struct journal_step *rsteps;
	uint64_t *live;          /* a recovery's: the other ops running (their pushes are left alone) */
	size_t nlive;
	size_t nrsteps;
	struct op_result own_res;
	struct sbuf line;        /* a recovery's report line */
	bool recover_only;       /* engine_recover's: lock, recover the scope, nothing else */
	bool queued;             /* waits for an op of this engine on its scope to finish */
	void (*report)(void *arg, const char *line);
	void *report_arg;
	int *recover_rc;
	/* host mode (host_ops.c) */
	struct host_conn *host;  /* the conversation with the target's punix, while the op has one */
	struct sbuf host_report; /* a recovery's: what the target said of the op, its line */
	bool remote_ran;         /* the target ran the op and said how it ended */
	bool remote_lost;        /* the target's punix died, or the connection broke, mid-op */
	int64_t started;         /* by the loop's monotonic clock, ms (req.timeout) */
	/* confirm-or-revert (confirm.c) */
	char *reverted;          /* the op was flipped back: why (the op ends aborted) */
	bool not_kept;           /* a recovery's: the op waited for a confirmation that does not keep it */
};

struct step {
	const char *name;
	int (*run)(struct op_ctx *c);
	int (*undo)(struct op_ctx *c);
	bool commit; /* the commit point: a failure before it undoes, at or after it rolls forward */
};

struct op_kind {
	const char *name;
	const struct step *steps;
	size_t nsteps;
};


/* gc.c: lets go of what a gc op holds between its plan and its sweep (the store's lock). */
void gc_state_drop(struct op_ctx *c);

__attribute__((format(printf, 3, 4))) int op_fail(struct op_ctx *c, int exit, const char *fmt, ...);


/* ---- the runner (runner.c) ---- */

/* The deployments root the op works in (its plan's). */
const char *dep_root(struct op_ctx *c);
/* Now, by the engine's clock (the seam's now), as 2026-12-03T07:00:00Z. */
void now_iso(struct op_ctx *c, char out[32]);
/* The target is this machine itself (not rebased, not over SSH): its store is ours. */
bool target_is_here(struct op_ctx *c);
const struct op_kind *find_kind(const char *name);
const struct op_kind *kind_of(enum op_type t);
/* The index of the kind's commit point (the step marked commit). */
size_t kind_commit(const struct op_kind *k);
/*
 * Queue the op's journal records for the next group commit (machine.c):
 * the op begun (RUNNING; c->id is set once it is durable), a step's state,
 * the plan, the op's end. <0 (and the op failed) if a test's fault plan
 * says the journal fails here.
 */
int journal_begin(struct op_ctx *c);
int journal_plan(struct op_ctx *c);
int journal_step(struct op_ctx *c, size_t i, enum journal_step_state s);
int journal_finish(struct op_ctx *c, enum journal_op_state s);
struct ssh_target;
/* Who to log in as, where and with what, as OpenSSH would decide it (ssh_resolve.c). */
/* libssh2 made ready (loop thread) before the first work of an op over ssh (engine.c) */
int engine_need_ssh(struct engine *e, const char *ssh, struct sbuf *err);
int ssh_resolve(struct engine *e, const struct target_spec *t, struct ssh_target *st, struct sbuf *err);

/* The executor of a host (an ssh:// URL, or NULL/"" for this machine), made on first use. */
struct executor *engine_executor(struct engine *e, const char *host);
/* Runs fn on a worker thread (through c->ex, if set), then after on the loop. */
void op_exec(struct op_ctx *c, void (*fn)(struct op_ctx *c), op_cont_fn after);
/* Runs after on the loop once every journal record queued so far is durable. */
void op_when_durable(struct op_ctx *c, op_cont_fn after);
void journal_flush_rest(struct engine *e);
/* Runs steps [c->i, n) on the loop, then c->on_end; res->exit says how it went. */
void op_steps(struct op_ctx *c);
/* Undoes steps [0, c->u], newest first, then c->on_end; c->undo_rc < 0 if an undo failed. */
void op_undo(struct op_ctx *c);
/* A crash asked for by a test at kind:step:when. */
void op_maybe_crash(struct op_ctx *c, const char *step, const char *when);
/*
 * Tells the op's submitter how far its step has got (engine.h:
 * op_request.count), from the step's thread; a recovery run for an op is
 * not the op's progress. Inline: every kind uses it, and no file above.
 */
static inline void op_count(struct op_ctx *c, const char *what, uint64_t done, uint64_t total, uint64_t bytes)
{
	if (c->req.count && !c->parent)
		c->req.count(c->req.progress_arg, what, done, total, bytes);
}

/* ---- locks (lock.c) ---- */

/* Takes the scope's lock without waiting; -EWOULDBLOCK with err naming who holds it. */
int lock_scope(struct engine *e, const char *scope, const char *what, int *h, struct sbuf *err);
/* The stack's lock on the target itself (flock there); -EWOULDBLOCK with err naming the holder. */
int lock_target(struct punix_ops *tops, const char *dep, const char *stack, int *h, struct sbuf *err);
/* The lock key of a stack on a target: its canonical identity. */
char *make_scope(const struct target_spec *t, const char *stack);
/* Records a rebased tree the deployer's own GC must take roots from. */
int remember_tree(struct engine *e, const struct target_spec *t, struct sbuf *err);
/* Takes the store's lock shared for an op's whole life; the handle, or -1 with r filled. */
int store_shared(struct engine *e, struct op_result *r);

/* ---- steps every switching op shares (generations.c) ---- */

/* Directories written into without a sync yet; each is synced once. */
struct dirset {
	struct strmap seen;
	VEC(char *) dirs;
};
void dirset_add(struct dirset *d, const char *path);
/* Syncs each directory once; on failure *failed names the directory. */
int dirset_sync(struct dirset *d, struct punix_ops *o, const char **failed);
void dirset_free(struct dirset *d);

const char *manifest_why(struct op_ctx *c, long gen, int r, struct sbuf *err);
int plan_pins_in_store(struct op_ctx *c);
/* found[2i], found[2i+1]: whether pin i and its registration are on the target; one request. */
int pins_present(struct op_ctx *c, unsigned char **found);
void list_gens_text(struct op_ctx *c, struct sbuf *out);
int step_verify(struct op_ctx *c);
int step_flip(struct op_ctx *c);
int step_materialise(struct op_ctx *c);
/* Fills the plan from the manifest of generation gen, current being current now (switch.c). */
int plan_from_manifest(struct op_ctx *c, long gen, long current);

/* ---- confirm-or-revert (confirm.c) ---- */

/*
 * The last step of deploy, rollback and set-current: with a confirm
 * timeout, waits for the confirmation and the health check, and flips
 * back to the previous generation without both in time (c->reverted says
 * why). In a recovery, decides at once: confirmed, or flipped back.
 */
int step_confirm(struct op_ctx *c);
/* With nothing live to go back to, an op that would wait for a confirmation fails ([E18]): 1, else 0. */
int confirm_refused(struct op_ctx *c);
/* A recovery's: the op's decision file says it is kept (confirmed, or acked with no health check). */
bool confirm_kept(struct op_ctx *c);
/* A fresh token for an op's confirmation, malloc'd. */
char *confirm_new_token(void);

/* ---- activation (activate.c) and secrets (secrets.c) ---- */

int step_activate(struct op_ctx *c);
/* Resolves the stack's secrets into c->secrets; [E11] naming every one missing. */
int resolve_secrets(struct op_ctx *c, const struct stack_desc *st);
void free_secrets(struct op_ctx *c);

/* ---- recovery (recover.c) ---- */

/* Removes the temporaries an interrupted op may have left on its target. */
void sweep_temps(struct op_ctx *c);
/*
 * Finishes or undoes the interrupted ops of c's scope (whose lock c holds),
 * one after another, each line reported to c; then runs next(c).
 */
void recover_scope(struct op_ctx *c, op_cont_fn next);
/* engine_recover's: lock scope, recover it (lines to report), let it go; *rc = -1 if something failed. */
void op_submit_recovery(struct engine *e, const struct journal_op *first, void (*report)(void *arg, const char *line),
			void *arg, int *rc);


/* ---- the kinds ---- */

extern const struct op_kind deploy_kind;      /* deploy.c */
extern const struct op_kind rollback_kind;    /* switch.c */
extern const struct op_kind set_current_kind; /* switch.c */
extern const struct op_kind gc_kind;          /* gc.c */
extern const struct op_kind prune_kind;       /* gc.c */
extern const struct op_kind host_deploy_kind; /* host_ops.c: a deploy run by the target's punix */
extern const struct op_kind host_remote_kind; /* host_ops.c: a rollback, set-current or prune run there */
extern const struct op_kind fleet_kind;       /* fleet.c: a fleet run, one step per host */
/* A recovery's line about an interrupted fleet run (fleet.c). */
void fleet_report(const struct op_plan *p, struct sbuf *line);

/* ---- deploy's halves and host mode (deploy.c, host_ops.c) ---- */

/* Builds nothing yet: plans what to build, checks the target's architecture, resolves secrets, renders. */
int deploy_prepare(struct op_ctx *c, const char *tarch);
int deploy_build(struct op_ctx *c);
/* Copies a store path (and its registration) to an agentless target. */
int push_store_path(struct op_ctx *c, const char *path);
/*
 * On a worker, once the target's table is open: whether the op runs in
 * host mode, connecting to the target's punix (bootstrapping one if it
 * may). 1 host mode (c->host set, c->kind switched), 0 agentless, <0 the
 * op failed (res says why).
 */
int host_choose(struct op_ctx *c);
void host_drop(struct op_ctx *c);
/* host_confirm.c: where a bootstrapped punix would be on the target (NULL: this deployer has none), malloc'd. */
char *host_bootstrap_exe(struct op_ctx *c);
/* --confirm-timeout SECS --confirm-token T [--health CMD] for the target's punix (secs: the number's room). */
void host_confirm_args(struct op_ctx *c, const char **a, size_t *n, char secs[24]);
/* `punix service confirm` on the target over a new connection; why says what failed, if anything. */
void host_give_confirmation(struct op_ctx *c, struct sbuf *why);
bool kind_is_host(const struct op_kind *k);

#define NSTEPS(t) (sizeof(t) / sizeof((t)[0]))

#endif
