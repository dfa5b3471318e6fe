/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `stapled health [URL]`: one HTTP/1.0 GET against a running node's /healthz, for container
 * health checks and scripts on hosts without curl. It is deliberately tiny and blocking: a plain
 * TCP socket, one deadline for the whole exchange, and only the status line is read. Exit 0 when
 * the status is 200, 1 for any other answer or no answer, 2 for a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int health_main(int argc, char **argv);

#define HEALTH_DEFAULT_URL "http://127.0.0.1:8890/healthz"

struct health_url {
	char host[256]; /* without the brackets of an IPv6 literal */
	char port[8];
	char hostport[272]; /* as written in the URL, for the Host header */
	const char *path;
};

/* http://HOST[:PORT][/PATH], HOST possibly "[IPV6]". Only plain HTTP: the admin listener does
 * not speak TLS, and a health check should not need a CA bundle. */
static int health_url_parse(const char *url, struct health_url *ret)
{
	struct health_url u = {0};
	static const char scheme[] = "http://";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return -EPROTONOSUPPORT;
	const char *auth = url + sizeof(scheme) - 1;
	const char *slash = strchr(auth, '/');
	size_t auth_len = slash ? (size_t)(slash - auth) : strlen(auth);
	u.path = slash ? slash : "/";
	if (auth_len == 0 || auth_len >= sizeof(u.hostport))
		return -EINVAL;
	memcpy(u.hostport, auth, auth_len);
	u.hostport[auth_len] = '\0';

	const char *host = u.hostport, *port = NULL;
	size_t host_len;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (!close)
			return -EINVAL;
		host++;
		host_len = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
	} else {
		const char *colon = strchr(host, ':');
		host_len = colon ? (size_t)(colon - host) : strlen(host);
		if (colon)
			port = colon + 1;
	}
	if (host_len == 0 || host_len >= sizeof(u.host))
		return -EINVAL;
	memcpy(u.host, host, host_len);
	u.host[host_len] = '\0';
	if (!port)
		port = "80";
	size_t port_len = strlen(port);
	if (port_len == 0 || port_len >= sizeof(u.port) || strspn(port, "0123456789") != port_len)
		return -EINVAL;
	memcpy(u.port, port, port_len + 1);
	*ret = u;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 0 when ready, -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* A non-blocking connect to one address, finished within the deadline. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ms, int *ret_fd)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto fail;
		}
		r = wait_fd(fd, POLLOUT, deadline_ms);
		if (r < 0)
			goto fail;
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			r = -soerr;
			goto fail;
		}
	}
	*ret_fd = fd;
	return 0;
fail:
	close(fd);
	return r;
}

/* Sends the request and reads up to the end of the status line; the HTTP status or -errno. */
static int exchange(int fd, const struct health_url *u, int64_t deadline_ms, char *line,
		    size_t line_size)
{
	char req[1024];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: stapled-health\r\n"
			 "Connection: close\r\n\r\n",
			 u->path, u->hostport);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EMSGSIZE;
	size_t off = 0;
	while (off < (size_t)n) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int r = wait_fd(fd, POLLOUT, deadline_ms);
			if (r < 0)
				return r;
			continue;
		}
		off += (size_t)w;
	}

	size_t len = 0;
	char *eol = NULL;
	while (!eol && len + 1 < line_size) {
		int r = wait_fd(fd, POLLIN, deadline_ms);
		if (r < 0)
			return r;
		ssize_t got = recv(fd, line + len, line_size - 1 - len, 0);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -errno;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		line[len] = '\0';
		eol = strstr(line, "\r\n");
	}
	line[len] = '\0';
	if (eol)
		*eol = '\0';
	else if (!len)
		return -ECONNRESET;

	/* "HTTP/1.x NNN reason"; strncmp and the digit checks stop at the NUL of a short line. */
	if (strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) || line[8] != ' ')
		return -EPROTO;
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (!isdigit((unsigned char)line[i]))
			return -EPROTO;
		status = status * 10 + (line[i] - '0');
	}
	if (line[12] != ' ' && line[12] != '\0')
		return -EPROTO;
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: stapled health [--timeout SECONDS] [URL]\n"
		   "GET URL (default " HEALTH_DEFAULT_URL ") over HTTP/1.0.\n"
		   "Exit status: 0 on HTTP 200, 1 on any other answer or none, 2 usage error.\n");
}

int health_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	double timeout_s = 3;
	int c;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;
			timeout_s = strtod(optarg, &end);
			if (end == optarg || *end || !(timeout_s > 0 && timeout_s <= 300)) {
				fprintf(stderr,
					"stapled health: --timeout: expected 0 < SECONDS <= "
					"300, got \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	const char *url = optind < argc ? argv[optind] : HEALTH_DEFAULT_URL;
	struct health_url u;
	int r = health_url_parse(url, &u);
	if (r < 0) {
		fprintf(stderr, "stapled health: %s: %s\n", url,
			r == -EPROTONOSUPPORT ? "only http:// URLs are supported"
					      : "expected http://HOST[:PORT][/PATH]");
		return 2;
	}

	int64_t deadline_ms = now_ms() + (int64_t)(timeout_s * 1000);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(u.host, u.port, &hints, &res);
	if (gai != 0) {
		fprintf(stderr, "stapled health: %s: %s\n", u.host,
			gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
		return 1;
	}
	int fd = -1;
	r = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		r = connect_one(ai, deadline_ms, &fd);
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "stapled health: %s: connect: %s\n", url, strerror(-r));
		return 1;
	}
	char line[512];
	int status = exchange(fd, &u, deadline_ms, line, sizeof(line));
	close(fd);
	if (status < 0) {
		fprintf(stderr, "stapled health: %s: %s\n", url,
			status == -EPROTO ? "not an HTTP response" : strerror(-status));
		return 1;
	}
	if (status != 200) {
		fprintf(stderr, "stapled health: %s: %s\n", url, line);
		return 1;
	}
	printf("%s: %s\n", url, line);
	return 0;
}
