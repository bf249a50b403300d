/* notify_int.h: shared by the files of src/notify only. */
#ifndef GH_NOTIFY_INT_H
#define GH_NOTIFY_INT_H

#include "notify/notify.h"

struct notice_kind {
	const char *kind;
	const char *title;	/* the mail subject and the feed's title */
	const char *text;	/* the mail's first paragraph */
};

/* The kind's wording, or NULL for an unknown kind. */
const struct notice_kind *notice_kind_find(const char *kind);

/* Builds the whole message (headers, blank line, dot-stuffed body with
 * CRLF line ends, without the final "."), malloc'd into *out. msg_id_host
 * names the host part of the Message-ID. GH_ERR_INVALID for bad
 * addresses or header values holding line breaks. Pure: unit-tested. */
gh_err mail_format(const struct gh_mail_msg *msg, const char *msg_id_host,
    int64_t now_ms, char **out) GH_MUST_CHECK;

#endif
