/*
 * notify.h: notices to a user about their own account's security (a
 * recovery code used, second factors reset by an admin, a factor added or
 * removed, a sign-in denied from another device), and the mailer that
 * sends them by SMTP.
 *
 * A notice is written to the tenant database in the transaction of the
 * event it tells about, so it exists exactly when the event committed; the
 * row doubles as the mail outbox. The account shows the notices; when an
 * SMTP relay is configured and the user has an e-mail address, the mailer
 * thread sends each one, retrying with backoff.
 *
 * Secrets: notices never carry codes, tokens or keys; data holds only the
 * method, the source IP and user agent and similar facts.
 */
#ifndef GH_NOTIFY_H
#define GH_NOTIFY_H

#include <jansson.h>

#include "core/core.h"
#include "store/store.h"

/* Kinds, each with its mail subject and text (notify.c). */
#define GH_NOTICE_RECOVERY_CODE_USED "mfa_recovery_code_used"
#define GH_NOTICE_MFA_RESET "mfa_reset"
#define GH_NOTICE_FACTOR_ADDED "mfa_factor_added"
#define GH_NOTICE_FACTOR_REMOVED "mfa_factor_removed"
#define GH_NOTICE_SIGNIN_DENIED "signin_denied"
#define GH_NOTICE_CLONED_KEY "possible_cloned_authenticator"

/* True for the kinds above. */
bool gh_notify_kind_valid(const char *kind);

/*
 * Records a notice for user_id in the caller's transaction. data is a JSON
 * object (borrowed; NULL means {}) of facts shown with it, e.g.
 * {"method": "totp", "source_ip": "…"}. The mail is queued when the user
 * has an e-mail address. GH_ERR_INVALID for an unknown kind,
 * GH_ERR_NOTFOUND for an unknown user.
 */
gh_err gh_notify_user(struct gh_db *db, const char *user_id, const char *kind,
    json_t *data) GH_MUST_CHECK;

#define GH_NOTIFY_LIST_MAX 100

/* The newest notices of user_id (at most limit, 1..GH_NOTIFY_LIST_MAX;
 * only unread ones with unread_only) as a JSON array of {"id", "kind",
 * "title", "data", "created_at", "read"}; *unread_out counts all unread. */
gh_err gh_notify_list(struct gh_db *db, const char *user_id, bool unread_only,
    int limit, json_t **out, int64_t *unread_out) GH_MUST_CHECK;

/* Marks one notice (id) or all of them (id NULL) of user_id read.
 * GH_ERR_NOTFOUND when id is not one of the user's notices. */
gh_err gh_notify_mark_read(struct gh_db *db, const char *user_id,
    const char *id, int64_t now_ms, int64_t *count_out) GH_MUST_CHECK;

/* The one-line title of a kind, for pages and mail subjects. */
const char *gh_notify_title(const char *kind);

/* ---- outbox workers ---------------------------------------------------------- */

/*
 * One thread working through the outboxes of one kind (mail, back-channel
 * logouts), org by org: it keeps the orgs with due work and the time each
 * is due, sleeps until the earliest, and runs them one at a time. Work is
 * found from kicks (this process queued a row and committed), from retry
 * times, and from the directory's outbox hints (gh_db_outbox_hint, written
 * by any process before its row commits): the hints written since the last
 * look every poll_ms, all of them at start and every scan_ms. Never opens
 * an org's database to find out whether it has work.
 */
struct gh_org;
struct gh_outbox;

struct gh_outbox_ops {
	const char *name;	/* for the log: "mail" */
	/* Does one org's due work (org active; db its tenant handle, held
	 * by the worker) and sets *next_out to when it is next due (ms
	 * since the epoch), 0 when its outbox is empty (the hint is then
	 * cleared). An error retries the org after retry_ms. Without st
	 * (unit tests) org holds only the id and db is NULL. */
	gh_err (*run)(void *arg, struct gh_outbox *w, const struct gh_org *org,
	    struct gh_db *db, int64_t *next_out);
	void *arg;
	struct gh_store *st;	/* borrowed; NULL: no hints, no tenants */
	const char *kind;	/* the hint kind, with st: "mail", "bcl" */
	int64_t poll_ms;	/* reading new hints; > 0 with st */
	int64_t scan_ms;	/* reading every hint; 0: at start only */
	int64_t retry_ms;	/* after a failed run; > 0 */
};

