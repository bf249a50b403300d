/* notify_test.c: notices on a real tenant store, the message format, and
 * mail through a real SMTP conversation with a sink on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "notify/notify_int.h"
#include "store/testing.h"

static int
setup(void **state)
{
	struct gh_test_tenant *t = gh_test_tenant_new("notify", NULL);

	if (t == NULL)
		return -1;
	*state = t;
	assert_int_equal(gh_test_user_insert(t->db, "u1", "alice", "member",
	    "alice@example.test"), GH_OK);
	assert_int_equal(gh_test_user_insert(t->db, "u2", "bob", "member",
	    NULL), GH_OK);
	return 0;
}

static void
notify(struct gh_db *db, const char *user, const char *kind)
{
	json_t *data = json_pack("{s:s, s:s}", "method", "recovery",
	    "source_ip", "192.0.2.7");

	assert_int_equal(gh_notify_user(db, user, kind, data), GH_OK);
	json_decref(data);
}

static const char *
mail_state(struct gh_db *db, const char *user, char out[16])
{
	struct gh_stmt *st = NULL;
	bool row = false;

	assert_int_equal(gh_db_prepare(db, "SELECT mail_state FROM "
	    "notifications WHERE user_id = ? ORDER BY created_at DESC LIMIT 1",
	    &st), GH_OK);
	assert_int_equal(gh_stmt_bind(st, "t", user), GH_OK);
	assert_int_equal(gh_stmt_step(st, &row), GH_OK);
	assert_true(row);
	gh_strlcpy(out, gh_stmt_text(st, 0), 16);
	gh_stmt_free(st);
	return out;
}

static void
test_notices_are_listed_for_their_user_only(void **state)
{
	struct gh_test_tenant *f = *state;
	json_t *list;
	int64_t unread;

	notify(f->db, "u1", GH_NOTICE_RECOVERY_CODE_USED);
	notify(f->db, "u1", GH_NOTICE_MFA_RESET);
	notify(f->db, "u2", GH_NOTICE_MFA_RESET);
	assert_int_equal(gh_notify_list(f->db, "u1", false, 10, &list,
	    &unread), GH_OK);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(unread, 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(list, 0), "data"), "source_ip")), "192.0.2.7");
	assert_non_null(json_string_value(json_object_get(json_array_get(list,
	    0), "title")));
	json_decref(list);
}

static void
test_unknown_kinds_and_users_are_refused(void **state)
{
	struct gh_test_tenant *f = *state;

	assert_int_equal(gh_notify_user(f->db, "u1", "no_such_kind", NULL),
	    GH_ERR_INVALID);
	assert_int_equal(gh_notify_user(f->db, "nobody", GH_NOTICE_MFA_RESET,
	    NULL), GH_ERR_NOTFOUND);
}

static void
test_marking_read_one_then_all(void **state)
{
	struct gh_test_tenant *f = *state;
	char id[GH_ID_LEN + 1];
	json_t *list;
	int64_t unread, n;

	notify(f->db, "u1", GH_NOTICE_RECOVERY_CODE_USED);
	notify(f->db, "u1", GH_NOTICE_FACTOR_ADDED);
	notify(f->db, "u2", GH_NOTICE_FACTOR_ADDED);
	assert_int_equal(gh_notify_list(f->db, "u1", false, 10, &list,
	    &unread), GH_OK);
	gh_strlcpy(id, json_string_value(json_object_get(json_array_get(list,
	    0), "id")), sizeof id);
	json_decref(list);
	/* Another user's notice is not found. */
	assert_int_equal(gh_notify_mark_read(f->db, "u2", id, 5, &n),
	    GH_ERR_NOTFOUND);
	assert_int_equal(gh_notify_mark_read(f->db, "u1", id, 5, &n), GH_OK);
	assert_int_equal(n, 1);
	assert_int_equal(gh_notify_list(f->db, "u1", true, 10, &list,
	    &unread), GH_OK);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(unread, 1);
	json_decref(list);
	assert_int_equal(gh_notify_mark_read(f->db, "u1", NULL, 6, &n), GH_OK);
	assert_int_equal(n, 1);
	assert_int_equal(gh_notify_list(f->db, "u2", true, 10, &list,
	    &unread), GH_OK);
	assert_int_equal(unread, 1);	/* u2's own notice untouched */
	json_decref(list);
}

static void
test_users_without_email_get_no_mail(void **state)
{
	struct gh_test_tenant *f = *state;
	char s[16];

	notify(f->db, "u1", GH_NOTICE_MFA_RESET);
	notify(f->db, "u2", GH_NOTICE_MFA_RESET);
	assert_string_equal(mail_state(f->db, "u1", s), "pending");
	assert_string_equal(mail_state(f->db, "u2", s), "none");
}

