/*
 * engine.h - deploy, rollback, set-current and recovery as journaled ops.
 *
 * Each op kind is a table of named steps (deploy: plan, build, stage,
 * verify, flip, materialise; rollback and set-current: plan, verify, flip,
 * materialise). The runner records INTENT in the journal before a step and
 * DONE after it. flip is the commit point: an op interrupted before it is
 * undone (the previous generation stays wholly live), one interrupted at or
 * after it is rolled forward. Every step and every undo is safe to repeat.
 *
 * On the target, a stack lives in <deployments-root>/<Stack>/:
 *   gen-NNN.json     the manifest of generation NNN
 *   gen-NNN.files/   its rendered files, by absolute path
 *   current          a symlink to the live manifest, switched atomically
 * and the live files are at their own paths (units in the unit directory).
 */
#ifndef PUNIX_ENGINE_H
#define PUNIX_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/ops.h"
#include "../base/sbuf.h"
#include "../journal/journal.h"
#include "../store/store.h"
#include "desc.h"

/*
 * One engine per process (or per test): it owns one libuv loop, the
 * journal, the fault plan, the registry of running ops and their
 * executors. Ops are submitted with engine_submit and run concurrently on
 * the loop; their blocking effects run on libuv's bounded thread pool, so
 * the loop thread only schedules and writes the journal (docs/design.md).
 */
struct engine;
struct fault_plan;
struct bundle;

/* What OpenSSH would take from the environment, read once by the CLI. */
struct ssh_defaults {
	const char *home;       /* where ~/.ssh is (known_hosts, config, id_*), or NULL */
	const char *agent_sock; /* the SSH agent's socket (SSH_AUTH_SOCK), or NULL */
	const char *local_user; /* the user to log in as when neither the URL nor ~/.ssh/config says */
};

struct engine_config {
	const char *state_dir;   /* the journal and the locks; made if missing */
	struct store *store;     /* the local store (the caller's, open for the engine's life) */
	struct fault_plan *fault; /* the tests' fault plan, or NULL; owned by the caller */
	const char *crash_at;    /* "<kind>:<step>:<before|after>": die there (tests), or NULL */
	char *const *env;        /* where from_env secrets are read: NAME=VALUE, NULL-terminated */
	const char *vault_path;  /* where from_vault secrets are read (--vault-secrets; vault.h), or NULL */
	unsigned per_host;       /* work items of one SSH host on the pool at once (0: 2) */
	unsigned local_workers;  /* ... of this machine's (0: no bound but the pool's) */
	struct ssh_defaults ssh; /* OpenSSH conventions: where ~/.ssh is, the agent, who we are */
	const char *static_punix; /* a statically linked punix for this machine's architecture, to bootstrap targets (or NULL) */
};

/* Opens the journal in state_dir; NULL with err saying why. */
struct engine *engine_open(const struct engine_config *cfg, struct sbuf *err);
/* Runs what is still submitted to the end, then frees the engine. */
void engine_close(struct engine *e);
/* The store and the local machine's table the engine works with. */
struct store *engine_store(struct engine *e);
struct punix_ops *engine_local(struct engine *e);

/*
 * How an op reaches another machine (docs/hosts.md): in host mode the op
 * runs on the target, by the target's punix, under its journal and lock;
 * agentless, every step is driven from here over SSH.
 */
enum target_mode { MODE_AUTO, MODE_HOST, MODE_AGENTLESS };

