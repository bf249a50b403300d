/*
 * smtp.c: one mail through an SMTP relay (RFC 5321), and the message it
 * carries (RFC 5322, with RFC 2047 subjects and base64 bodies when the text
 * is not plain ASCII).
 *
 * Untrusted input: the relay's replies (bounded lines, bounded count).
 * Header values come from our own templates and the org name, but are still
 * refused when they hold line breaks, so that nothing can inject headers.
 */
#include "notify/notify_int.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REPLY_LINE_MAX 1024
#define REPLY_LINES_MAX 64
#define SMTP_LINE_MAX 998	/* RFC 5322 line limit, without CRLF */

bool
gh_mail_addr_valid(const char *addr)
{
	const char *at;
	size_t n;

	if (addr == NULL)
		return false;
	n = strlen(addr);
	if (n < 3 || n > 254)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c <= 0x20 || c >= 0x7f || strchr("\"<>(),;:\\[]", c))
			return false;
	}
	at = strchr(addr, '@');
	return at != NULL && at != addr && at[1] != '\0' &&
	    strchr(at + 1, '@') == NULL;
}

static bool
printable_ascii(const char *s, size_t max_line)
{
	size_t line = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c >= 0x7f || (c < 0x20 && c != '\t') || ++line > max_line)
			return false;
	}
	return true;
}

/* Length of the UTF-8 sequence starting with lead byte c (1 for stray
 * continuation bytes, which gh_utf8_valid has refused earlier anyway). */