static void
test_addresses_are_checked(void **state)
{
	(void)state;
	assert_true(gh_mail_addr_valid("a@b.example"));
	assert_false(gh_mail_addr_valid("a@b\r\nRCPT TO:<x@y>"));
	assert_false(gh_mail_addr_valid("a b@c"));
	assert_false(gh_mail_addr_valid("<a@b>"));
	assert_false(gh_mail_addr_valid("@b"));
	assert_false(gh_mail_addr_valid("a@"));
	assert_false(gh_mail_addr_valid("a@b@c"));
	assert_false(gh_mail_addr_valid(NULL));
}

static void
test_message_is_crlf_and_dot_stuffed(void **state)
{
	struct gh_mail_msg m = { "gh@example.test", "a@example.test",
		"Hello", "line one\n.starts with a dot\n..two\nend" };
	char *out = NULL;

	(void)state;
	assert_int_equal(mail_format(&m, "host.test", 0, &out), GH_OK);
	assert_non_null(strstr(out, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(out, "To: <a@example.test>\r\n"));
	assert_non_null(strstr(out, "Subject: Hello\r\n"));
	assert_non_null(strstr(out, "@host.test>\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nline one\r\n..starts with a dot"
	    "\r\n...two\r\nend\r\n"));
	assert_null(strstr(out, "\n\n"));
	free(out);
}

static void
test_non_ascii_subjects_and_bodies_are_encoded(void **state)
{
	struct gh_mail_msg m = { "gh@example.test", "a@example.test",
		"[Société Générale] Un code a été utilisé",
		"Bonjour Zoë\n" };
	char *out = NULL;

	(void)state;
	assert_int_equal(mail_format(&m, "h", 0, &out), GH_OK);
	assert_non_null(strstr(out, "Subject: =?UTF-8?B?"));
	assert_non_null(strstr(out, "Content-Transfer-Encoding: base64"));
	assert_null(strstr(out, "Zoë"));
	for (const char *p = out; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	free(out);
}

static void
test_header_injection_is_refused(void **state)
{
	struct gh_mail_msg m = { "gh@example.test", "a@example.test",
		"Hi\r\nBcc: victim@example.test", "x" };
	char *out = NULL;

	(void)state;
	assert_int_equal(mail_format(&m, "h", 0, &out), GH_ERR_INVALID);
	assert_null(out);
}

/* ---- a real SMTP sink on loopback ------------------------------------------ */

struct sink {
	int lfd;
	int port;
	const char *rcpt_reply;	/* reply to RCPT TO */
	char transcript[16384];
	size_t len;
	int mails;
	pthread_t th;
};

static void
sink_say(int fd, const char *s)
{
	assert_true(send(fd, s, strlen(s), MSG_NOSIGNAL) ==
	    (ssize_t)strlen(s));
}

/* Serves one connection at a time until the listener is shut down. */
static void *
sink_main(void *arg)
{
	struct sink *k = arg;
	int fd;

	while ((fd = accept(k->lfd, NULL, NULL)) >= 0) {
		char buf[4096];
		bool data = false;
		ssize_t r;

		sink_say(fd, "220 sink ESMTP\r\n");
		while ((r = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
			buf[r] = '\0';
			if (k->len + (size_t)r < sizeof k->transcript) {
				memcpy(k->transcript + k->len, buf, (size_t)r);
				k->len += (size_t)r;
				k->transcript[k->len] = '\0';
			}
			if (data) {
				if (strstr(k->transcript, "\r\n.\r\n") != NULL) {
					data = false;
					k->mails++;
					sink_say(fd, "250 queued\r\n");
				}
				continue;
			}
			if (strncmp(buf, "EHLO", 4) == 0)
				sink_say(fd, "250-sink\r\n250 8BITMIME\r\n");
			else if (strncmp(buf, "MAIL", 4) == 0)
				sink_say(fd, "250 ok\r\n");
			else if (strncmp(buf, "RCPT", 4) == 0)
				sink_say(fd, k->rcpt_reply);
			else if (strncmp(buf, "DATA", 4) == 0) {
				data = true;
				sink_say(fd, "354 go on\r\n");
			} else if (strncmp(buf, "QUIT", 4) == 0) {
				sink_say(fd, "221 bye\r\n");
				break;
			} else
				sink_say(fd, "500 what\r\n");
		}
		close(fd);
	}
	return NULL;
}

static void
sink_start(struct sink *k, const char *rcpt_reply)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof a;

	memset(k, 0, sizeof *k);
	k->rcpt_reply = rcpt_reply;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	k->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(k->lfd >= 0);
	assert_int_equal(bind(k->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(k->lfd, 4), 0);
	assert_int_equal(getsockname(k->lfd, (struct sockaddr *)&a, &alen), 0);
	k->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&k->th, NULL, sink_main, k), 0);
}

static void
sink_stop(struct sink *k)
{
	shutdown(k->lfd, SHUT_RDWR);
	close(k->lfd);
	pthread_join(k->th, NULL);
}

static void
test_mail_goes_through_a_relay(void **state)
{
	struct gh_mail_msg m = { "gh@example.test", "a@example.test", "Hi",
		"Body\n.dot" };
	char why[256];
	struct sink k;

	(void)state;
	sink_start(&k, "250 ok\r\n");
	assert_int_equal(gh_mail_send("127.0.0.1", (unsigned)k.port, "gh.test",
	    5, &m, why, sizeof why), GH_OK);
	sink_stop(&k);
	assert_int_equal(k.mails, 1);
	assert_non_null(strstr(k.transcript, "EHLO gh.test\r\n"));
	assert_non_null(strstr(k.transcript, "MAIL FROM:<gh@example.test>\r\n"));
	assert_non_null(strstr(k.transcript, "RCPT TO:<a@example.test>\r\n"));
	assert_non_null(strstr(k.transcript, "Body\r\n..dot\r\n.\r\n"));
}

static void
test_permanent_refusal_is_denied_with_the_reply(void **state)
{
	struct gh_mail_msg m = { "gh@example.test", "a@example.test", "Hi",
		"Body" };
	char why[256];
	struct sink k;

	(void)state;
	sink_start(&k, "550 no such user\r\n");
	assert_int_equal(gh_mail_send("127.0.0.1", (unsigned)k.port, "gh.test",
	    5, &m, why, sizeof why), GH_ERR_DENIED);
	sink_stop(&k);
	assert_int_equal(k.mails, 0);
	assert_non_null(strstr(why, "550 no such user"));
}

static void
test_drain_mails_pending_notices_and_retries_failures(void **state)
{
	struct gh_mailer_config cfg = { .host = "127.0.0.1",
		.from = "gh@example.test", .helo = "gh.test",
		.base_url = "https://id.example.test", .timeout_s = 5 };
	struct gh_test_tenant *f = *state;
	struct sink k;
	char s[16];
	int sent;

	notify(f->db, "u1", GH_NOTICE_RECOVERY_CODE_USED);
	notify(f->db, "u2", GH_NOTICE_RECOVERY_CODE_USED);
	/* Nobody listens: a temporary failure, retried later. */
	sink_start(&k, "250 ok\r\n");
	sink_stop(&k);
	cfg.port = (unsigned)k.port;
	assert_int_equal(gh_mailer_drain(f->db, &cfg, "acme", "Acme",
	    gh_now_ms(), &sent), GH_OK);
	assert_int_equal(sent, 0);
	assert_string_equal(mail_state(f->db, "u1", s), "pending");
	/* Not due yet: nothing is tried. */
	sink_start(&k, "250 ok\r\n");
	cfg.port = (unsigned)k.port;
	assert_int_equal(gh_mailer_drain(f->db, &cfg, "acme", "Acme",
	    gh_now_ms(), &sent), GH_OK);
	assert_int_equal(sent, 0);
	/* Due: mailed once, with the org, the facts and the account link. */
	assert_int_equal(gh_mailer_drain(f->db, &cfg, "acme", "Acme",
	    gh_now_ms() + 3600 * 1000, &sent), GH_OK);
	assert_int_equal(sent, 1);
	assert_int_equal(gh_mailer_drain(f->db, &cfg, "acme", "Acme",
	    gh_now_ms() + 7200 * 1000, &sent), GH_OK);
	assert_int_equal(sent, 0);
	sink_stop(&k);
	assert_int_equal(k.mails, 1);
	assert_string_equal(mail_state(f->db, "u1", s), "sent");
	assert_non_null(strstr(k.transcript, "Subject: [Acme] A recovery code"));
	assert_non_null(strstr(k.transcript, "Hello alice,"));
	assert_non_null(strstr(k.transcript, "From IP address: 192.0.2.7"));
	assert_non_null(strstr(k.transcript,
	    "https://id.example.test/o/acme/account"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_notices_are_listed_for_their_user_only,
		    setup, gh_test_tenant_teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_kinds_and_users_are_refused,
		    setup, gh_test_tenant_teardown),
		cmocka_unit_test_setup_teardown(test_marking_read_one_then_all,
		    setup, gh_test_tenant_teardown),
		cmocka_unit_test_setup_teardown(
		    test_users_without_email_get_no_mail,
		    setup, gh_test_tenant_teardown),
		cmocka_unit_test(test_addresses_are_checked),
		cmocka_unit_test(test_message_is_crlf_and_dot_stuffed),
		cmocka_unit_test(test_non_ascii_subjects_and_bodies_are_encoded),
		cmocka_unit_test(test_header_injection_is_refused),
		cmocka_unit_test(test_mail_goes_through_a_relay),
		cmocka_unit_test(test_permanent_refusal_is_denied_with_the_reply),
		cmocka_unit_test_setup_teardown(
		    test_drain_mails_pending_notices_and_retries_failures,
		    setup, gh_test_tenant_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