/* Where an op lands. Paths are target paths. */
struct target_spec {
	const char *ssh;            /* "ssh://[USER@]HOST[:PORT]", or NULL for this machine */
	const char *known_hosts;    /* with ssh: the OpenSSH known_hosts file (NULL: ~/.ssh/known_hosts) */
	const char *key;            /* with ssh: the private key, .pub beside it (NULL: agent, ~/.ssh/id_*) */
	const char *transport_root; /* NULL: paths as they are on the target */
	const char *deployments_root;
	const char *unit_dir;
	const char *supervisor_conf; /* supervisord stacks: --supervisor-conf (NULL: /etc/supervisor/supervisord.conf) */
	const struct ssh_defaults *ssh_defaults; /* NULL: the engine's */
	enum target_mode mode;      /* with ssh: host, agentless, or host where punix can run (auto) */
	const char *remote_punix;   /* with ssh: the target's punix (--remote-punix), or NULL: its PATH, then a bootstrap */
	bool activate; /* after the flip: daemon-reload, restart what changed, stop what went */
	bool enable;   /* and systemctl enable, so units survive a reboot */
	/*
	 * Confirm-or-revert (deploy, rollback, set-current; docs/deploy.md):
	 * seconds the target waits after activation for the deployer's
	 * confirmation over a new connection (ops on another host, in host
	 * mode) and for health to succeed there; without both in time it flips
	 * back by itself. 0: no wait. confirm_token: the token the target waits
	 * for (set by the target's punix from --confirm-token; a deployer
	 * makes its own); NULL on this machine, where only health is waited for.
	 */
	long confirm_timeout;
	const char *health;
	const char *confirm_token;
	/* told, from the op's thread, once the target waits for confirm_token (the target's punix says so) */
	void (*confirm_waiting)(const char *stack);
};

struct op_result {
	int exit;          /* 0, 1 (coded error), 3 (failure), 4 (stack busy) */
	struct sbuf recovered; /* lines about interrupted ops on the stack finished or undone first */
	struct sbuf error; /* what went wrong, without "error: " */
	uint64_t op_id;
	long generation;   /* the generation now current (or planned) */
	long previous;     /* the one current before, 0 if none */
	size_t nfiles, npaths;
	struct sbuf activation; /* one line per unit acted on (activate) */
	size_t failed_units;    /* units that did not (re)start */
	struct sbuf failed;     /* their names, comma-separated */
	const char *no_activator; /* activation was asked of a backend without an activator: its name */
	const char *mode;       /* "local", "agentless" or "host" */
	char target_punix[64];  /* host mode: the target's punix version */
	unsigned round_trips;   /* host mode: the waits for an answer from the target */
	bool bootstrapped;      /* host mode: a static punix was pushed into the target's store first */
	/* confirm-or-revert: 1 confirmed (and healthy), -1 reverted (error says why; generation is the one back), 0 not asked */
	int confirmed;
	long reverted_from;     /* reverted: the generation that was live until the revert */
};

void op_result_free(struct op_result *r);

/* A deploy needs the program's packages to build what the stack uses. */
struct deploy_input {
	const struct stack_desc *stack;
	const struct pkg_desc *pkgs;
	size_t npkgs;
	const char *tree_root;
	const char *const *adopt; /* --adopt: existing files the stack takes over */
	size_t nadopt;
	/*
	 * Host mode's target side: the generation as the deployer prepared it
	 * (proto.h), in place of stack, pkgs and tree_root; its store paths
	 * were pushed before the op began.
	 */
	const struct bundle *bundle;
	/*
	 * --build-on-target (the deployer's side, host mode): the program's
	 * files (absolute, below tree_root) are sent with the whole tree and
	 * the target's punix builds and deploys them.
	 */
	bool build_on_target;
	const char *const *files;
	size_t nfiles;
};

struct gc_scan;

/* What a collection works on (engine_gc below). */
struct gc_target {
	const char *transport_root;
	const char *deployments_root;
	/* if not NULL: told what the op's plan found (gc_scan_free it), empty if it found nothing */
	struct gc_scan *scan;
};

/* ---- submitting ops ------------------------------------------------------------ */

enum op_type { OP_DEPLOY, OP_ROLLBACK, OP_SET_CURRENT, OP_GC, OP_PRUNE };

/*
 * An op to run. Everything it points to stays valid until its completion
 * callback has run.
 */
/* What a count of a download's bytes begins with (op_request.count). */
#define OP_COUNT_FETCHING "fetching "