static size_t
utf8_seq_len(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

static void
put_b64(struct gh_buf *b, const unsigned char *p, size_t n)
{
	unsigned char out[4 * 64 / 3 + 8];

	while (n > 0) {
		size_t chunk = n > 45 ? 45 : n;
		int len = EVP_EncodeBlock(out, p, (int)chunk);

		gh_buf_put(b, out, (size_t)len);
		p += chunk;
		n -= chunk;
		if (n > 0)
			gh_buf_put_str(b, "\r\n");
	}
}

/* "Subject: …" with RFC 2047 encoded words of whole characters when the
 * subject is not plain ASCII. */
static void
put_subject(struct gh_buf *b, const char *subject)
{
	const unsigned char *p = (const unsigned char *)subject;
	size_t n = strlen(subject);

	gh_buf_put_str(b, "Subject: ");
	if (printable_ascii(subject, 900)) {
		gh_buf_put_str(b, subject);
		gh_buf_put_str(b, "\r\n");
		return;
	}
	while (n > 0) {
		unsigned char enc[64];
		size_t take = 0;
		int len;

		while (take < n && take + utf8_seq_len(p[take]) <= 39)
			take += utf8_seq_len(p[take]);
		if (take == 0 || take > n)
			take = n < 39 ? n : 39;
		len = EVP_EncodeBlock(enc, p, (int)take);
		gh_buf_put_str(b, "=?UTF-8?B?");
		gh_buf_put(b, enc, (size_t)len);
		gh_buf_put_str(b, "?=");
		p += take;
		n -= take;
		gh_buf_put_str(b, n > 0 ? "\r\n " : "\r\n");
	}
}

static void
put_date(struct gh_buf *b, int64_t now_ms)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	gh_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The body with CRLF line ends and leading dots doubled. */
static void
put_body_text(struct gh_buf *b, const char *body)
{
	bool line_start = true;

	for (const char *s = body; *s != '\0'; s++) {
		if (line_start && *s == '.')
			gh_buf_put_u8(b, '.');
		if (*s == '\n') {
			gh_buf_put_str(b, "\r\n");
			line_start = true;
			continue;
		}
		if (*s == '\r')
			continue;
		gh_buf_put_u8(b, (uint8_t)*s);
		line_start = false;
	}
	gh_buf_put_str(b, "\r\n");
}

gh_err
mail_format(const struct gh_mail_msg *msg, const char *msg_id_host,
    int64_t now_ms, char **out)
{
	struct gh_buf b;
	char id[GH_ID_LEN + 1];
	bool ascii;
	gh_err err;

	*out = NULL;
	if (!gh_mail_addr_valid(msg->from) || !gh_mail_addr_valid(msg->to) ||
	    msg->subject == NULL || msg->body == NULL ||
	    strpbrk(msg->subject, "\r\n") != NULL ||
	    !gh_utf8_valid(msg->subject, strlen(msg->subject)) ||
	    !gh_utf8_valid(msg->body, strlen(msg->body)) ||
	    strpbrk(msg_id_host, "\r\n <>") != NULL)
		return GH_ERR_INVALID;
	err = gh_id_new(id);
	if (err != GH_OK)
		return err;
	ascii = printable_ascii(msg->body, SMTP_LINE_MAX - 1);
	gh_buf_init(&b, 1 << 20, 0);
	put_date(&b, now_ms);
	gh_buf_printf(&b, "From: <%s>\r\nTo: <%s>\r\n", msg->from, msg->to);
	put_subject(&b, msg->subject);
	gh_buf_printf(&b, "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: %s\r\nAuto-Submitted: auto-generated"
	    "\r\n\r\n", id, msg_id_host, ascii ? "7bit" : "base64");
	if (ascii)
		put_body_text(&b, msg->body);
	else {
		put_b64(&b, (const unsigned char *)msg->body,
		    strlen(msg->body));
		gh_buf_put_str(&b, "\r\n");
	}
	err = gh_buf_err(&b);
	if (err == GH_OK)
		*out = gh_buf_take(&b, NULL);
	gh_buf_free(&b);
	return *out != NULL ? GH_OK : (err != GH_OK ? err : GH_ERR_NOMEM);
}

/* ---- the SMTP conversation ------------------------------------------------- */

struct conn {
	int fd;
	char in[4096];
	size_t in_len;
	char *err;
	size_t errcap;
};

static gh_err
conn_open(struct conn *c, const char *host, unsigned port, unsigned timeout_s)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM };
	struct timeval tv = { .tv_sec = (time_t)timeout_s };
	struct addrinfo *res = NULL, *ai;
	char portstr[8];
	int rc;

	snprintf(portstr, sizeof portstr, "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(c->err, c->errcap, "resolving %s: %s", host,
		    gai_strerror(rc));
		return GH_ERR_IO;
	}
	c->fd = -1;
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (c->fd < 0)
			continue;
		/* Linux bounds connect() by the send timeout as well. */
		if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof tv) != 0 || setsockopt(c->fd, SOL_SOCKET,
		    SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
		    connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			snprintf(c->err, c->errcap, "connecting to %s:%u: %s",
			    host, port, strerror(errno));
			close(c->fd);
			c->fd = -1;
		}
	}
	freeaddrinfo(res);
	return c->fd >= 0 ? GH_OK : GH_ERR_IO;
}

static gh_err
conn_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(c->err, c->errcap, "sending: %s",
			    w < 0 ? strerror(errno) : "closed");
			return GH_ERR_IO;
		}
		p += w;
		n -= (size_t)w;
	}
	return GH_OK;
}

/* Reads one CRLF-terminated line (without it) into line. */
static gh_err
conn_line(struct conn *c, char line[static REPLY_LINE_MAX])
{
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		ssize_t r;

		if (nl != NULL) {
			size_t n = (size_t)(nl - c->in);
			size_t keep = n > 0 && c->in[n - 1] == '\r' ? n - 1 : n;

			if (keep >= REPLY_LINE_MAX)
				keep = REPLY_LINE_MAX - 1;
			memcpy(line, c->in, keep);
			line[keep] = '\0';
			memmove(c->in, nl + 1, c->in_len - n - 1);
			c->in_len -= n + 1;
			return GH_OK;
		}
		if (c->in_len == sizeof c->in) {
			snprintf(c->err, c->errcap, "reply line too long");
			return GH_ERR_IO;
		}
		r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len,
		    0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(c->err, c->errcap, "reading the reply: %s",
			    r < 0 ? strerror(errno) : "connection closed");
			return GH_ERR_IO;
		}
		c->in_len += (size_t)r;
	}
}

