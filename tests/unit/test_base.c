/*
 * test_base.c - the shared helpers: UTF-8 strictness, the string map,
 * the string buffer and the arena.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/sbuf.h"
#include "base/strmap.h"
#include "base/utf8.h"

Test(utf8, accepts_valid_and_rejects_the_rest)
{
	cr_expect(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
	cr_expect(!utf8_valid("\xc0\xaf", 2), "overlong");
	cr_expect(!utf8_valid("\xed\xa0\x80", 3), "surrogate");
	cr_expect(!utf8_valid("\xf4\x90\x80\x80", 4), "above U+10FFFF");
	cr_expect(!utf8_valid("\xe2\x82", 2), "truncated");
	cr_expect(!utf8_valid("\x80", 1), "lone continuation");
}

Test(strmap, put_get_and_growth)
{
	struct strmap m;
	strmap_init(&m);
	static char keys[5000][16];
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		cr_assert_null(strmap_put(&m, keys[i], keys[i]));
	}
	for (int i = 0; i < 5000; i++)
		cr_assert_eq(strmap_get(&m, keys[i]), keys[i]);
	cr_expect_eq(strmap_put(&m, "k7", NULL), keys[7], "existing value is kept and returned");
	cr_expect_null(strmap_get(&m, "missing"));
	strmap_free(&m);
}

Test(sbuf, printf_append_detach)
{
	struct sbuf sb = SBUF_INIT;
	cr_expect_str_eq(sbuf_str(&sb), "");
	sbuf_printf(&sb, "%d-%s", 42, "x");
	sbuf_append(&sb, "\0y", 2);
	cr_expect_eq(sb.sb_len, 6);
	size_t len;
	char *s = sbuf_detach(&sb, &len);
	cr_expect_eq(len, 6);
	cr_expect_eq(memcmp(s, "42-x\0y", 6), 0);
	free(s);
	cr_expect_null(sb.sb_buf);
}

Test(arena, large_and_small_allocations_are_zeroed_and_aligned)
{
	struct arena a;
	arena_init(&a);
	for (int i = 0; i < 10000; i++) {
		size_t n = (size_t)(i % 7 == 0 ? 100000 : i % 13 + 1);
		unsigned char *p = arena_alloc(&a, n);
		cr_assert_eq((uintptr_t)p % 16, 0);
		cr_assert_eq(p[0], 0);
		cr_assert_eq(p[n - 1], 0);
		memset(p, 0xAB, n);
	}
	cr_expect_str_eq(arena_strndup(&a, "hello", 3), "hel");
	arena_free(&a);
}
