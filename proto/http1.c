/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/http1.h"

#include <errno.h>
#include <string.h>

#include "proto/macro.h"

/*
 * Character classes (RFC 9110 §5.6.2, §5.5; RFC 9112 §3.2). One table lookup per byte keeps the
 * header loop free of function calls and branches on ranges.
 */
enum {
	C_TCHAR = 1u << 0,  /* token */
	C_VALUE = 1u << 1,  /* field-vchar / SP / HTAB / obs-text: what a field value may hold */
	C_TARGET = 1u << 2, /* visible ASCII: what a request-target may hold */
	C_HEX = 1u << 3,
	C_DIGIT = 1u << 4,
	C_OWS = 1u << 5,
};

#define TV  (C_TCHAR | C_VALUE | C_TARGET)
#define VT  (C_VALUE | C_TARGET)
#define DIG (TV | C_HEX | C_DIGIT)
#define HEX (TV | C_HEX)

static const uint8_t cls[256] = {
	['\t'] = C_VALUE | C_OWS,
	[' '] = C_VALUE | C_OWS,
	['!'] = TV,
	['"'] = VT,
	['#' ... '\''] = TV,
	['(' ... ')'] = VT,
	['*' ... '+'] = TV,
	[','] = VT,
	['-' ... '.'] = TV,
	['/'] = VT,
	['0' ... '9'] = DIG,
	[':' ... '@'] = VT,
	['A' ... 'F'] = HEX,
	['G' ... 'Z'] = TV,
	['[' ... ']'] = VT,
	['^' ... '`'] = TV,
	['a' ... 'f'] = HEX,
	['g' ... 'z'] = TV,
	['{'] = VT,
	['|'] = TV,
	['}'] = VT,
	['~'] = TV,
	[0x80 ... 0xff] = C_VALUE,
};

#undef TV
#undef VT
#undef DIG
#undef HEX

/*
 * Compares a header name (already checked to be a token) with a lowercase literal of the same
 * length. OR-ing 0x20 folds letters and leaves '-' and digits alone; no other token byte can fold
 * onto a letter or '-'.
 */
static inline bool name_is(const uint8_t *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)(p[i] | 0x20) != (uint8_t)lit[i])
			return false;
	return true;
}

static inline uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c;
}

static inline bool mem_eq_ci_n(const uint8_t *p, size_t n, const char *lit, size_t l)
{
	if (n != l)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != lower((uint8_t)lit[i]))
			return false;
	return true;
}
/* Case-insensitive comparison with a string literal, its length known at compile time. */
#define EQ_LIT(p, n, lit) mem_eq_ci_n((p), (n), (lit), sizeof(lit) - 1)

bool http1_str_eq(struct http1_str s, const char *lit)
{
	if (!s.p)
		return false;
	return mem_eq_ci_n((const uint8_t *)s.p, s.len, lit, strlen(lit));
}

/*
 * Runs `body` with e/elen set to each non-empty element of a comma-separated list
 * (RFC 9110 §5.6.1), trimmed of optional whitespace. Quoted commas are not special: the lists
 * parsed here (Connection, Transfer-Encoding) hold tokens only.
 */
#define FOREACH_LIST_ELEMENT(v, n, e, elen, body)                     \
	do {                                                          \
		size_t _i = 0;                                        \
		while (_i < (n)) {                                    \
			size_t _s = _i;                               \
			while (_i < (n) && (v)[_i] != ',')            \
				_i++;                                 \
			size_t _e = _i;                               \
			_i++;                                         \
			while (_s < _e && (cls[(v)[_s]] & C_OWS))     \
				_s++;                                 \
			while (_e > _s && (cls[(v)[_e - 1]] & C_OWS)) \
				_e--;                                 \
			if (_s == _e)                                 \
				continue;                             \
			const uint8_t *e = (v) + _s;                  \
			size_t elen = _e - _s;                        \
			body                                          \
		}                                                     \
	} while (0)

/* What the header loop gathers beyond the request fields themselves. */
struct hstate {
	size_t nheaders;
	bool have_cl;
	bool have_te;
	bool te_last_chunked;
	unsigned te_chunked;
	bool te_other;
	bool conn_close;
	bool conn_keep_alive;
};

