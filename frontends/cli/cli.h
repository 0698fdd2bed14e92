/*
 * cli.h - what the punix subcommands share: exit codes, program loading,
 * and the small conventions of output.
 */
#ifndef PUNIX_CLI_H
#define PUNIX_CLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../base/ops.h"
#include "../../store/store.h"
#include "../../engine/engine.h"
#include "../pcl/pcl.h"

/* Exit codes; docs/cli.md lists them and scripts depend on them. */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,    /* a located or coded error */
	EXIT_USAGE = 2,    /* bad arguments; a path that is missing or unreadable */
	EXIT_FAILURE_ = 3, /* a build or transport failure */
	EXIT_LOCKED = 4,   /* another op holds the stack or the store */
};

/* the project's version (CMakeLists.txt), as host mode's HELLO says it too */
#define PUNIX_VERSION PUNIX_VERSION_TEXT

/*
 * What one run of a command shares with main (no process globals): whether
 * it speaks JSON, and the first error it reported. main owns it, passes it
 * to the command, and frees it.
 */
struct cli_ctx {
	bool json;    /* --json among the command's options (main looks before any "--") */
	bool printed; /* the command's one JSON object is on standard output */
	char *error;  /* the first error reported, as its "error: " line says it; malloc'd */
	char *file;   /* where in the program, when the error is a located one; malloc'd */
	long line;
};

struct cli_cmd {
	const char *name;
	const char *summary;
	int (*run)(struct cli_ctx *cx, int argc, char **argv);
	void (*help)(void);
};

struct option;
/*
 * getopt_long for every command (args.c): options and operands in any
 * order, "--" ends the options, only -h as a short option. An unknown
 * option, or one missing its value, is reported on standard error, naming
 * it and the nearest known one, and '?' returned. name is the command as
 * the user typed it ("journal show"), or NULL for argv[0].
 */
int cli_getopt(struct cli_ctx *cx, int argc, char **argv, const struct option *longopts, const char *name);
/* The name of names nearest to word, if near enough to be a likely typo; else NULL. */
const char *cli_nearest(const char *word, const char *const *names, size_t n);

/*
 * "error: ..." on standard error, and the error recorded in cx (the first
 * one is kept) for the JSON failure object; returns code for
 * `return cli_fail(...)`.
 */
__attribute__((format(printf, 3, 4))) int cli_fail(struct cli_ctx *cx, int code, const char *fmt, ...);
/* Records an error for the JSON object without printing it (a failure whose lines already say why). */
__attribute__((format(printf, 2, 3))) void cli_note(struct cli_ctx *cx, const char *fmt, ...);
/* A usage error: usage on standard error, its first line recorded; returns EXIT_USAGE. */
int cli_usage(struct cli_ctx *cx, const char *usage);

struct json_t;
/*
 * The command's one JSON object (docs/cli.md, "JSON"): adds "ok" (rc == 0)
 * and, when rc is not 0, "exit" and "error" ({"code", "message", "file",
 * "line"} from the error recorded); prints it on standard output; takes
 * obj. Returns rc.
 */
int cli_json_out(struct cli_ctx *cx, struct json_t *obj, int rc);
/* A JSON string of s: JSON is UTF-8, so each byte that is not becomes U+FFFD; NULL gives null. */
struct json_t *cli_json_text(const char *s);
/* After the command: its failure object, when it failed in JSON mode without printing one. */
void cli_ctx_end(struct cli_ctx *cx, int rc);

/*
 * s, or fallback when s is NULL or empty: a reason from below is printed
 * through this, so no message reads "(null)" or ends in nothing.
 */
const char *cli_reason(const char *s, const char *fallback);

/*
 * Expands FILE|DIR arguments into one program: directories contribute every
 * *.pcl below them (hidden entries and symlinked directories skipped), each
 * file once however often named, in path order. Reading happens through
 * ops. On a missing, unreadable or empty input, prints the error and
 * returns EXIT_USAGE with *out NULL; otherwise returns EXIT_OK with the
 * program parsed (not yet checked).
 */
int cli_load_program(struct cli_ctx *cx, struct punix_ops *ops, char *const *args, size_t nargs, struct pcl_program **out,
		     size_t *nfiles);

