/*
 * backend_names.h - the names of the backends a stack may name
 * (`backend = "..."`), in the order the engine's table (engine/backends.c)
 * has them. The PCL front end checks against this list without depending
 * on the engine; a unit test checks that the engine's table and this list
 * agree, name for name.
 */
#ifndef PUNIX_BASE_BACKEND_NAMES_H
#define PUNIX_BASE_BACKEND_NAMES_H

/* For an initializer: static const char *const names[] = {PUNIX_BACKEND_NAMES}; */
#define PUNIX_BACKEND_NAMES "systemd", "supervisord", "launchd"
/* The same, for a message: "supported: " PUNIX_BACKENDS_SUPPORTED. */
#define PUNIX_BACKENDS_SUPPORTED "systemd, supervisord, launchd"

#endif
