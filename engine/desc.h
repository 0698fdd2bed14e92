/*
 * desc.h - plain descriptions of what a program asks for, as the engine
 * consumes them. The PCL front end produces these (lowering); the engine
 * never sees PCL values, so the dependency stays one way:
 * frontends -> engine -> {journal, store}.
 */
#ifndef PUNIX_ENGINE_DESC_H
#define PUNIX_ENGINE_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where something was written: 1-based line and column. */
struct desc_loc {
	const char *file;
	uint32_t line;
	uint32_t col;
};

/*
 * A string of a service's args or environment, or a config file's content,
 * may hold the store path of a package, known only once it is built (PCL
 * "${Pkg.out}"): it is written there as DESC_OUT_OPEN, the package module's
 * name, DESC_OUT_CLOSE, and the backend puts the store path in its place
 * when it renders (backend_render). No string of a program can hold these
 * two bytes otherwise. The packages named so are in the stack's
 * store_modules, so they are built and pinned.
 */
#define DESC_OUT_OPEN '\x01'
#define DESC_OUT_CLOSE '\x02'

/* A package module. */
struct arch_source {
	const char *arch; /* "x86_64" */
	const char *url;
	const char *sha256;
};

struct pkg_desc {
	const char *module;
	struct desc_loc loc;     /* of the module's name */
	const char *pname;
	const char *version;
	const char *recipe;      /* "std.shell" */
	const char *args;        /* canonical encoding of recipeArgs */
	size_t args_len;
	const char *command;     /* std.shell's recipeArgs.command */
	const char *source_path; /* as written, or NULL for no source */
	const char *source_url;  /* a url source instead: the URL, or NULL */
	const char *source_sha256; /* its declared SHA-256, 64 lower-case hex digits (git, fixed_output: of the tree) */
	const char *source_git_url; /* a git source instead: the repository, or NULL */
	const char *source_git_tag; /* and the tag checked out */
	bool source_fixed;          /* fixed_output: source_path's tree must hash to source_sha256 */
	/* url_per_arch: a url and its hash per machine (`uname -m`), sorted by arch; the build takes its own */
	const struct arch_source *arch_sources;
	size_t narch_sources;
	struct desc_loc source_loc; /* of the path (or URL) string */
	/*
	 * A url source's token, by reference (docs/pcl.md, "Sources"):
	 * ENV_FROM_ENV, ENV_FROM_FILE or ENV_FROM_VAULT and its name, or
	 * source_token NULL for none. Resolved only when the file is fetched,
	 * sent as "Authorization: Bearer <token>"; never an input of the
	 * derivation.
	 */
	int source_token_kind; /* an enum env_kind */
	const char *source_token;
	const char *const *deps; /* package module names, sorted, unique */
	size_t ndeps;
};

/* An environment entry: a literal, or a secret named by reference. */
enum env_kind {
	ENV_LITERAL,
	ENV_FROM_ENV,  /* value: the variable's name */
	ENV_FROM_FILE, /* value: the file's absolute path */
	ENV_FROM_VAULT, /* value: the entry's name in the --vault-secrets file */
};

/* "literal", "from_env", "from_file" or "from_vault": as PCL writes the kind. */
static inline const char *env_kind_name(int kind)
{
	static const char *const names[] = {"literal", "from_env", "from_file", "from_vault"};
	return kind >= 0 && kind <= ENV_FROM_VAULT ? names[kind] : "?";
}

struct env_desc {
	const char *key;
	enum env_kind kind;
	const char *value;
};

/* A unit directive from serviceConfig or timer: Str, Bool (yes/no) or Int. */
enum directive_kind {
	DIRECTIVE_STR,
	DIRECTIVE_BOOL,
	DIRECTIVE_INT,
};

struct directive {
	const char *key;
	enum directive_kind kind;
	const char *s;
	bool b;
	int64_t i;
};

struct user_desc {
	const char *name;
	const char *group; /* or NULL */
	const char *home;  /* or NULL */
};

/*
 * A service's provisioning oneshot (docs/services.md, "State and rollback"):
 * <name>-provision.service runs <package>/bin/<binary> <args> once the
 * service is up, when activation applies a generation. Its environment is
 * literal only (the service's secrets reach it through the service's
 * EnvironmentFile=).
 */
struct provision_desc {
	struct desc_loc loc;  /* of the provision record */
	const char *package;  /* package module name (the service's by default) */
	const char *binary;
	const char *const *args;
	size_t nargs;
	const struct env_desc *env; /* ENV_LITERAL only, sorted by key */
	size_t nenv;
};

struct service_desc {
	const char *name;
	const char *package; /* package module name */
	const char *binary;
	const char *const *args;
	size_t nargs;
	const char *const *depends_on; /* service names, sorted */
	size_t ndepends_on;
	const struct env_desc *env; /* sorted by key */
	size_t nenv;
	const struct directive *config; /* serviceConfig, sorted by key */
	size_t nconfig;
	const struct directive *timer;  /* sorted by key */
	size_t ntimer;
	bool has_timer;
	const char *const *tmpfiles;
	size_t ntmpfiles;
	const struct provision_desc *provision; /* or NULL */
};

struct file_desc {
	const char *path; /* absolute, normal */
	const char *content;
	size_t len;
};

/* A stack module, its enabled services sorted by name, files by path. */
struct stack_desc {
	const char *name;
	struct desc_loc loc;
	const char *backend;
	const char *const *store_modules; /* package module names, sorted, unique */
	size_t nstore_modules;
	const struct service_desc *services;
	size_t nservices;
	const struct file_desc *files;
	size_t nfiles;
	const struct user_desc *users; /* sorted by name */
	size_t nusers;
	const char *const *groups;     /* sorted, unique */
	size_t ngroups;
	/* canonical encoding of the stack's value (secrets by reference only) */
	const char *source;
	size_t source_len;
};

/* One host of a fleet module, as written (docs/fleet.md). */
struct fleet_host {
	const char *file;    /* its program, relative to the fleet's file */
	const char *stack;   /* the stack module in that program */
	const char *target;  /* "local" or "ssh://USER@HOST[:PORT]" */
	const char *machine; /* its name, or NULL */
	struct desc_loc loc; /* of the host's record */
};

/* A fleet module: its hosts in the order declared. */
struct fleet_desc {
	const char *name;
	struct desc_loc loc;
	const struct fleet_host *hosts;
	size_t nhosts;
};

#endif