/*
 * Word-at-a-time tests (eight bytes in a uint64_t): whether any byte is below n (n <= 128), above
 * n (n <= 127), or zero. Borrows and carries can misplace the flag but never create or hide one,
 * and only the existence is used.
 */
#define ONES	       UINT64_C(0x0101010101010101)
#define HIGHS	       (ONES * 0x80)
#define HAS_LESS(x, n) (((x)-ONES * (n)) & ~(x)&HIGHS)
#define HAS_MORE(x, n) ((((x) + ONES * (127 - (n))) | (x)) & HIGHS)
#define HAS_ZERO(x)    (((x)-ONES) & ~(x)&HIGHS)

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t x;
	memcpy(&x, p, sizeof(x));
	return x;
}

/*
 * The first position in [p, end) that is not a field-value byte, or end. Values are mostly plain
 * text: whole words without a control byte are skipped, the rest is checked byte by byte.
 */
static inline size_t scan_value(const uint8_t *buf, size_t p, size_t end)
{
	for (;;) {
		while (end - p >= 8) {
			uint64_t x = load64(buf + p);
			if (HAS_LESS(x, 0x20) | HAS_ZERO(x ^ (ONES * 0x7f)))
				break;
			p += 8;
		}
		size_t stop = end - p > 8 ? p + 8 : end;
		while (p < stop && (cls[buf[p]] & C_VALUE))
			p++;
		if (p < stop || p == end)
			return p;
	}
}

/* The same for request-target bytes (visible ASCII). */
static inline size_t scan_target(const uint8_t *buf, size_t p, size_t end)
{
	while (end - p >= 8) {
		uint64_t x = load64(buf + p);
		if (HAS_LESS(x, 0x21) | HAS_MORE(x, 0x7e))
			break;
		p += 8;
	}
	while (p < end && (cls[buf[p]] & C_TARGET))
		p++;
	return p;
}

/*
 * The parse walks the bytes once, in order, and stops at the first byte that is wrong; reaching
 * `end` (the end of the data or of the section's byte limit) before a decision means "need
 * more". So an error is found at the same byte however the input was split into reads, and a
 * request that will not fit is refused as soon as the limit is reached.
 * Step functions return 1 when done, 0 when they reached `end`, or an error.
 */

/* A line end at p: CRLF, or a bare LF as most servers accept; never a bare CR. */
static inline int line_end(const uint8_t *buf, size_t p, size_t end, size_t *ret_next)
{
	if (p == end)
		return 0;
	if (buf[p] == '\n') {
		*ret_next = p + 1;
		return 1;
	}
	if (buf[p] != '\r')
		return -EBADMSG;
	if (p + 1 == end)
		return 0;
	if (buf[p + 1] != '\n')
		return -EBADMSG;
	*ret_next = p + 2;
	return 1;
}

/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3) */
static int parse_request_line(const uint8_t *buf, size_t pos, size_t end, struct http1_request *r,
			      size_t *ret_next)
{
	size_t p = pos;
	while (p < end && (cls[buf[p]] & C_TCHAR))
		p++;
	if (p == end)
		return 0;
	if (p == pos || buf[p] != ' ')
		return -EBADMSG;
	size_t method_end = p;

	size_t t = ++p;
	p = scan_target(buf, p, end);
	if (p == end)
		return 0;
	if (p == t || buf[p] != ' ')
		return -EBADMSG;
	size_t target_end = p;

	static const char pattern[] = "HTTP/#.#"; /* '#': a digit */
	const uint8_t *v = buf + ++p;
	for (size_t i = 0; i < 8; i++, p++) {
		if (p == end)
			return 0;
		if (pattern[i] == '#' ? !(cls[buf[p]] & C_DIGIT) : buf[p] != (uint8_t)pattern[i])
			return -EBADMSG;
	}
	int k = line_end(buf, p, end, ret_next);
	if (k <= 0)
		return k;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return -ENOTSUP;
	r->version_minor = v[7] - '0';

	const uint8_t *m = buf + pos;
	size_t ml = method_end - pos;
	r->method_token = (struct http1_str){(const char *)m, ml};
	r->target = (struct http1_str){(const char *)buf + t, target_end - t};
	/* Methods are case-sensitive (RFC 9110 §9.1). */
	if (ml == 3 && memcmp(m, "GET", 3) == 0)
		r->method = HTTP1_GET;
	else if (ml == 4 && memcmp(m, "POST", 4) == 0)
		r->method = HTTP1_POST;
	else if (ml == 4 && memcmp(m, "HEAD", 4) == 0)
		r->method = HTTP1_HEAD;
	else
		r->method = HTTP1_OTHER;
	return 1;
}

