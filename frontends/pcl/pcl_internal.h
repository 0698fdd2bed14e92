/*
 * pcl_internal.h - what the parts of the front end share: the program, the
 * syntax tree, the lexer's tokens and the diagnostic sink.
 *
 * Pipeline: pcl_lex -> pcl_parse (syntax tree per source) -> pcl_eval
 * (references resolved, values built, list types unified) -> pcl_schema
 * (module kinds and their fields checked).
 *
 * Layering: which file may call which (functions, and the exported const
 * tables). Every file calls only files listed below it, so the calls between
 * files form a DAG: the pipeline is driven from the top by pcl_program.c
 * rather than each stage calling the next, and no stage calls back up.
 *
 *   pcl_program        pcl_parse, pcl_eval, pcl_schema, pcl_diag
 *   pcl_lower          pcl_lookup
 *   pcl_parse          pcl_lex, pcl_diag
 *   pcl_lex            pcl_diag
 *   pcl_schema         pcl_schema_fields, pcl_schema_core, pcl_lookup, pcl_diag
 *   pcl_schema_fields  pcl_schema_core, pcl_lookup, pcl_diag
 *   pcl_schema_core    pcl_eval (pcl_type_name only), pcl_lookup, pcl_diag
 *   pcl_eval           pcl_lookup, pcl_diag
 *   pcl_lookup         nothing (pcl_program_find, pcl_value_field)
 *   pcl_diag           nothing (pcl_error, hints, notes, pcl_show, pcl_suggest)
 *
 * The three pcl_schema files share pcl_schema.h; the rest share this
 * header. A lower file that needs something of a higher one gets it moved
 * down (as the lookups were, out of pcl_program.c) or passed in as a table
 * or callback, never by calling up.
 */
#ifndef PUNIX_PCL_INTERNAL_H
#define PUNIX_PCL_INTERNAL_H

#include <stdarg.h>

#include "../../base/arena.h"
#include "../../base/strmap.h"
#include "../../base/vec.h"
#include "pcl.h"

/* ---- syntax tree ---------------------------------------------------- */

enum pcl_node_kind {
	PCL_N_STR,
	PCL_N_INT,
	PCL_N_BOOL,
	PCL_N_REC,
	PCL_N_LIST,
	PCL_N_REF,
	PCL_N_FMT,   /* a string with ${...} in it */
	PCL_N_ERROR, /* where the parser gave up on an expression */
	PCL_N_BUSY,  /* being evaluated (a module-level field met again closes a cycle) */
	PCL_N_DONE,  /* evaluated: lit holds the value */
};

/*
 * One "${Module.field}" of a string: the reference, and where its value
 * goes in the string's literal text (the text with every ${...} taken out).
 */
struct pcl_interp {
	size_t at;            /* byte offset in the literal text */
	struct pcl_loc loc;   /* of the '$' */
	const char **parts;   /* Module, field, field... */
	struct pcl_loc *locs; /* of each part */
	size_t n;
};

/* Evaluation state of a whole module. */
enum pcl_eval_state {
	PCL_EVAL_TODO = 0,
	PCL_EVAL_BUSY,
	PCL_EVAL_DONE,
};

/*
 * A node of the syntax tree is also where its value goes: evaluation turns
 * each node into its value in place (kind PCL_N_DONE, the value in lit), so
 * a program holds one object per expression, not a node and a value. A
 * literal (STR, INT, BOOL) is parsed straight into lit; every other kind
 * has loc and its part of the union until it is evaluated, and lit after.
 *
 * The arrays are the value's arrays from the start: a record's fields are
 * pcl_vfields and a list's items pcl_value pointers, each pointing at the
 * lit of its node (node_of() gets back to the node), so evaluating a
 * record or list sorts or keeps them where they are.
 */
struct pcl_node {
	enum pcl_node_kind kind;
	union {
		struct pcl_value lit;
		struct {
			struct pcl_loc loc;
			union {
				struct {
					struct pcl_vfield *fields; /* in source order until evaluated */
					size_t n;
				} rec;
				struct {
					struct pcl_value **items;
					size_t n;
				} list;
				struct {
					const char **parts;
					struct pcl_loc *locs;
					size_t n;
				} ref;
				struct {
					const char *text; /* the literal parts, one after the other */
					size_t len;
					const struct pcl_interp *items; /* in order of 'at' */
					size_t n;
				} fmt;
			};
		};
	};
};

struct pcl_decl {
	const char *name;
	struct pcl_loc loc;
	struct pcl_node *body; /* PCL_N_REC */
	struct pcl_module module; /* the public view, filled by eval/schema */
	enum pcl_eval_state state; /* of the whole module */
	bool duplicate;            /* a later declaration of a taken name */
	size_t index;              /* of module in the program's modules (sorted by name) */
};

/* ---- the program ------------------------------------------------------ */

struct pcl_type;
struct pcl_tfield;

/* Every list and record type, once (pcl_eval.c): open addressing. */
struct pcl_types {
	const struct pcl_type **slots; /* NULL for a free slot */
	size_t cap;                    /* a power of two, or 0 */
	size_t n;
};

