/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The small base vocabulary shared by every module: cleanup attributes, ownership transfer,
 * array sizes, branch hints. Header-only; no dependencies beyond libc.
 */
#pragma once

#include <stddef.h>
#include <stdlib.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_     __attribute__((noreturn))
#define _pure_	       __attribute__((pure))
#define _must_check_   __attribute__((warn_unused_result))

/* Take ownership of a pointer out of a _cleanup_ variable: the variable is left NULL. */
#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) _tmp_ = (p); \
		(p) = NULL;                \
		_tmp_;                     \
	})

/* Declare a cleanup helper `fnp(type **)` that calls `fn(type *)` when non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, fn) \
	static inline void fn##p(type *p)     \
	{                                     \
		if (*p)                       \
			fn(*p);               \
	}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* <sys/param.h> may have defined these already, with the same meaning. */
#undef MIN
#undef MAX
#define MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MAX(a, b)	 ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) MIN(MAX((x), (lo)), (hi))
