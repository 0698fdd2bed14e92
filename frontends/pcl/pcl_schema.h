/*
 * pcl_schema.h - what the schema checks share (pcl_schema*.c only).
 *
 * The schema is checked in three files, each calling only the ones below it:
 *
 *   pcl_schema.c         module kinds, each kind's module, cross-module rules
 *   pcl_schema_fields.c  the field tables of each kind and each field's check
 *   pcl_schema_sources.c a package's source, its types and their fields
 *   pcl_schema_core.c    the check context, type errors, checking a record
 *                        against a field table
 *
 * A field table points at field checks, and the check of a nested record
 * points back at a table: both stay inside pcl_schema_fields.c, so that
 * knot never becomes a cycle between files.
 */
#ifndef PUNIX_PCL_SCHEMA_H
#define PUNIX_PCL_SCHEMA_H

#include "pcl_internal.h"

struct sctx {
	struct pcl_program *p;
	const struct pcl_module *mod;
	struct sbuf path; /* "services[0].serviceConfig" */
};

typedef void (*check_fn)(struct sctx *c, const struct pcl_value *v);

struct fspec {
	const char *name;
	bool required;
	check_fn check;
};

/* Field tables are sorted by name (strcmp): a record is checked against one by a merge. */

/* A field table with its length, for the tables one file exports to another. */
struct ftable {
	const struct fspec *spec;
	size_t n;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- pcl_schema_core.c ------------------------------------------------- */

/* The path of the value being checked, for messages: push returns what pop takes. */
size_t pcl_path_push_field(struct sctx *c, const char *name);
size_t pcl_path_push_index(struct sctx *c, size_t i);
void pcl_path_pop(struct sctx *c, size_t saved);
const char *pcl_path_str(const struct sctx *c);

/* [E1] at v, expecting the type want; nothing for the poison of an earlier error. */
void pcl_mismatch(struct sctx *c, const struct pcl_value *v, const char *want);
bool pcl_want_str(struct sctx *c, const struct pcl_value *v);
/*
 * Where a string may hold store paths ("${Pkg.out}", or Pkg.out itself):
 * true for a Str or such a string (v_str to check), false for Pkg.out
 * itself (nothing to check) and after reporting anything else.
 */
bool pcl_want_str_or_out(struct sctx *c, const struct pcl_value *v);
bool pcl_want_list(struct sctx *c, const struct pcl_value *v, const char *want);
bool pcl_want_rec(struct sctx *c, const struct pcl_value *v);

void pcl_check_fields(struct sctx *c, const struct pcl_value *v, const struct fspec *spec, size_t nspec,
		      const char *const *skip);
void pcl_each_item(struct sctx *c, const struct pcl_value *v, check_fn fn);

/* [E6] at the string v: "'PATH' WHAT, got "V"", with an optional hint. */
void pcl_shape_error(struct sctx *c, const struct pcl_value *v, const char *what, const char *hint);

/* "a package", "a stack", ... for messages. */
const char *pcl_kind_article(enum pcl_kind k);

/* ---- pcl_schema_fields.c: each kind's top-level field table ------------ */

extern const struct ftable pcl_package_fields;
extern const struct ftable pcl_shell_args_fields; /* recipeArgs of recipe std.shell */
extern const struct ftable pcl_service_module_fields;
extern const struct ftable pcl_stack_fields;
extern const struct ftable pcl_fleet_fields;

/* ---- pcl_schema_sources.c ----------------------------------------------- */

/* A package's source record: its type's fields, each checked. */
void pcl_check_source(struct sctx *c, const struct pcl_value *v);

/* The rules of a service record that span its fields ('provision' with 'timer' or 'enable'). */
void pcl_check_service_rules(struct sctx *c, const struct pcl_value *rec);

#endif
