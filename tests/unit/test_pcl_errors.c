/*
 * test_pcl_errors.c - every error code of the front end, from a minimal
 * program, with its exact location and message.
 *
 * Each case compares the whole output of a check, so a wrong code, line,
 * column or an extra cascade error fails the test.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "pcl_test_util.h"

static void expect(const char *src, const char *want)
{
	char *got = pcl_check_text(src);
	cr_expect_str_eq(got, want, "program:\n%s\n--- got:\n%s--- want:\n%s", src, got, want);
	free(got);
}

Test(errors, clean_program_is_ok)
{
	expect("module A { x = 1 }\n", "ok");
}