/* Starts the thread (ops copied; the strings and st must outlive it).
 * GH_ERR_INVALID for missing callbacks or times. */
gh_err gh_outbox_start(const struct gh_outbox_ops *ops, struct gh_outbox **out)
    GH_MUST_CHECK;
/* Runs org_id now (after the run in progress). NULL w is a no-op. */
void gh_outbox_kick(struct gh_outbox *w, const char *org_id);
/* Runs org_id at `at` (ms since the epoch), or earlier if it is already
 * due earlier. NULL w is a no-op. */
void gh_outbox_due(struct gh_outbox *w, const char *org_id, int64_t at);
/* True once gh_outbox_stop was called: a run should return soon. */
bool gh_outbox_stopping(struct gh_outbox *w);
/* Stops the thread (after the run in progress) and frees. NULL no-op. */
void gh_outbox_stop(struct gh_outbox *w);

/* ---- mail ------------------------------------------------------------------ */

#define GH_MAIL_MAX_ATTEMPTS 5
/* A notice not mailed within this time is dropped from the outbox (it is
 * still shown in the account): stale mail is worse than none. */
#define GH_MAIL_MAX_AGE_MS (24LL * 3600 * 1000)

struct gh_mail_msg {
	const char *from;	/* bare addresses, no display names */
	const char *to;
	const char *subject;	/* UTF-8; encoded per RFC 2047 when needed */
	const char *body;	/* UTF-8 text, lines separated by \n */
};

/* A bare address: 3-254 bytes of printable ASCII without spaces, quotes,
 * angle brackets or commas, with one '@' not at either end. */
bool gh_mail_addr_valid(const char *addr);

/*
 * Sends msg through the SMTP relay at host:port (plain SMTP, as to a relay
 * on the same host or network that handles onward delivery), greeting as
 * helo. Each network step waits at most timeout_s. On failure the reply or
 * the cause goes to errbuf (no message content). GH_ERR_INVALID for a bad
 * address, GH_ERR_IO for a network failure or a temporary refusal (4xx),
 * GH_ERR_DENIED for a permanent one (5xx).
 */
gh_err gh_mail_send(const char *host, unsigned port, const char *helo,
    unsigned timeout_s, const struct gh_mail_msg *msg, char *errbuf,
    size_t errcap) GH_MUST_CHECK;

struct gh_mailer_config {
	char host[256];		/* empty: no mail */
	unsigned port;
	char from[256];
	char helo[256];
	char base_url[512];	/* for the link in each mail */
	unsigned timeout_s;
};

struct gh_mailer;

/* Starts the mailer thread (an outbox worker of kind "mail"): it finds
 * the orgs with mail to send from the outbox hints, then from kicks. The
 * store is borrowed. */
gh_err gh_mailer_start(struct gh_store *st, const struct gh_mailer_config *cfg,
    struct gh_mailer **out) GH_MUST_CHECK;
/* Asks the mailer to send org_id's pending mail soon. NULL is a no-op. */
void gh_mailer_kick(struct gh_mailer *m, const char *org_id);
/* Stops the thread (after the message in flight) and frees. NULL no-op. */
void gh_mailer_stop(struct gh_mailer *m);

/* Sends the pending mail of one org's outbox now (what the thread does on
 * a kick); *sent_out counts the mails accepted by the relay. */
gh_err gh_mailer_drain(struct gh_db *db, const struct gh_mailer_config *cfg,
    const char *org_slug, const char *org_name, int64_t now_ms,
    int *sent_out) GH_MUST_CHECK;

#endif