/* One copy of each identifier and short string (pcl_lex.c): open addressing. */
struct pcl_intern_slot {
	const char *s;  /* in the arena's strings; NULL for a free slot */
	uint64_t hash;  /* of s: a probe that meets another string never reads it */
};

struct pcl_intern {
	struct pcl_intern_slot *slots;
	size_t cap;     /* a power of two, or 0 */
	size_t n;
	/* the last string seen for each of 512 hash buckets: field names stay in cache */
	struct pcl_intern_slot recent[512];
};

struct pcl_program {
	struct arena arena;
	VEC(struct pcl_decl *) decls; /* every declaration, in input order */
	struct strmap by_name;        /* name -> first pcl_decl (in file/position order) */
	struct pcl_intern intern;     /* identifiers and short strings */
	struct pcl_types types;       /* list and record types */
	VEC(struct pcl_tfield) tscratch; /* a record type being looked up */
	VEC(const struct pcl_module *) modules; /* sorted by name, no duplicates */
	VEC(struct pcl_diag) diags;
	size_t nerrors;
	bool checked;
	/* lowered on first request */
	struct pkg_desc *packages;
	size_t npackages;
	/* evaluation stack, for cycle messages and the chain limit */
	VEC(const char *) eval_stack; /* the field's name, NULL for a whole module */
	VEC(const char *) eval_stack_mod;
	VEC(struct pcl_value *) eval_results; /* scratch: module fields being evaluated */
	int value_depth;     /* records and lists being evaluated, references followed */
	bool deep_reported;  /* one error for values nested too deep through references */
};

/*
 * Records an error. Returns the diagnostic for adding a hint or note, or
 * NULL when it was only counted (past PCL_MAX_DIAGS); pcl_diag_hint and
 * pcl_diag_note accept NULL.
 */
__attribute__((format(printf, 4, 5))) struct pcl_diag *pcl_error(struct pcl_program *p, struct pcl_loc loc, int code,
								 const char *fmt, ...);
struct pcl_diag *pcl_verror(struct pcl_program *p, struct pcl_loc loc, int code, const char *fmt, va_list ap);
__attribute__((format(printf, 2, 3))) void pcl_diag_hint(struct pcl_diag *d, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void pcl_diag_note(struct pcl_diag *d, struct pcl_loc loc, const char *fmt,
							 ...);
void pcl_diags_sort(struct pcl_program *p);
void pcl_diags_free(struct pcl_program *p);

/* s as a message shows it: quoted, escaped to one line, cut at 80 characters (in the arena). */
const char *pcl_show(struct pcl_program *p, const char *s);

/* The closest candidate to word within a small edit distance, or NULL. */
const char *pcl_suggest(const char *word, const char *const *cands, size_t n);

/* ---- lexer ------------------------------------------------------------ */

enum pcl_tok_kind {
	PCL_T_EOF,
	PCL_T_IDENT,
	PCL_T_STRING,
	PCL_T_INT,
	PCL_T_LBRACE,
	PCL_T_RBRACE,
	PCL_T_LBRACK,
	PCL_T_RBRACK,
	PCL_T_EQ,
	PCL_T_COMMA,
	PCL_T_SEMI,
	PCL_T_DOT,
	PCL_T_BAD, /* a lexical error already reported */
};

struct pcl_token {
	enum pcl_tok_kind kind;
	struct pcl_loc loc;
	const char *text; /* IDENT, STRING: in the arena, NUL-terminated */
	size_t len;
	const struct pcl_interp *interp; /* STRING: its ${...}, in the arena */
	size_t ninterp;
	int64_t ival;
};

struct pcl_lexer {
	struct pcl_program *prog;
	const char *file;
	const unsigned char *buf;
	size_t len;
	size_t pos;
	uint32_t line;
	uint32_t col;
	size_t errors;       /* lexical errors reported so far */
	struct sbuf scratch; /* string decoding */
	VEC(struct pcl_interp) interps; /* the ${...} of the string being read */
	VEC(const char *) iparts;       /* their references' parts, one after the other */
	VEC(struct pcl_loc) ilocs;
};

void pcl_lex_init(struct pcl_lexer *lx, struct pcl_program *p, const char *file, const char *buf, size_t len);
void pcl_lex_fini(struct pcl_lexer *lx);
void pcl_lex_next(struct pcl_lexer *lx, struct pcl_token *t);
const char *pcl_tok_describe(const struct pcl_token *t, char *buf, size_t size);

/* ---- parser, evaluator, schema ---------------------------------------- */

void pcl_parse(struct pcl_program *p, const char *file, const char *buf, size_t len);
void pcl_eval_all(struct pcl_program *p);
void pcl_schema_check(struct pcl_program *p);

/* The type of a value as PCL writes it ("Str", "List<Int>", "Rec{a: Str}"). */
void pcl_type_name(const struct pcl_value *v, struct sbuf *out);

#endif
