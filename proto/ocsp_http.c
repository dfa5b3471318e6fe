/* SPDX-License-Identifier: Apache-2.0 */
#include "proto/ocsp_http.h"
#include "proto/civil.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "proto/macro.h"

/* Longest GET request-target searched for a request (RFC 5019 §5 expects well under 255). */
#define GET_TARGET_MAX 8192
/* delta-seconds beyond this are this (RFC 9111 §1.2.2). */
#define DELTA_SECONDS_MAX INT64_C(2147483648)

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void trim_ows(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;
	while (n && is_ows(p[0])) {
		p++;
		n--;
	}
	while (n && is_ows(p[n - 1]))
		n--;
	*s = p;
	*len = n;
}

static inline char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
}

static bool eq_ci(const char *p, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != lit[i])
			return false;
	return true;
}

/* ---- base64 (RFC 4648 §4, standard alphabet) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Sextet value + 1 of each base64 character; 0 for everything else. */
static const uint8_t b64_value[256] = {
	['A'] = 1,  ['B'] = 2,	['C'] = 3,  ['D'] = 4,	['E'] = 5,  ['F'] = 6,	['G'] = 7,
	['H'] = 8,  ['I'] = 9,	['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
	['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
	['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
	['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
	['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
	['/'] = 64,
};

/*
 * Decodes n base64 characters (no padding) into out, which holds n * 3 / 4 bytes. Returns the
 * number of bytes, or -EBADMSG on a character outside the alphabet or a length no encoder makes.
 * Non-zero bits left over in the last character are tolerated: the DER parse judges the bytes.
 */
static int b64_decode(const char *s, size_t n, uint8_t *out)
{
	if (n % 4 == 1)
		return -EBADMSG;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t v = b64_value[(uint8_t)s[i]];
		if (!v)
			return -EBADMSG;
		acc = (acc << 6) | (uint32_t)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)o;
}

/* Base64 characters (without padding) that n bytes encode to. */
static size_t b64_chars(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

void ocsp_http_base64_encode(const uint8_t *data, size_t len, struct buf *out)
{
	char q[4];
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		q[0] = b64_alphabet[v >> 18];
		q[1] = b64_alphabet[(v >> 12) & 63];
		q[2] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? b64_alphabet[v & 63] : '=';
		buf_append(out, q, 4);
	}
}

int ocsp_http_base64_decode(const char *s, size_t n, struct buf *out)
{
	size_t pad = 0;
	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	if (pad && n % 4 != 0)
		return -EBADMSG;
	size_t m = n - pad;
	buf_reserve(out, m / 4 * 3 + 3);
	int k = b64_decode(s, m, out->data + out->len);
	if (k < 0)
		return k;
	out->len += (size_t)k;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * One candidate: dec[0..n) is percent-decoded text that should be base64 of a DER OCSPRequest.
 * The DER header read from the first characters must announce exactly the length the text
 * encodes, so a target made of many '/' costs one cheap check per candidate instead of a
 * decode and a parse each. Returns the DER length.
 */
static int try_candidate(const char *dec, size_t n, uint8_t *der, struct ocsp_request *ret)
{
	size_t pad = 0;
	while (pad < 2 && n > pad && dec[n - 1 - pad] == '=')
		pad++;
	size_t m = n - pad;
	if (pad && n % 4 != 0)
		return -EBADMSG;

	uint8_t hdr[6];
	int h = b64_decode(dec, MIN(m, (size_t)8) & ~(size_t)3, hdr);
	if (h < 2 || hdr[0] != 0x30)
		return -EBADMSG;
	size_t total;
	if (hdr[1] < 0x80)
		total = 2 + (size_t)hdr[1];
	else if (hdr[1] == 0x81 && h >= 3)
		total = 3 + (size_t)hdr[2];
	else if (hdr[1] == 0x82 && h >= 4)
		total = 4 + ((size_t)hdr[2] << 8 | hdr[3]);
	else
		return -EBADMSG;
	if (b64_chars(total) != m)
		return -EBADMSG;

	int k = b64_decode(dec, m, der);
	if (k < 0)
		return k;
	assert((size_t)k == total);
	k = ocsp_request_parse(der, total, ret);
	if (k < 0)
		return k;
	return (int)total;
}

/* ocsp_http_get_decode, also saying where in the raw target the request's base64 starts. */
static int get_decode(const char *target, size_t len, struct buf *ret_der, struct ocsp_request *ret,
		      size_t *ret_start)
{
	if (len > GET_TARGET_MAX)
		return -EMSGSIZE;

	/*
	 * Percent-decode the whole target once. An escape never contains '/' or '?', so every
	 * candidate's decoding is a suffix of this one; an invalid escape stays a '%', which no
	 * base64 candidate containing it survives.
	 */
	char dec[GET_TARGET_MAX];
	bool start[GET_TARGET_MAX + 1];
	uint16_t raw[GET_TARGET_MAX + 1]; /* raw offset of each decoded position */
	size_t n = 0;
	start[0] = false;
	for (size_t i = 0; i < len; i++) {
		char c = target[i];
		raw[n] = (uint16_t)i;
		if (c == '%' && i + 2 < len && hex_value(target[i + 1]) >= 0 &&
		    hex_value(target[i + 2]) >= 0) {
			c = (char)(hex_value(target[i + 1]) << 4 | hex_value(target[i + 2]));
			i += 2;
		}
		dec[n++] = c;
		/* After an escape target[i] is a hex digit: only raw separators start one. */
		start[n] = target[i] == '/' || target[i] == '?';
	}

	uint8_t der[GET_TARGET_MAX / 4 * 3];
	int best = -EBADMSG;
	for (size_t d = 1; d < n; d++) {
		if (!start[d])
			continue;
		struct ocsp_request req;
		int k = try_candidate(dec + d, n - d, der, &req);
		if (k >= 0) {
			buf_append(ret_der, der, (size_t)k);
			*ret = req;
			if (ret_start)
				*ret_start = raw[d];
			return 0;
		}
		if ((k == -ENOTSUP || k == -EMSGSIZE) && best == -EBADMSG)
			best = k;
	}
	return best;
}

int ocsp_http_get_decode(const char *target, size_t len, struct buf *ret_der,
			 struct ocsp_request *ret)
{
	return get_decode(target, len, ret_der, ret, NULL);
}

/* Bytes allowed in the authority of a proxied URL: host names, IPv4, [IPv6] and a port. */
static bool authority_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
}

int ocsp_http_proxy_target(const char *target, size_t len, bool is_get, struct buf *ret_der,
			   struct ocsp_request *ret, char *origin, size_t origin_size)
{
	size_t scheme;
	if (len >= 7 && strncasecmp(target, "http://", 7) == 0)
		scheme = 7;
	else if (len >= 8 && strncasecmp(target, "https://", 8) == 0)
		scheme = 8;
	else
		return -EINVAL;
	size_t a = scheme;
	while (a < len && target[a] != '/' && target[a] != '?') {
		if (!authority_char(target[a]))
			return -EBADMSG; /* userinfo, fragments, spaces … never in an OCSP URL */
		a++;
	}
	if (a == scheme)
		return -EBADMSG;
	size_t end = len; /* end of the origin part */
	size_t der0 = ret_der->len;
	if (is_get) {
		if (a == len)
			return -EBADMSG;
		size_t start;
		int r = get_decode(target + a, len - a, ret_der, ret, &start);
		if (r < 0)
			return r;
		end = a + start;
	}
	for (size_t i = a; i < end; i++) {
		if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f) {
			ret_der->len = der0; /* nothing appended on error */
			return -EBADMSG;
		}
	}
	/* The origin is the URL as given, lower-cased scheme; a bare authority gets its "/". */
	bool slash = end == a;
	if (end + (slash ? 1 : 0) + 1 > origin_size) {
		ret_der->len = der0;
		return -EMSGSIZE;
	}
	memcpy(origin, scheme == 7 ? "http://" : "https://", scheme);
	memcpy(origin + scheme, target + scheme, end - scheme);
	if (slash)
		origin[end++] = '/';
	origin[end] = 0;
	return 0;
}

void ocsp_http_get_encode(const uint8_t *der, size_t len, struct buf *out)
{
	/* Each base64 character may become a 3-byte escape. */
	buf_reserve(out, (len + 2) / 3 * 4 * 3);
	char *p = (char *)out->data + out->len;
	char q[4];
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)der[i + 1] << 8;
		if (i + 2 < len)
			v |= der[i + 2];
		q[0] = b64_alphabet[v >> 18];
		q[1] = b64_alphabet[(v >> 12) & 63];
		q[2] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? b64_alphabet[v & 63] : '=';
		for (int j = 0; j < 4; j++) {
			/* RFC 6960 Appendix A.1: the base64 is url-encoded. */
			switch (q[j]) {
			case '+':
				memcpy(p, "%2B", 3);
				p += 3;
				break;
			case '/':
				memcpy(p, "%2F", 3);
				p += 3;
				break;
			case '=':
				memcpy(p, "%3D", 3);
				p += 3;
				break;
			default:
				*p++ = q[j];
			}
		}
	}
	out->len = (size_t)(p - (char *)out->data);
	out->data[out->len] = 0;
}

/* ---- HTTP dates (RFC 9110 §5.6.7), in UTC by construction: no locale, no TZ ---- */

static const char wkday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday_names[7] = {"Sunday",	 "Monday", "Tuesday", "Wednesday",
					     "Thursday", "Friday", "Saturday"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date, counted in 400-year eras. */
static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*ret_d = doy - (153 * mp + 2) / 5 + 1;
	*ret_m = m;
	*ret_y = (int64_t)yoe + era * 400 + (m <= 2);
}

static inline char *put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

/* Years 1970..9999: IMF-fixdate has exactly four year digits. */
#define DATE_MIN_UNIX INT64_C(0)
#define DATE_MAX_UNIX INT64_C(253402300799)

/* Writes the 29 bytes of an IMF-fixdate, no NUL. */
static char *put_date(char *p, int64_t t)
{
	t = CLAMP(t, DATE_MIN_UNIX, DATE_MAX_UNIX);
	int64_t days = t / 86400;
	unsigned secs = (unsigned)(t % 86400);
	int64_t y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	memcpy(p, wkday_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
	p[3] = ',';
	p[4] = ' ';
	p = put2(p + 5, d);
	*p++ = ' ';
	memcpy(p, month_names[mo - 1], 3);
	p[3] = ' ';
	p = put2(p + 4, (unsigned)(y / 100));
	p = put2(p, (unsigned)(y % 100));
	*p++ = ' ';
	p = put2(p, secs / 3600);
	*p++ = ':';
	p = put2(p, secs / 60 % 60);
	*p++ = ':';
	p = put2(p, secs % 60);
	memcpy(p, " GMT", 4);
	return p + 4;
}

void http_date_format(int64_t unix_s, char out[HTTP_DATE_LEN + 1])
{
	char *e = put_date(out, unix_s);
	*e = 0;
}

static bool digits(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

static int month_index(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (memcmp(s, month_names[i], 3) == 0)
			return i + 1;
	return -1;
}

static bool is_wkday(const char *s)
{
	for (int i = 0; i < 7; i++)
		if (memcmp(s, wkday_names[i], 3) == 0)
			return true;
	return false;
}

/* "HH:MM:SS" */
static bool parse_time(const char *s, unsigned *ret_secs)
{
	unsigned h, m, sec;
	if (s[2] != ':' || s[5] != ':' || !digits(s, 2, &h) || !digits(s + 3, 2, &m) ||
	    !digits(s + 6, 2, &sec))
		return false;
	if (h > 23 || m > 59 || sec > 60) /* 60: a leap second, read as the next one */
		return false;
	*ret_secs = h * 3600 + m * 60 + sec;
	return true;
}

static int make_time(int64_t y, int mo, unsigned d, unsigned secs, int64_t *ret)
{
	static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || d < 1 || d > mdays[mo - 1])
		return -EBADMSG;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -EBADMSG;
	*ret = civil_days(y, (unsigned)mo, d) * 86400 + secs;
	return 0;
}

int http_date_parse(const char *s, size_t len, int64_t *ret_unix)
{
	unsigned d, y, secs;
	int mo;

	if (len == 29) {
		/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
		if (!is_wkday(s) || s[3] != ',' || s[4] != ' ' || !digits(s + 5, 2, &d) ||
		    s[7] != ' ' || (mo = month_index(s + 8)) < 0 || s[11] != ' ' ||
		    !digits(s + 12, 4, &y) || s[16] != ' ' || !parse_time(s + 17, &secs) ||
		    memcmp(s + 25, " GMT", 4) != 0)
			return -EBADMSG;
		return make_time(y, mo, d, secs, ret_unix);
	}
	if (len == 24) {
		/* asctime: "Sun Nov  6 08:49:37 1994" */
		if (!is_wkday(s) || s[3] != ' ' || (mo = month_index(s + 4)) < 0 || s[7] != ' ')
			return -EBADMSG;
		if (s[8] == ' ') {
			if (!digits(s + 9, 1, &d))
				return -EBADMSG;
		} else if (!digits(s + 8, 2, &d)) {
			return -EBADMSG;
		}
		if (s[10] != ' ' || !parse_time(s + 11, &secs) || s[19] != ' ' ||
		    !digits(s + 20, 4, &y))
			return -EBADMSG;
		return make_time(y, mo, d, secs, ret_unix);
	}
	/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
	const char *comma = memchr(s, ',', MIN(len, (size_t)10));
	if (!comma)
		return -EBADMSG;
	size_t wl = (size_t)(comma - s);
	bool known = false;
	for (int i = 0; i < 7; i++)
		if (strlen(weekday_names[i]) == wl && memcmp(s, weekday_names[i], wl) == 0)
			known = true;
	const char *r = comma + 1;
	if (!known || len - wl - 1 != 23)
		return -EBADMSG;
	if (r[0] != ' ' || !digits(r + 1, 2, &d) || r[3] != '-' || (mo = month_index(r + 4)) < 0 ||
	    r[7] != '-' || !digits(r + 8, 2, &y) || r[10] != ' ' || !parse_time(r + 11, &secs) ||
	    memcmp(r + 19, " GMT", 4) != 0)
		return -EBADMSG;
	/* Two-digit years: a fixed pivot, since a pure function has no "now" for RFC 9110's
	 * 50-year rule; RFC 850 dates come from software older than 2000 or from 20xx. */
	y += y < 70 ? 2000 : 1900;
	return make_time(y, mo, d, secs, ret_unix);
}

/* ---- caching headers (RFC 5019 §6) ---- */

uint64_t ocsp_http_etag(const uint8_t *der, size_t len)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(der, len, md);
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return v;
}

static inline char *put_lit(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUT(p, lit) put_lit((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static int64_t max_age(const struct ocsp_http_meta *m, int64_t now, int64_t cap)
{
	int64_t age;
	if (__builtin_sub_overflow(m->next_update_unix, now, &age))
		age = m->next_update_unix > now ? INT64_MAX : 0;
	if (age < 0)
		age = 0;
	if (cap > 0 && age > cap)
		age = cap;
	return age;
}

/* Longest header block rendered here, with room to spare. */
#define RENDER_MAX 512

static void render(struct buf *out, const char *status, size_t status_len, bool with_body,
		   const struct ocsp_http_meta *m, size_t body_len, int64_t now, int64_t cap,
		   enum ocsp_http_conn conn)
{
	static const char hex[] = "0123456789abcdef";
	buf_reserve(out, RENDER_MAX);
	char *start = (char *)out->data + out->len, *p = start;

	p = put_lit(p, status, status_len);
	p = PUT(p, "Date: ");
	p = put_date(p, now);
	if (with_body) {
		p = PUT(p, "\r\nContent-Type: application/ocsp-response\r\nContent-Length: ");
		p = put_u64(p, body_len);
	}
	p = PUT(p, "\r\nLast-Modified: ");
	p = put_date(p, m->this_update_unix);
	p = PUT(p, "\r\nExpires: ");
	p = put_date(p, m->next_update_unix);
	p = PUT(p, "\r\nETag: \"");
	for (int i = 60; i >= 0; i -= 4)
		*p++ = hex[(m->etag >> i) & 15];
	p = PUT(p, "\"\r\nCache-Control: max-age=");
	p = put_u64(p, (uint64_t)max_age(m, now, cap));
	p = PUT(p, ", public, no-transform, must-revalidate\r\n");
	if (conn == OCSP_HTTP_CONN_CLOSE)
		p = PUT(p, "Connection: close\r\n");
	else if (conn == OCSP_HTTP_CONN_KEEP_ALIVE)
		p = PUT(p, "Connection: keep-alive\r\n");
	p = PUT(p, "\r\n");

	assert((size_t)(p - start) <= RENDER_MAX);
	out->len += (size_t)(p - start);
	out->data[out->len] = 0;
}

void ocsp_http_render_200(struct buf *out, const struct ocsp_http_meta *m, size_t body_len,
			  int64_t now_unix, int64_t max_age_cap_s, enum ocsp_http_conn conn)
{
	static const char status[] = "HTTP/1.1 200 OK\r\n";
	render(out, status, sizeof(status) - 1, true, m, body_len, now_unix, max_age_cap_s, conn);
}

/*
 * A 304 carries the validators and caching fields a 200 would (RFC 9110 §15.4.5), but no
 * Content-Type: that describes a body, and there is none.
 */
void ocsp_http_render_304(struct buf *out, const struct ocsp_http_meta *m, int64_t now_unix,
			  int64_t max_age_cap_s, enum ocsp_http_conn conn)
{
	static const char status[] = "HTTP/1.1 304 Not Modified\r\n";
	render(out, status, sizeof(status) - 1, false, m, 0, now_unix, max_age_cap_s, conn);
}

/*
 * If-None-Match = "*" / #entity-tag (RFC 9110 §13.1.2), compared weakly: "W/" is ignored. A
 * malformed list matches nothing, so the client gets the full response.
 */
static bool inm_matches(uint64_t etag, const char *v, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char ours[16];
	for (int i = 0; i < 16; i++)
		ours[i] = hex[(etag >> (60 - 4 * i)) & 15];

	trim_ows(&v, &n);
	if (n == 1 && v[0] == '*')
		return true;
	size_t i = 0;
	bool match = false;
	for (;;) {
		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		if (i == n)
			return match;
		if (n - i >= 2 && v[i] == 'W' && v[i + 1] == '/')
			i += 2;
		if (i == n || v[i] != '"')
			return false;
		size_t s = ++i;
		while (i < n && v[i] != '"') {
			uint8_t c = (uint8_t)v[i];
			if (c < 0x21 || c == 0x7f) /* etagc excludes controls and SP */
				return false;
			i++;
		}
		if (i == n)
			return false;
		if (i - s == 16 && memcmp(v + s, ours, 16) == 0)
			match = true;
		i++;
		while (i < n && is_ows(v[i]))
			i++;
		if (i < n && v[i] != ',')
			return false;
	}
}

bool ocsp_http_not_modified(const struct ocsp_http_meta *m, const char *inm, size_t inm_len,
			    const char *ims, size_t ims_len)
{
	if (inm)
		return inm_matches(m->etag, inm, inm_len);
	if (!ims)
		return false;
	trim_ows(&ims, &ims_len);
	int64_t t;
	if (http_date_parse(ims, ims_len, &t) < 0)
		return false; /* an invalid date is ignored (RFC 9110 §13.1.3) */
	return m->this_update_unix <= t;
}

static bool is_tchar(char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

static int parse_delta_seconds(const char *s, size_t n, int64_t *ret)
{
	if (n == 0)
		return -EBADMSG;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -EBADMSG;
		if (v < DELTA_SECONDS_MAX)
			v = v * 10 + (s[i] - '0');
	}
	*ret = MIN(v, DELTA_SECONDS_MAX);
	return 0;
}

int ocsp_http_parse_max_age(const char *v, size_t len, int64_t *ret_s)
{
	size_t i = 0;
	for (;;) {
		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		if (i == len)
			return -ENOENT;
		size_t name = i;
		while (i < len && is_tchar(v[i]))
			i++;
		size_t name_len = i - name;
		const char *val = NULL;
		size_t val_len = 0;
		bool malformed = name_len == 0;
		if (i < len && v[i] == '=') {
			i++;
			if (i < len && v[i] == '"') {
				val = v + ++i;
				while (i < len && v[i] != '"') {
					if (v[i] == '\\' && i + 1 < len)
						i++;
					i++;
				}
				if (i == len)
					malformed = true; /* unterminated: the rest is this value */
				val_len = (size_t)(v + i - val);
				i++;
			} else {
				val = v + i;
				while (i < len && is_tchar(v[i]))
					i++;
				val_len = (size_t)(v + i - val);
			}
		}
		while (i < len && is_ows(v[i]))
			i++;
		if (i < len && v[i] != ',')
			malformed = true;

		if (eq_ci(v + name, name_len, "max-age")) {
			/* The first max-age counts (RFC 9111 §4.2.1). */
			if (malformed || !val)
				return -EBADMSG;
			return parse_delta_seconds(val, val_len, ret_s);
		}
		/* Any other directive is ignored, even a malformed one: skip to the next. */
		if (malformed)
			while (i < len && v[i] != ',')
				i++;
	}
}

int ocsp_http_parse_retry_after(const char *v, size_t len, int64_t now_unix, int64_t *ret_s)
{
	trim_ows(&v, &len);
	if (len && is_digit(v[0]))
		return parse_delta_seconds(v, len, ret_s);
	int64_t t;
	int k = http_date_parse(v, len, &t);
	if (k < 0)
		return k;
	int64_t d;
	if (__builtin_sub_overflow(t, now_unix, &d))
		d = t > now_unix ? INT64_MAX : 0;
	*ret_s = MAX(d, INT64_C(0));
	return 0;
}
