/*
 * pcl_test_util.h - run the front end over in-memory sources in tests.
 */
#ifndef PUNIX_TEST_PCL_UTIL_H
#define PUNIX_TEST_PCL_UTIL_H

#include <stddef.h>

#include "frontends/pcl/pcl.h"

/*
 * Checks one source named "t.pcl" and returns every diagnostic formatted as
 * punix check prints it, or "ok". The result is malloc'd.
 */
char *pcl_check_text(const char *src);

/* The same over several files: names[i] holds srcs[i]. */
char *pcl_check_files(const char *const *names, const char *const *srcs, size_t n);

/* Parses and checks; the caller frees the program. */
struct pcl_program *pcl_checked(const char *src);

/*
 * A canonical text of every module's kind and value, without locations:
 * two programs that mean the same thing dump the same bytes.
 */
char *pcl_dump_program(const struct pcl_program *p);

#endif