struct op_request {
	enum op_type type;
	struct target_spec target; /* deploy, rollback, set-current, prune */
	const char *stack;
	const struct deploy_input *deploy; /* OP_DEPLOY */
	long generation;                   /* OP_SET_CURRENT: the one to make current */
	long keep;                         /* OP_PRUNE: how many older generations stay */
	struct gc_target gc;               /* OP_GC */
	bool wait; /* the stack is busy with an op of this engine: wait for it, instead of exit 4 */
	/*
	 * Told, on the loop thread, the name of each step as it begins
	 * ("plan", "build", "stage", "push", "flip", "run", ...) and the op's
	 * id in the journal (0 until its first record is durable), or NULL.
	 */
	void (*progress)(void *arg, const char *step, uint64_t op_id);
	/*
	 * Told, with progress_arg, how far a step that works through many
	 * items has got: what it counts ("packages done", "paths pushed",
	 * "paths deleted"), done of total (0 of total as it begins), and the
	 * bytes sent so far (a push in host mode; else 0); or NULL. It is
	 * called from the thread the step runs on, which is a pool worker
	 * or the loop thread itself (a lone local op runs its steps there,
	 * so a timer on the loop could not see them), as often as once per
	 * item or 64 KiB sent: it must be thread-safe and cheap, and limit
	 * what it shows itself. Never twice at once for one op; ops beside
	 * each other may call it at once. A url source's download is told
	 * the same way, with what OP_COUNT_FETCHING and the file's name
	 * ("fetching hello-2.12.tar.gz"), done and total in bytes (total 0
	 * while the server has not said), about every 64 KiB.
	 */
	void (*count)(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes);
	void *progress_arg;
	/*
	 * Seconds the op may take (0: no limit). Past them, it stops at its next
	 * step boundary before its commit point, undone (exit 3, "timed out");
	 * an op past its flip runs to its end.
	 */
	long timeout;
};

typedef void (*op_done_fn)(void *arg, struct op_result *r);

/*
 * Submits an op; done(arg, r) runs on the loop thread when it has finished
 * (r is the engine's: valid during the call; take what you need, the
 * engine frees it). Returns the submission's number (1, 2, ...); the
 * journal's op id is r->op_id. Two ops on one stack: the later one ends
 * with exit 4 (the stack is busy), as two processes would; with wait, it
 * runs when the op of this engine before it on that stack has finished
 * (in the order submitted). Another process's op still means exit 4.
 */
uint64_t engine_submit(struct engine *e, const struct op_request *req, op_done_fn done, void *arg);
/* Runs the loop until every submitted op has finished. */
int engine_run(struct engine *e);

/*
 * `punix service confirm`: gives the confirmation the op on stack waits for
 * with token (confirm-or-revert; o reaches the target's deployments root
 * dep), waiting up to wait_s seconds for that op to begin waiting. 0
 * confirmed (now or already), 1 too late or no such op (msg says, [E18]),
 * <0 an error (msg says). msg gets the line to print.
 */
int engine_confirm(struct punix_ops *o, const char *dep, const char *stack, const char *token, long wait_s,
		   struct sbuf *msg);

/* One op, submitted and run to its end: the CLI's way. */
int engine_run_one(struct engine *e, const struct op_request *req, struct op_result *r);

int engine_deploy(struct engine *e, const struct target_spec *t, const struct deploy_input *in, struct op_result *r);
int engine_rollback(struct engine *e, const struct target_spec *t, const char *stack, struct op_result *r);
int engine_set_current(struct engine *e, const struct target_spec *t, const char *stack, long gen,
		       struct op_result *r);

/*
 * Finishes or undoes every op the journal shows as running whose stack is
 * not locked by a live process. report() gets one line per op.
 */
int engine_recover(struct engine *e, bool list_only, void (*report)(void *arg, const char *line), void *arg,
		   struct sbuf *err);
/*
 * The same, and count(arg, "ops recovered", done, total, 0), on the loop
 * thread, as it begins and after each op's line (count may be NULL).
 */
int engine_recover_counted(struct engine *e, bool list_only, void (*report)(void *arg, const char *line),
			   void (*count)(void *arg, const char *what, uint64_t done, uint64_t total, uint64_t bytes),
			   void *arg, struct sbuf *err);

/* ---- garbage collection and pruning ---------------------------------------------- */

