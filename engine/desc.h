/*
 * desc.h - plain descriptions of what a program asks for, as the engine
 * consumes them. The PCL front end produces these (lowering); the engine
 * never sees PCL values, so the dependency stays one way:
 * frontends -> engine -> {journal, store}.
 */
#ifndef PUNIX_ENGINE_DESC_H
#define PUNIX_ENGINE_DESC_H

#include <stddef.h>
#include <stdint.h>

/* Where something was written: 1-based line and column. */
struct desc_loc {
	const char *file;
	uint32_t line;
	uint32_t col;
};

/* A package module. */
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
	struct desc_loc source_loc; /* of the path string */
	const char *const *deps; /* package module names, sorted, unique */
	size_t ndeps;
};

#endif
