/*
 * pcl.h - the PCL front end: parse, resolve, evaluate and check programs.
 *
 * A program is every source handed to pcl_program_add_source(), composed
 * into one flat namespace of modules. pcl_program_check() resolves
 * references, evaluates every module into plain values (struct pcl_value),
 * infers types, classifies modules by kind and checks each kind's schema.
 * Every problem becomes a located, coded diagnostic; checking never stops
 * at the first one.
 *
 * The front end is pure: it never touches the filesystem. Callers read the
 * sources (through the engine's effect seam) and pass the bytes in.
 *
 * Determinism: module and record-field order never matter. Modules are
 * evaluated in name order, record fields are stored sorted by name, and
 * diagnostics come out sorted by (file, line, column, code, message).
 */
#ifndef PUNIX_PCL_H
#define PUNIX_PCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../base/sbuf.h"
#include "../../engine/desc.h"

/* Error codes. The numbers are the user-visible [E#] and never change. */
enum pcl_code {
	PCL_E0 = 0,   /* syntax: lexical and grammatical errors */
	PCL_E1 = 1,   /* type mismatch */
	PCL_E2 = 2,   /* unknown field, module, member, or value of an enumeration */
	PCL_E3 = 3,   /* missing required field, something declared twice */
	PCL_E6 = 6,   /* right type, wrong shape */
	PCL_E7 = 7,   /* cycle, or a dependency that is not a package */
	PCL_E11 = 11, /* secret not set at deploy time (engine) */
	PCL_E12 = 12, /* rollback/set-current impossible (engine) */
	PCL_E13 = 13, /* a fixed_output source that is not its declared tree (build plan) */
	PCL_E14 = 14, /* no url_per_arch url for the machine built for (build plan) */
	PCL_E15 = 15, /* two packages with one pname */
};

/* 1-based line and column; columns count Unicode code points. */
struct pcl_loc {
	const char *file; /* owned by the program; NULL for "no location" */
	uint32_t line;
	uint32_t col;
};

struct pcl_diag {
	struct pcl_loc d_loc;
	int d_code;
	char *d_message;
	char *d_hint;            /* "did you mean 'x'?" or NULL */
	struct pcl_loc d_note_loc; /* a second site (E3, E15), file NULL if none */
	char *d_note;
};

/* Limits: each is a located error when exceeded, never a crash. */
#define PCL_MAX_SOURCE_BYTES ((size_t)64 * 1024 * 1024) /* one file */
#define PCL_MAX_DEPTH 128        /* nesting of records and lists */
#define PCL_MAX_REF_CHAIN 1000   /* references followed to reach one value */
#define PCL_MAX_DIAGS 1000       /* diagnostics kept; the rest are counted */

enum pcl_vkind {
	PCL_V_STR,
	PCL_V_INT,
	PCL_V_BOOL,
	PCL_V_LIST,
	PCL_V_REC,
	PCL_V_SECRET, /* { from_env = ".." }, { from_file = ".." } or { from_vault = ".." }: resolved when used */
	PCL_V_OUT,    /* Pkg.out: the store path of package module Pkg */
	PCL_V_FMT,    /* a Str composed with "${Pkg.out}": v_str with store paths left open (below) */
	PCL_V_ERROR,  /* poison left where an error was reported; never seen after a clean check */
};

enum pcl_secret_source {
	PCL_SECRET_ENV,
	PCL_SECRET_FILE,
	PCL_SECRET_VAULT, /* { from_vault = "NAME" }: an entry of the --vault-secrets file */
};

struct pcl_value;
struct pcl_type;

struct pcl_vfield {
	const char *f_name;
	struct pcl_loc f_loc; /* of the field name */
	struct pcl_value *f_value;
};

/*
 * A PCL_V_FMT value is a string that holds store paths, known only after a
 * build: v_str is its text with each package's store path written as
 * PCL_OUT_OPEN, the package module's name, PCL_OUT_CLOSE. No PCL string
 * can hold those two bytes (a string cannot contain raw control
 * characters and no escape writes them), so the encoding is unambiguous;
 * lowering hands it on as is (DESC_OUT_OPEN, DESC_OUT_CLOSE in desc.h).
 */
#define PCL_OUT_OPEN DESC_OUT_OPEN
#define PCL_OUT_CLOSE DESC_OUT_CLOSE