struct gc_scan {
	bool scanned;       /* filled in (an op's plan that failed leaves it false) */
	size_t stacks, generations, inflight;
	size_t foreign;     /* pins of another store, which are not roots of this one */
	const char **roots; /* pinned paths, possibly repeated */
	size_t nroots;
	size_t keep;        /* paths in the keep-set (roots and their closure) */
	const char **dead;  /* registered paths outside it */
	size_t ndead;
	uint64_t dead_bytes;
};

/*
 * A collection without a transport root works on the deployer's own store,
 * whose roots are the generations under deployments_root, those of its
 * dry-run scratch tree, and those of every rebased tree it deployed into.
 * With one: the copy of the store under that root, whose roots are the
 * generations under the deployments root there (docs/gc.md).
 *
 * Finds roots and the dead without changing anything. */
int engine_gc_scan(struct engine *e, const struct gc_target *g, struct gc_scan *out, struct sbuf *err);
void gc_scan_free(struct gc_scan *s);

/*
 * Collects the store as a journaled op. On success r->generation is the
 * number of paths removed, r->nfiles the bytes freed, r->npaths the size of
 * the keep-set.
 */
int engine_gc(struct engine *e, const struct gc_target *g, struct op_result *r);

/* Deletes every generation of stack but the current one and the newest keep. */
int engine_prune(struct engine *e, const struct target_spec *t, const char *stack, long keep, struct op_result *r);

/* ---- a fleet run (docs/fleet.md) ------------------------------------------------ */

/*
 * A fleet run is an op of its own in the journal: its plan names the
 * fleet's file and each host's op and how it ended, so that 'punix
 * recover' can say, after a killed run, which hosts finished (never
 * deployed again), which were interrupted (their own ops are recovered)
 * and which never started. Begin and end on the loop's thread (or before
 * engine_run); one run of one fleet file at a time (else NULL, err saying
 * who holds it).
 */
struct engine_fleet;
struct engine_fleet_host {
	const char *name, *stack, *target;
};
struct engine_fleet *engine_fleet_begin(struct engine *e, const char *file, const struct engine_fleet_host *hosts,
					size_t n, struct sbuf *err);
/* Host i started (status "running", with its op id once known), or ended ("ok", "failed", "blocked", ...). */
void engine_fleet_host(struct engine_fleet *f, size_t i, uint64_t op_id, const char *status);
/* The run has ended: recorded, then its lock let go. f is freed. */
void engine_fleet_end(struct engine_fleet *f);
/*
 * The hosts the last run of this fleet file deployed ("NAME\tSTACK\tTARGET"
 * each, malloc'd) and that run's op id (0: none). 0, or -1 with err.
 */
int engine_fleet_finished(struct engine *e, const char *file, char ***done, size_t *n, uint64_t *run, struct sbuf *err);

/* ---- reading what is on a target ---------------------------------------------- */

struct gen_info {
	long number;
	char *deployed_at;
	size_t nfiles, npaths;
};

/* The generations of a stack on a target, ascending, and which is current (0: none). */
int engine_generations(struct punix_ops *tops, const char *deployments_root, const char *stack,
		       struct gen_info **gens, size_t *n, long *current, struct sbuf *err);
void gen_infos_free(struct gen_info *g, size_t n);
/* "the stacks there: A, B" (those with a current generation), or "no stack has been deployed under DEP". */
void engine_stacks_text(struct punix_ops *tops, const char *deployments_root, struct sbuf *out);

struct drift {
	char *path;
	const char *what; /* "missing", "content differs", "mode differs" */
};

/* Live files that differ from the current generation's. */
int engine_verify(struct punix_ops *tops, const char *deployments_root, const char *stack, struct drift **d,
		  size_t *n, long *current, struct sbuf *err);
void drifts_free(struct drift *d, size_t n);

/*
 * The ops table for a target spec: this machine (wrapped with the engine's
 * fault plan, if any) or an SSH connection, rebased under transport_root if set.
 * NULL with err set when the host cannot be reached or trusted. e may be
 * NULL (a read-only look at a target: no fault plan).
 */
struct punix_ops *engine_target_ops(struct engine *e, const struct target_spec *t, struct sbuf *err);
void engine_target_ops_free(struct punix_ops *o);

#endif