/* Reads a whole (possibly multi-line) reply and checks its code against
 * want (first digit match when want < 10). */
static gh_err
conn_reply(struct conn *c, int want, const char *step)
{
	char line[REPLY_LINE_MAX];
	int code = 0;
	gh_err err;

	for (int i = 0; i < REPLY_LINES_MAX; i++) {
		err = conn_line(c, line);
		if (err != GH_OK)
			return err;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (line[3] != '\0' && line[3] != ' ' &&
		    line[3] != '-')) {
			snprintf(c->err, c->errcap, "%s: malformed reply",
			    step);
			return GH_ERR_IO;
		}
		code = atoi(line);
		if (line[3] == '-')
			continue;
		if (want < 10 ? code / 100 == want : code == want)
			return GH_OK;
		/* Printable replies only: the relay is not trusted. */
		for (char *p = line; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				*p = '?';
		snprintf(c->err, c->errcap, "%s: %.200s", step, line);
		return code >= 500 ? GH_ERR_DENIED : GH_ERR_IO;
	}
	snprintf(c->err, c->errcap, "%s: reply too long", step);
	return GH_ERR_IO;
}

static gh_err
conn_cmd(struct conn *c, const char *cmd, int want, const char *step)
{
	gh_err err = conn_write(c, cmd, strlen(cmd));

	return err != GH_OK ? err : conn_reply(c, want, step);
}

static gh_err
conversation(struct conn *c, const char *helo, const struct gh_mail_msg *msg,
    const char *data)
{
	char cmd[600];
	gh_err err;

	err = conn_reply(c, 220, "greeting");
	if (err != GH_OK)
		return err;
	snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
	err = conn_cmd(c, cmd, 250, "EHLO");
	if (err != GH_OK) {
		snprintf(cmd, sizeof cmd, "HELO %s\r\n", helo);
		err = conn_cmd(c, cmd, 250, "HELO");
	}
	if (err != GH_OK)
		return err;
	snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", msg->from);
	err = conn_cmd(c, cmd, 250, "MAIL FROM");
	if (err != GH_OK)
		return err;
	snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", msg->to);
	err = conn_cmd(c, cmd, 2, "RCPT TO");
	if (err == GH_OK)
		err = conn_cmd(c, "DATA\r\n", 354, "DATA");
	if (err == GH_OK)
		err = conn_write(c, data, strlen(data));
	if (err == GH_OK)
		err = conn_cmd(c, ".\r\n", 250, "end of data");
	if (err == GH_OK)
		(void)conn_cmd(c, "QUIT\r\n", 221, "QUIT");
	return err;
}

gh_err
gh_mail_send(const char *host, unsigned port, const char *helo,
    unsigned timeout_s, const struct gh_mail_msg *msg, char *errbuf,
    size_t errcap)
{
	struct conn c = { .fd = -1, .err = errbuf, .errcap = errcap };
	char *data = NULL;
	gh_err err;

	if (errcap > 0)
		errbuf[0] = '\0';
	if (helo == NULL || helo[0] == '\0' || strlen(helo) > 255 ||
	    strpbrk(helo, "\r\n ") != NULL) {
		snprintf(errbuf, errcap, "bad HELO name");
		return GH_ERR_INVALID;
	}
	err = mail_format(msg, helo, gh_now_ms(), &data);
	if (err != GH_OK) {
		snprintf(errbuf, errcap, "bad address or header value");
		return err;
	}
	err = conn_open(&c, host, port, timeout_s);
	if (err == GH_OK)
		err = conversation(&c, helo, msg, data);
	if (c.fd >= 0)
		close(c.fd);
	free(data);
	return err;
}
