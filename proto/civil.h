/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Civil calendar arithmetic, without the C library's time zone machinery (timegm/mktime read the
 * environment and the clock's configuration; proto/ must not). Header-only.
 */
#pragma once

#include <stdint.h>

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12, d 1..31). */
static inline int64_t civil_days(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}