/* Records the first diagnostic in cx (code, message, file, line) for the JSON object. */
void cli_note_diag(struct cli_ctx *cx, const struct pcl_program *p);
/* Prints every diagnostic to standard error, and a line for the dropped; records the first. */
void cli_print_diags(struct cli_ctx *cx, const struct pcl_program *p);

/*
 * The program's tree: the deepest directory holding every FILE and DIR
 * argument (real paths). Sources of packages must lie inside it. malloc'd,
 * or NULL after printing an error.
 */
char *cli_tree_root(struct cli_ctx *cx, struct punix_ops *ops, char *const *args, size_t nargs);

struct cli_places {
	char *home;
	char *store;
	char *logs;
	char *deployments; /* --deployments-root, else <home>/deployments */
	bool deployments_default; /* <home>/deployments: made by the first op (so GC can tell "none yet" from "gone") */
	char *state;       /* --state-dir, else $PUNIX_STATE_DIR, else <home>/journal */
	struct fault_plan *fault; /* the tests' fault injection, from PUNIX_FAULT_* (docs/testing.md) */
	char *crash_at;           /* PUNIX_CRASH_AT */
	/* OpenSSH's conventions, from the environment: $HOME (or the passwd entry), SSH_AUTH_SOCK, the user */
	char *ssh_home, *ssh_agent, *local_user;
	struct ssh_defaults ssh;  /* pointing at those */
	char *static_punix;       /* a static build of punix to bootstrap targets with ($PUNIX_STATIC, or beside us) */
	char *host_root;          /* $PUNIX_HOST_ROOT: this machine's state is beneath it (host mode's commands) */
	struct punix_ops *host_ops; /* the machine beneath host_root */
	char *vault;              /* --vault-secrets: where from_vault secrets are read (canonical), or NULL */
};

/* Where root keeps everything unless PUNIX_HOME says otherwise. */
#define PUNIX_SYSTEM_HOME "/var/lib/punix"

/*
 * Resolves the places from the environment and store_root (NULL: none);
 * every one is canonical (base/path.h). On a path that cannot be used,
 * prints why and returns EXIT_USAGE (pl is then freed by cli_places_free).
 */
int cli_places_init(struct cli_ctx *cx, struct cli_places *pl, const char *store_root);
/* Overrides from options (NULL: keep); the same rules. */
int cli_places_set(struct cli_ctx *cx, struct cli_places *pl, const char *deployments, const char *state);
void cli_places_free(struct cli_places *pl);
/* The exit status of a command whose cli_engine failed: 2 for a refused --vault-secrets file, else 3. */
int cli_engine_exit(const struct cli_ctx *cx, const struct cli_places *pl);
/* --vault-secrets FILE (NULL: none): made canonical into pl->vault; EXIT_USAGE if it cannot be. */
int cli_places_vault(struct cli_ctx *cx, struct cli_places *pl, const char *vault);
struct vault;
/*
 * Reads pl->vault once into v (empty when there is none): EXIT_OK, or
 * EXIT_USAGE after printing why it is refused (its mode, its owner, its
 * JSON; vault.h). Freed with vault_free.
 */
int cli_read_vault(struct cli_ctx *cx, const struct cli_places *pl, struct vault *v);
/*
 * Opens the store (flags: STORE_CREATE to make it); on failure prints why
 * and returns EXIT_ERROR (no store, not a store) or EXIT_FAILURE_.
 */
int cli_open_store(struct cli_ctx *cx, struct store *s, const struct cli_places *pl, int flags);
/* A flag of cli_open_store: a store that does not exist is an empty one (store_view). */
#define CLI_STORE_MAY_BE_ABSENT (1 << 16)

struct engine;
/* The engine over st and the journal in pl->state; NULL after printing why. */
struct engine *cli_engine(struct cli_ctx *cx, const struct cli_places *pl, struct store *st);
struct op_result;
/* What the engine finished or undid on the stack before the op, on standard error. */
void cli_print_recovered(const struct op_result *r);