struct field {
	const uint8_t *name;
	size_t name_len;
	const uint8_t *value; /* trimmed */
	size_t value_len;
};

/*
 * One line of a header or trailer section at pos: returns 1 with *ret_end_of_section set when it
 * is the empty line ending the section, else with the field; 0 at `end`; or an error.
 * `nfields` counts field lines against max_headers.
 */
static inline int parse_field_line(const uint8_t *buf, size_t pos, size_t end, size_t *nfields,
				   size_t max_fields, struct field *ret, bool *ret_end_of_section,
				   size_t *ret_next)
{
	if (pos == end)
		return 0;
	uint8_t c = buf[pos];
	if (c == '\r' || c == '\n') {
		*ret_end_of_section = true;
		return line_end(buf, pos, end, ret_next);
	}
	if (cls[c] & C_OWS)
		return -EBADMSG; /* obs-fold (RFC 9112 §5.2), or whitespace before a first name */
	if (*nfields >= max_fields)
		return -EMSGSIZE;

	size_t p = pos;
	while (p < end && (cls[buf[p]] & C_TCHAR))
		p++;
	if (p == end)
		return 0;
	/* Also refuses whitespace between the name and the colon (RFC 9112 §5.1). */
	if (p == pos || buf[p] != ':')
		return -EBADMSG;
	size_t name_end = p++;
	while (p < end && (cls[buf[p]] & C_OWS))
		p++;
	size_t v = p;
	p = scan_value(buf, p, end);
	int k = line_end(buf, p, end, ret_next); /* any other byte is a control: refused */
	if (k <= 0)
		return k;
	while (p > v && (cls[buf[p - 1]] & C_OWS))
		p--;
	(*nfields)++;
	*ret_end_of_section = false;
	*ret = (struct field){buf + pos, name_end - pos, buf + v, p - v};
	return 1;
}

/* A chunk-size line: the line whose '\n' lies before `end`, with its content end. */
static inline bool find_line(const uint8_t *buf, size_t pos, size_t end, size_t *ret_eol,
			     size_t *ret_next)
{
	if (pos >= end)
		return false;
	const uint8_t *nl = memchr(buf + pos, '\n', end - pos);
	if (!nl)
		return false;
	size_t n = (size_t)(nl - buf);
	*ret_next = n + 1;
	if (n > pos && buf[n - 1] == '\r')
		n--;
	*ret_eol = n;
	return true;
}

static int set_singleton(struct http1_str *s, const uint8_t *v, size_t vlen)
{
	if (s->p) {
		if (s->len != vlen || memcmp(s->p, v, vlen) != 0)
			return -EBADMSG;
		return 0;
	}
	*s = (struct http1_str){(const char *)v, vlen};
	return 0;
}

static int parse_content_length(const uint8_t *v, size_t vlen, int64_t *ret)
{
	if (vlen == 0)
		return -EBADMSG;
	int64_t n = 0;
	for (size_t i = 0; i < vlen; i++) {
		if (!(cls[v[i]] & C_DIGIT))
			return -EBADMSG;
		int d = v[i] - '0';
		if (n > (INT64_MAX - d) / 10)
			return -EBADMSG;
		n = n * 10 + d;
	}
	*ret = n;
	return 0;
}

