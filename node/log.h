/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for node/ and cmd/ only (the pure core never logs). One line per event on stderr, with
 * a syslog level and a short group ("http", "fetch", "cache", "config", "store", "inventory"), and
 * the subject named in the text (peer, CertID short hex, upstream URL). Under systemd (stderr
 * connected to the journal) lines carry the "<N>" level prefix journald understands; on a
 * terminal they carry a UTC timestamp and the level name instead.
 *
 * The level is checked before any formatting, so disabled debug lines cost one comparison.
 */
#pragma once

#include <syslog.h>

#include "proto/macro.h"

extern int log_max_level;

void log_setup(int max_level);
void log_emit(int level, const char *group, const char *fmt, ...) _printf_(3, 4);

#define log_at(level, group, ...)                                \
	do {                                                     \
		if ((level) <= log_max_level)                    \
			log_emit((level), (group), __VA_ARGS__); \
	} while (0)

#define log_debug(group, ...)	log_at(LOG_DEBUG, group, __VA_ARGS__)
#define log_info(group, ...)	log_at(LOG_INFO, group, __VA_ARGS__)
#define log_notice(group, ...)	log_at(LOG_NOTICE, group, __VA_ARGS__)
#define log_warning(group, ...) log_at(LOG_WARNING, group, __VA_ARGS__)
#define log_err(group, ...)	log_at(LOG_ERR, group, __VA_ARGS__)
#define log_crit(group, ...)	log_at(LOG_CRIT, group, __VA_ARGS__)
