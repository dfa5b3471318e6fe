/* SPDX-License-Identifier: Apache-2.0 */
#include "node/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_max_level = LOG_INFO;
static bool log_journal;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void log_setup(int max_level)
{
	log_max_level = CLAMP(max_level, LOG_EMERG, LOG_DEBUG);
	/* systemd sets JOURNAL_STREAM when stderr is the journal: it parses "<N>" prefixes. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_emit(int level, const char *group, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	level = CLAMP(level, LOG_EMERG, LOG_DEBUG);

	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>%s: ", level, group);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      ".%03ldZ %s %s: ", ts.tv_nsec / 1000000, level_names[level],
				      group);
	}
	if (n >= sizeof(line))
		n = sizeof(line) - 1;

	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m > 0)
		n = MIN(n + (size_t)m, sizeof(line) - 2);
	/* One event, one line: a newline inside a message (from a peer's bytes) is flattened. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* A single write keeps lines whole when several processes share the terminal. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