/*
 * Progress on standard error (progress.c; docs/cli.md, "Progress"). The
 * command owns one cli_progress, and a source per op it runs (a label,
 * "deploy Web"), passed to the engine as op_request.progress_arg with
 * progress = cli_progress_step and count = cli_progress_count; those two
 * are thread-safe. Clear before writing to standard output or error,
 * end when done.
 */
struct cli_progress {
	pthread_mutex_t mu;
	bool on;     /* shown at all */
	bool redraw; /* one line rewritten in place (a terminal), else a plain line per update */
	bool drawn;  /* a line is on the terminal, to clear */
	int width;   /* the terminal's columns */
	uint64_t last_ms;
};
struct cli_progress_src {
	struct cli_progress *p;
	const char *label;
	const char *step; /* the op's step now (the engine's name), or NULL */
};
void cli_progress_init(struct cli_progress *p, bool json);
void cli_progress_source(struct cli_progress_src *s, struct cli_progress *p, const char *label);
void cli_progress_step(void *src, const char *step, uint64_t op_id);
void cli_progress_count(void *src, const char *what, uint64_t done, uint64_t total, uint64_t bytes);
void cli_progress_clear(struct cli_progress *p);
void cli_progress_end(struct cli_progress *p);

struct build_located;
/* Adds the located problems of a build plan to prog as [E6] and prints all. */
void cli_report_located(struct cli_ctx *cx, struct pcl_program *prog, const struct build_located *l, size_t n);

/* Splits "a,b,c" into a malloc'd array of malloc'd strings. */
char **cli_split_commas(const char *s, size_t *n);
void cli_free_strings(char **v, size_t n);

struct bundle;
struct target_spec;
/* --mode's argument (docs/hosts.md); EXIT_USAGE after saying why. */
int cli_parse_mode(struct cli_ctx *cx, const char *arg, enum target_mode *mode);
/* Host mode's target side: reads and decodes the deployer's bundle from fd; EXIT_OK or the error printed. */
int cli_read_bundle(struct cli_ctx *cx, int fd, struct bundle *b);
/*
 * status and verify in host mode: the target's punix answers them. 0 when
 * no punix runs there and t->mode allows agentless (the caller reads over
 * SSH itself); 1 when handled, *rc its exit code.
 */
int cli_remote_read(struct cli_ctx *cx, const char *sub, const char *stack, const struct target_spec *t, const char *store_root,
		    const char *static_punix, int *rc);
/* The same for any command the target's punix runs (store gc): `punix ARGV...` there. */
int cli_remote_run(struct cli_ctx *cx, const char *const *argv, size_t n, const struct target_spec *t, const char *store_root,
		   const char *static_punix, int *rc);

int cmd_check(struct cli_ctx *cx, int argc, char **argv);
void cmd_check_help(void);
int cmd_build(struct cli_ctx *cx, int argc, char **argv);
void cmd_build_help(void);
int cmd_store(struct cli_ctx *cx, int argc, char **argv);
void cmd_store_help(void);
int cmd_service(struct cli_ctx *cx, int argc, char **argv);
void cmd_service_help(void);
/* `punix service`'s usage lines (help_service.c). */
extern const char cli_service_usage[];
/*
 * `punix service confirm STACK TOKEN`: gives the confirmation on the
 * target t reaches (cmd_service_host.c): here, or with t->ssh by the
 * target's punix (host mode); the exit code.
 */
struct target_spec;
/* The target's punix: tells its deployer (a line on standard error) that it waits for the confirmation. */
void cli_confirm_waiting(const char *stack);
int cli_service_confirm(struct cli_ctx *cx, const char *stack, const char *token, const struct target_spec *t,
			const char *dep, long wait_s, const char *store_root, const char *static_punix);
int cmd_journal(struct cli_ctx *cx, int argc, char **argv);
void cmd_journal_help(void);
int cmd_fleet(struct cli_ctx *cx, int argc, char **argv);
void cmd_fleet_help(void);
int cmd_host(struct cli_ctx *cx, int argc, char **argv);
void cmd_host_help(void);
int cmd_recover(struct cli_ctx *cx, int argc, char **argv);
void cmd_recover_help(void);

#endif
