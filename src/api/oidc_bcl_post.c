/*
 * oidc_bcl_post.c: the one HTTP request back-channel logout makes: a form
 * POST to a client's backchannel_logout_uri, with libcurl. http and https
 * only, no redirects, no proxies (whatever the environment says), no
 * cookies; https verifies the peer and its host name against the system
 * trust store, or the one SSL_CERT_FILE / SSL_CERT_DIR name (OpenSSL's
 * convention, which libcurl does not read by itself). One deadline covers
 * everything, name resolution included. The answer's body is read and
 * dropped; only its status counts.
 *
 * Untrusted input: the URL (validated when the client's settings were
 * saved; libcurl parses it again) and the peer's answer (libcurl; the body
 * is bounded here). Secrets: the request body (a logout token) is handed
 * to libcurl and never logged; libcurl's verbose mode stays off.
 *
 * libcurl is loaded (dlopen) on the first post, not linked: it and the
 * twenty libraries it needs (ssh2, ldap, krb5, nghttp2, ...) cost about
 * 1.7 MB of resident memory in every server, most of which never sends a
 * back-channel logout. A libcurl that cannot be loaded fails that post
 * like any set-up failure (logged by the caller, retried later).
 */
#include "api/oidc_int.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BCL_BODY_MAX 65536	/* bytes of an answer read before giving up */

/* The libcurl functions used here, resolved once by curl_init. */
struct curl_fns {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	void (*easy_cleanup)(CURL *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

/* Loaded once under curl_mu; a failed load (say, out of descriptors) is
 * tried again on the next post rather than disabling posts until restart. */
static pthread_mutex_t curl_mu = PTHREAD_MUTEX_INITIALIZER;
static bool curl_ready;
static void *curl_lib;
static struct curl_fns cf;

/* Resolves one symbol of lib into *slot (a function pointer's storage:
 * POSIX guarantees dlsym's result converts). */
static bool
curl_sym(void *lib, const char *name, void *slot)
{
	void *f = dlsym(lib, name);

	if (f == NULL)
		return false;
	memcpy(slot, &f, sizeof f);
	return true;
}

/* Loads libcurl and initialises it; curl_mu held. */
static bool
curl_load(void)
{
	struct curl_fns f;

	/* Never unloaded: libcurl keeps global state once initialised. */
	if (curl_lib == NULL &&
	    (curl_lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL)) == NULL) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "cannot load libcurl: %s",
		    dlerror());
		return false;
	}
	if (!curl_sym(curl_lib, "curl_global_init", &f.global_init) ||
	    !curl_sym(curl_lib, "curl_easy_init", &f.easy_init) ||
	    !curl_sym(curl_lib, "curl_easy_setopt", &f.easy_setopt) ||
	    !curl_sym(curl_lib, "curl_easy_perform", &f.easy_perform) ||
	    !curl_sym(curl_lib, "curl_easy_getinfo", &f.easy_getinfo) ||
	    !curl_sym(curl_lib, "curl_easy_strerror", &f.easy_strerror) ||
	    !curl_sym(curl_lib, "curl_easy_cleanup", &f.easy_cleanup) ||
	    !curl_sym(curl_lib, "curl_slist_append", &f.slist_append) ||
	    !curl_sym(curl_lib, "curl_slist_free_all", &f.slist_free_all)) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "libcurl: missing symbol: %s",
		    dlerror());
		return false;
	}
	if (f.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		GH_LOG_ERR(GH_ERR_INTERNAL, "libcurl: global init failed");
		return false;
	}
	cf = f;
	return true;
}

/* True once libcurl is usable; loads it on the first call that can. */
static bool
curl_init(void)
{
	bool ok;

	pthread_mutex_lock(&curl_mu);
	if (!curl_ready)
		curl_ready = curl_load();
	ok = curl_ready;
	pthread_mutex_unlock(&curl_mu);
	return ok;
}

/* Drops the answer's body; stops a peer that sends too much. */
static size_t
discard(char *ptr, size_t size, size_t n, void *arg)
{
	size_t *seen = arg;

	(void)ptr;
	*seen += size * n;
	return *seen > BCL_BODY_MAX ? 0 : size * n;
}

static bool
setopts(CURL *c, const char *url, const char *body, unsigned timeout_s,
    struct curl_slist *hdrs, char *curl_err, size_t *seen)
{
	const char *ca_file = getenv("SSL_CERT_FILE");
	const char *ca_dir = getenv("SSL_CERT_DIR");
	bool ok = true;

#define SET(opt, val) ok = ok && cf.easy_setopt(c, opt, val) == CURLE_OK
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, (long)timeout_s);
	SET(CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	SET(CURLOPT_USERAGENT, "Gatehouse back-channel logout");
	SET(CURLOPT_WRITEFUNCTION, discard);
	SET(CURLOPT_WRITEDATA, seen);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	if (ca_file != NULL && ca_file[0] != '\0')
		SET(CURLOPT_CAINFO, ca_file);
	if (ca_dir != NULL && ca_dir[0] != '\0')
		SET(CURLOPT_CAPATH, ca_dir);
#undef SET
	return ok;
}

gh_err
oidc_http_post_form(const char *url, const char *body, unsigned timeout_s,
    int *status_out, char *errbuf, size_t errcap)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	size_t seen = 0;
	long status = 0;
	CURLcode rc;
	CURL *c = NULL;
	gh_err err = GH_OK;

	*status_out = 0;
	errbuf[0] = '\0';
	if (url == NULL || !oidc_redirect_uri_valid(url)) {
		snprintf(errbuf, errcap, "not an http(s) URL it may call");
		return GH_ERR_INVALID;
	}
	if (!curl_init() || (c = cf.easy_init()) == NULL ||
	    (hdrs = cf.slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded")) == NULL ||
	    !setopts(c, url, body, timeout_s, hdrs, curl_err, &seen)) {
		snprintf(errbuf, errcap, "HTTP client set-up failed");
		err = GH_ERR_INTERNAL;
		goto out;
	}
	rc = cf.easy_perform(c);
	cf.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	/* A status line came back: that is the answer, even if the body
	 * was cut short. */
	if (status >= 100 && status <= 999) {
		*status_out = (int)status;
	} else {
		snprintf(errbuf, errcap, "%s", curl_err[0] != '\0' ? curl_err :
		    cf.easy_strerror(rc));
		err = GH_ERR_IO;
	}
out:
	if (hdrs != NULL)
		cf.slist_free_all(hdrs);
	if (c != NULL)
		cf.easy_cleanup(c);
	return err;
}