static int on_header(const uint8_t *name, size_t nlen, const uint8_t *v, size_t vlen,
		     struct http1_request *r, struct hstate *h)
{
	switch (nlen) {
	case 4:
		if (name_is(name, "host", 4))
			return set_singleton(&r->host, v, vlen);
		break;
	case 6:
		if (name_is(name, "expect", 6) && EQ_LIT(v, vlen, "100-continue"))
			r->expect_continue = true;
		break;
	case 10:
		if (name_is(name, "connection", 10)) {
			FOREACH_LIST_ELEMENT(v, vlen, e, elen, {
				if (EQ_LIT(e, elen, "close"))
					h->conn_close = true;
				else if (EQ_LIT(e, elen, "keep-alive"))
					h->conn_keep_alive = true;
			});
		}
		break;
	case 12:
		if (name_is(name, "content-type", 12) && !r->content_type.p)
			r->content_type = (struct http1_str){(const char *)v, vlen};
		else if (name_is(name, "stapled-hops", 12) && !r->stapled_hops.p)
			r->stapled_hops = (struct http1_str){(const char *)v, vlen};
		break;
	case 13:
		if (name_is(name, "if-none-match", 13) && !r->if_none_match.p)
			r->if_none_match = (struct http1_str){(const char *)v, vlen};
		break;
	case 19:
		if (name_is(name, "stapled-want-issuer", 19) && !r->stapled_want_issuer.p)
			r->stapled_want_issuer = (struct http1_str){(const char *)v, vlen};
		break;
	case 14:
		if (name_is(name, "stapled-origin", 14)) {
			if (!r->stapled_origin.p)
				r->stapled_origin = (struct http1_str){(const char *)v, vlen};
			break;
		}
		if (name_is(name, "stapled-issuer", 14)) {
			if (!r->stapled_issuer.p)
				r->stapled_issuer = (struct http1_str){(const char *)v, vlen};
			break;
		}
		if (name_is(name, "content-length", 14)) {
			int64_t n;
			int k = parse_content_length(v, vlen, &n);
			if (k < 0)
				return k;
			if (h->have_cl && r->content_length != n)
				return -EBADMSG;
			h->have_cl = true;
			r->content_length = n;
		}
		break;
	case 17:
		if (name_is(name, "if-modified-since", 17)) {
			if (!r->if_modified_since.p)
				r->if_modified_since = (struct http1_str){(const char *)v, vlen};
		} else if (name_is(name, "stapled-forwarded", 17)) {
			if (!r->stapled_forwarded.p)
				r->stapled_forwarded = (struct http1_str){(const char *)v, vlen};
		} else if (name_is(name, "transfer-encoding", 17)) {
			h->have_te = true;
			h->te_last_chunked = false;
			FOREACH_LIST_ELEMENT(v, vlen, e, elen, {
				if (EQ_LIT(e, elen, "chunked")) {
					h->te_chunked++;
					h->te_last_chunked = true;
				} else {
					h->te_other = true;
					h->te_last_chunked = false;
				}
			});
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Decides the body framing once the header block is complete (RFC 9112 §6). */
static int check_framing(struct http1_request *r, const struct hstate *h, const uint8_t *scratch,
			 const struct http1_limits *limits)
{
	if (r->version_minor == 1 && !r->host.p)
		return -EBADMSG; /* RFC 9112 §3.2 */
	if (h->have_te) {
		/* Both lengths, or chunked not last or repeated: the framing is ambiguous, the
		 * classic request-smuggling vectors (RFC 9112 §6.1, §6.3). */
		if (h->have_cl || r->version_minor == 0 || !h->te_last_chunked ||
		    h->te_chunked != 1)
			return -EBADMSG;
		if (h->te_other || !scratch)
			return -ENOTSUP;
		r->chunked = true;
		return 0;
	}
	if (h->have_cl && (uint64_t)r->content_length > limits->max_body_bytes)
		return -EFBIG;
	return 0;
}

/*
 * Decodes a chunked body starting at pos into scratch (RFC 9112 §7.1). Chunk framing (size lines
 * with their extensions and the line ends after data) may take at most max_header_bytes, so that
 * one-byte chunks cannot make the stateless re-parse expensive; trailers count against the
 * header block's limits and are otherwise ignored.
 */
static int parse_chunked(const uint8_t *buf, size_t len, size_t pos,
			 const struct http1_limits *limits, size_t header_left, size_t nheaders,
			 uint8_t *scratch, size_t *ret_body_len, size_t *ret_end)
{
	size_t out = 0, framing = 0;

	for (;;) {
		size_t budget = limits->max_header_bytes - MIN(framing, limits->max_header_bytes);
		size_t end = len - pos > budget ? pos + budget : len;
		size_t eol, next;
		if (!find_line(buf, pos, end, &eol, &next))
			return len - pos >= budget ? -EFBIG : HTTP1_INCOMPLETE;
		framing += next - pos;

		size_t p = pos, room = limits->max_body_bytes - out;
		uint64_t size = 0;
		while (p < eol && (cls[buf[p]] & C_HEX)) {
			uint8_t c = buf[p];
			if (size > UINT64_MAX >> 4)
				return -EFBIG;
			size = size * 16 + (uint64_t)((c <= '9') ? c - '0' : (c | 0x20) - 'a' + 10);
			if (size > room)
				return -EFBIG;
			p++;
		}
		if (p == pos)
			return -EBADMSG;
		if (p < eol) {
			/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): ignored, but
			 * it must stay on its line. */
			while (p < eol && (cls[buf[p]] & C_OWS))
				p++;
			if (p == eol || buf[p] != ';')
				return -EBADMSG;
			while (p < eol && (cls[buf[p]] & C_VALUE))
				p++;
			if (p != eol)
				return -EBADMSG;
		}
		pos = next;
		if (size == 0)
			break;

		if (len - pos < size)
			return HTTP1_INCOMPLETE;
		memcpy(scratch + out, buf + pos, size);
		out += size;
		pos += size;
		int k = line_end(buf, pos, len, &next);
		if (k <= 0)
			return k;
		framing += next - pos;
		pos = next;
		if (framing > limits->max_header_bytes)
			return -EFBIG;
	}

	/* The trailer section shares the header block's limits; its fields are ignored. */
	size_t limit_end = pos + header_left;
	size_t end = MIN(len, limit_end);
	for (;;) {
		struct field f;
		bool done;
		size_t next;
		int k = parse_field_line(buf, pos, end, &nheaders, limits->max_headers, &f, &done,
					 &next);
		if (k == 0)
			return len >= limit_end ? -EMSGSIZE : HTTP1_INCOMPLETE;
		if (k < 0)
			return k;
		pos = next;
		if (done)
			break;
	}
	*ret_body_len = out;
	*ret_end = pos;
	return HTTP1_COMPLETE;
}

int http1_parse(const uint8_t *buf, size_t len, const struct http1_limits *limits, uint8_t *scratch,
		bool headers_only, struct http1_request *ret, size_t *ret_consumed)
{
	struct http1_request r = {.content_length = -1};
	struct hstate h = {0};
	size_t max = limits->max_header_bytes;
	size_t end = MIN(len, max);
	size_t pos = 0, next;
	int k;

	/* Empty lines before the request line are ignored (RFC 9112 §2.2). */
	for (;;) {
		if (pos == end)
			goto need_more;
		if (buf[pos] != '\r' && buf[pos] != '\n')
			break;
		k = line_end(buf, pos, end, &next);
		if (k <= 0)
			goto stop;
		pos = next;
	}
	k = parse_request_line(buf, pos, end, &r, &next);
	if (k <= 0)
		goto stop;
	pos = next;

	for (;;) {
		struct field f;
		bool done;
		k = parse_field_line(buf, pos, end, &h.nheaders, limits->max_headers, &f, &done,
				     &next);
		if (k <= 0)
			goto stop;
		pos = next;
		if (done)
			break;
		k = on_header(f.name, f.name_len, f.value, f.value_len, &r, &h);
		if (k < 0)
			return k;
	}
	r.header_bytes = pos;

	k = check_framing(&r, &h, scratch, limits);
	if (k < 0)
		return k;
	r.keep_alive = r.version_minor == 1 ? !h.conn_close : (h.conn_keep_alive && !h.conn_close);

	if (headers_only) {
		*ret = r;
		*ret_consumed = pos;
		return HTTP1_HEADERS_DONE;
	}

	if (r.chunked) {
		size_t body_len, req_end;
		k = parse_chunked(buf, len, pos, limits, max - pos, h.nheaders, scratch, &body_len,
				  &req_end);
		if (k != HTTP1_COMPLETE)
			return k;
		r.body = scratch;
		r.body_len = body_len;
		pos = req_end;
	} else if (r.content_length > 0) {
		if (len - pos < (uint64_t)r.content_length)
			return HTTP1_INCOMPLETE;
		r.body = buf + pos;
		r.body_len = (size_t)r.content_length;
		pos += r.body_len;
	}

	*ret = r;
	*ret_consumed = pos;
	return HTTP1_COMPLETE;

stop:
	if (k < 0)
		return k;
need_more:
	/* The header block can only end past the limit: refuse it now. */
	return len >= max ? -EMSGSIZE : HTTP1_INCOMPLETE;
}