struct pcl_value {
	enum pcl_vkind v_kind;
	struct pcl_loc v_loc; /* where the value was written (or referenced) */
	const struct pcl_type *v_type; /* inferred type; private to the front end */
	union {
		struct {
			/* PCL_V_STR and PCL_V_FMT; NUL-terminated; PCL strings cannot hold NUL */
			const char *s;
			size_t len;
		} v_str;
		int64_t v_int;
		bool v_bool;
		struct {
			struct pcl_value **items;
			size_t n;
		} v_list;
		struct {
			struct pcl_vfield *fields; /* sorted by f_name, no duplicates */
			size_t n;
		} v_rec;
		struct {
			enum pcl_secret_source source;
			const char *name; /* variable name or absolute file path */
		} v_secret;
		struct {
			const char *module; /* a package module */
		} v_out;
	};
};

enum pcl_kind {
	PCL_KIND_DATA,
	PCL_KIND_PACKAGE,
	PCL_KIND_STACK,
	PCL_KIND_SERVICE,
	PCL_KIND_FLEET,
};

struct pcl_module {
	const char *m_name;
	struct pcl_loc m_loc;   /* of the module's name */
	enum pcl_kind m_kind;
	const struct pcl_value *m_value; /* a PCL_V_REC after a check */
};

struct pcl_program;

struct pcl_program *pcl_program_new(void);
void pcl_program_free(struct pcl_program *p);

/*
 * Lexes and parses one source. The bytes are copied as needed; buf may be
 * freed on return. Errors are recorded in the program.
 */
void pcl_program_add_source(struct pcl_program *p, const char *path, const char *buf, size_t len);

/* Records an error about a whole file (line and column 0 means none). */
__attribute__((format(printf, 4, 5))) void pcl_program_error(struct pcl_program *p, const char *path, int code,
							     const char *fmt, ...);

/* Resolves, evaluates and checks everything added. Returns the error count. */
size_t pcl_program_check(struct pcl_program *p);

size_t pcl_program_error_count(const struct pcl_program *p);
/* Diagnostics kept (at most PCL_MAX_DIAGS), sorted; valid after a check. */
size_t pcl_program_ndiags(const struct pcl_program *p);
const struct pcl_diag *pcl_program_diag(const struct pcl_program *p, size_t i);

/* Modules sorted by name; valid after a check. */
size_t pcl_program_nmodules(const struct pcl_program *p);
const struct pcl_module *pcl_program_module(const struct pcl_program *p, size_t i);
const struct pcl_module *pcl_program_find(const struct pcl_program *p, const char *name);

/* "file:line:col: error: [E#] message\n" plus hint and note lines. */
void pcl_diag_format(const struct pcl_diag *d, struct sbuf *out);

/* Records a located error found by a later stage (e.g. a source path). */
__attribute__((format(printf, 4, 5))) void pcl_program_error_at(struct pcl_program *p, struct pcl_loc loc, int code,
								const char *fmt, ...);
/* Sorts the diagnostics again after later stages added some. */
void pcl_program_sort_diags(struct pcl_program *p);

/* ---- lowering: what the store and engine consume ------------------------- */

/*
 * Every package module of a program that checked clean, sorted by module
 * name. Returns the count; *out is owned by the program.
 */
size_t pcl_program_packages(struct pcl_program *p, const struct pkg_desc **out);

/*
 * The stack module named name of a program that checked clean, or NULL if
 * there is none. Owned by the program.
 */
const struct stack_desc *pcl_program_stack(struct pcl_program *p, const char *name);

/* The fleet module named name of a program that checked clean, or NULL. Owned by the program. */
const struct fleet_desc *pcl_program_fleet(struct pcl_program *p, const char *name);

/*
 * A canonical, typed, unambiguous encoding of a value: equal values give
 * equal bytes, whatever order their record fields were written in. A
 * secret is encoded by reference (its source and name), never by value.
 */
void pcl_value_canonical(const struct pcl_value *v, struct sbuf *out);

/* Field lookup in a record value; NULL if absent or v is not a record. */
const struct pcl_value *pcl_value_field(const struct pcl_value *v, const char *name);
const char *pcl_kind_name(enum pcl_kind k);

#endif
