/*
 * provider_pkcs11.c: the PKCS#11 master-key provider (SoftHSM2 in tests, an
 * HSM in production). Master keys are AES-256 secret keys generated inside
 * the token, sensitive and non-extractable, labelled (and with CKA_ID)
 * "gatehouse-master-<version>". Wrapping is CKM_AES_GCM inside the token:
 * a blob is iv (12) | ciphertext (32) | tag (16).
 *
 * Untrusted input: wrapped blobs read from the key store (authenticated by
 * the token before any byte reaches the caller) and whatever the token
 * holds (labels are parsed strictly; keys that are extractable or not
 * AES-256 are refused). Secrets: the user PIN (a locked gh_secret, wiped on
 * free) and unwrapped keys, which pass through a locked scratch buffer
 * (SoftHSM wants room for ciphertext + tag), wiped after every unwrap, on
 * their way to the caller's buffer. Master key values never leave the
 * token.
 *
 * Thread safety: one session per provider, serialised by a mutex. A
 * session that the token lost (closed, logged out) is reopened once and
 * the operation retried.
 *
 * A PKCS#11 module is initialised once per process, not per caller, so
 * the module references are counted in a small process-wide table (the
 * one mutable global here): C_Finalize runs when the last provider using a
 * module is freed, and only if a provider initialised it.
 */
#include "kms/kms_int.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define LABEL_PREFIX "gatehouse-master-"
#define LABEL_PREFIX_LEN (sizeof LABEL_PREFIX - 1)
#define LABEL_MAX 64		/* longer labels are not ours */
#define TOKEN_LABEL_LEN 32	/* CK_TOKEN_INFO.label, blank-padded */
#define IV_LEN 12
#define TAG_LEN 16
#define BLOB_LEN (IV_LEN + GH_KMS_KEY_LEN + TAG_LEN)
#define MAX_OBJECTS 65536	/* bound on secret keys listed per call */

struct p11_provider {
	struct kms_provider base;	/* first: the vtable callers see */
	pthread_mutex_t mu;
	void *dl;
	CK_FUNCTION_LIST_PTR fl;
	bool module_ref;		/* holds a reference in the module table */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	bool session_open;
	CK_RV last_rv;			/* of the last failed call, for retry */
	char *module;
	char *label;
	struct gh_secret *pin;
	/* SoftHSM wants room for ciphertext + tag before it decrypts, so
	 * plaintext lands here (locked, wiped after every use) first. */
	struct gh_secret *scratch;
};

/* ---- process-wide module table ------------------------------------------ */

struct module_ref {
	CK_FUNCTION_LIST_PTR fl;
	unsigned refs;
	bool initialised_here;	/* we ran C_Initialize, so we finalise */
	struct module_ref *next;
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static struct module_ref *modules;

static void
lock(pthread_mutex_t *mu)
{
	if (pthread_mutex_lock(mu) != 0)
		GH_PANIC("pthread_mutex_lock failed");
}

static void
unlock(pthread_mutex_t *mu)
{
	if (pthread_mutex_unlock(mu) != 0)
		GH_PANIC("pthread_mutex_unlock failed");
}

static const char *
rv_str(CK_RV rv)
{
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return "CKR_ENCRYPTED_DATA_LEN_RANGE";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
	case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
	case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_TOKEN_WRITE_PROTECTED: return "CKR_TOKEN_WRITE_PROTECTED";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_USER_PIN_NOT_INITIALIZED:
		return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return "CKR_CRYPTOKI_NOT_INITIALIZED";
	default: return "CKR_(other)";
	}
}

/* Takes a reference on the module, initialising it on first use. */
static CK_RV
module_acquire(CK_FUNCTION_LIST_PTR fl)
{
	CK_C_INITIALIZE_ARGS args;
	struct module_ref *m;
	CK_RV rv;

	lock(&modules_mu);
	for (m = modules; m != NULL; m = m->next) {
		if (m->fl == fl) {
			m->refs++;
			unlock(&modules_mu);
			return CKR_OK;
		}
	}
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		unlock(&modules_mu);
		return CKR_HOST_MEMORY;
	}
	memset(&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	rv = fl->C_Initialize(&args);
	if (rv == CKR_OK) {
		m->initialised_here = true;
	} else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* Someone else in the process owns it otherwise. */
		unlock(&modules_mu);
		free(m);
		return rv;
	}
	m->fl = fl;
	m->refs = 1;
	m->next = modules;
	modules = m;
	unlock(&modules_mu);
	return CKR_OK;
}

/*
 * Closes the provider's session and drops its module reference. The last
 * provider of a module logs out first (a logout is per application, so an
 * earlier one would log its siblings out) and finalises a module it
 * initialised.
 */
static void
module_release(struct p11_provider *p)
{
	struct module_ref **mp, *m;
	bool last = true;

	lock(&modules_mu);
	for (mp = &modules; *mp != NULL; mp = &(*mp)->next) {
		if ((*mp)->fl == p->fl)
			break;
	}
	m = *mp;
	if (m == NULL)
		GH_PANIC("pkcs11 module reference missing");
	last = m->refs == 1;
	if (p->session_open) {
		if (last)
			(void)p->fl->C_Logout(p->session);
		(void)p->fl->C_CloseSession(p->session);
		p->session_open = false;
	}
	if (--m->refs == 0) {
		*mp = m->next;
		if (m->initialised_here)
			(void)p->fl->C_Finalize(NULL);
		free(m);
	}
	p->module_ref = false;
	unlock(&modules_mu);
}

/* ---- token and session --------------------------------------------------- */

static void
set_msg(char *msg, size_t cap, const char *fmt, ...) GH_PRINTF(3, 4);

static void
set_msg(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (msg == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
}

/* True if the blank-padded token label equals want. */
static bool
token_label_eq(const CK_UTF8CHAR label[TOKEN_LABEL_LEN], const char *want)
{
	size_t n = TOKEN_LABEL_LEN, want_len = strlen(want);

	while (n > 0 && (label[n - 1] == ' ' || label[n - 1] == '\0'))
		n--;
	return n == want_len && memcmp(label, want, n) == 0;
}

/* Finds the one slot whose token carries p->label. */
static gh_err
find_slot(struct p11_provider *p, char *msg, size_t cap)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i, found = 0;
	CK_TOKEN_INFO info;
	CK_FLAGS flags = 0;
	gh_err err = GH_OK;
	CK_RV rv;

	rv = p->fl->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		goto fail;
	/* Slots may appear between the two calls: retry a few times. */
	for (i = 0; i < 4; i++) {
		free(slots);
		slots = calloc(n + 1, sizeof *slots);
		if (slots == NULL) {
			err = GH_ERR_NOMEM;
			set_msg(msg, cap, "out of memory listing PKCS#11 slots");
			goto out;
		}
		n++;
		rv = p->fl->C_GetSlotList(CK_TRUE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		memset(&info, 0, sizeof info);
		if (p->fl->C_GetTokenInfo(slots[i], &info) != CKR_OK)
			continue;
		if (!token_label_eq(info.label, p->label))
			continue;
		found++;
		p->slot = slots[i];
		flags = info.flags;
	}
	if (found == 0) {
		err = GH_ERR_NOTFOUND;
		set_msg(msg, cap, "no PKCS#11 token labelled \"%s\" in module "
		    "%s (%lu slots with a token)", p->label, p->module,
		    (unsigned long)n);
		goto out;
	}
	if (found > 1) {
		err = GH_ERR_INVALID;
		set_msg(msg, cap, "%lu PKCS#11 tokens are labelled \"%s\"; "
		    "labels must be unique", (unsigned long)found, p->label);
		goto out;
	}
	if (!(flags & CKF_TOKEN_INITIALIZED) ||
	    !(flags & CKF_USER_PIN_INITIALIZED)) {
		err = GH_ERR_INVALID;
		set_msg(msg, cap, "PKCS#11 token \"%s\" has no user PIN set "
		    "(initialise it first)", p->label);
		goto out;
	}
	if (flags & CKF_USER_PIN_LOCKED) {
		err = GH_ERR_DENIED;
		set_msg(msg, cap, "the user PIN of PKCS#11 token \"%s\" is "
		    "locked (too many wrong PINs); the security officer must "
		    "reset it", p->label);
		goto out;
	}
	goto out;
fail:
	err = GH_ERR_INTERNAL;
	set_msg(msg, cap, "cannot list the slots of PKCS#11 module %s: %s "
	    "(0x%lx)", p->module, rv_str(rv), (unsigned long)rv);
out:
	free(slots);
	return err;
}

static gh_err
login_err(struct p11_provider *p, CK_RV rv, char *msg, size_t cap)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LEN_RANGE:
		set_msg(msg, cap, "wrong PKCS#11 PIN for token \"%s\"",
		    p->label);
		return GH_ERR_DENIED;
	case CKR_PIN_LOCKED:
		set_msg(msg, cap, "the user PIN of PKCS#11 token \"%s\" is "
		    "locked (too many wrong PINs); the security officer must "
		    "reset it", p->label);
		return GH_ERR_DENIED;
	case CKR_PIN_EXPIRED:
		set_msg(msg, cap, "the user PIN of PKCS#11 token \"%s\" has "
		    "expired; set a new one", p->label);
		return GH_ERR_DENIED;
	case CKR_USER_PIN_NOT_INITIALIZED:
		set_msg(msg, cap, "PKCS#11 token \"%s\" has no user PIN set",
		    p->label);
		return GH_ERR_INVALID;
	default:
		set_msg(msg, cap, "login to PKCS#11 token \"%s\" failed: %s "
		    "(0x%lx)", p->label, rv_str(rv), (unsigned long)rv);
		return GH_ERR_INTERNAL;
	}
}

/* Opens a RW session on p->slot and logs the user in. */
static gh_err
session_start(struct p11_provider *p, char *msg, size_t cap)
{
	CK_RV rv;

	rv = p->fl->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &p->session);
	if (rv != CKR_OK) {
		set_msg(msg, cap, "cannot open a session on PKCS#11 token "
		    "\"%s\": %s%s", p->label, rv_str(rv),
		    rv == CKR_TOKEN_WRITE_PROTECTED ?
		    " (the token is read-only)" : "");
		return rv == CKR_TOKEN_WRITE_PROTECTED ? GH_ERR_INVALID :
		    GH_ERR_INTERNAL;
	}
	p->session_open = true;
	rv = p->fl->C_Login(p->session, CKU_USER, p->pin->data,
	    (CK_ULONG)p->pin->len);
	/* Another provider of this process may have logged in already. */
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return login_err(p, rv, msg, cap);
	return GH_OK;
}

static bool
session_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_REMOVED ||
	    rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_OPERATION_ACTIVE;
}

/* Replaces a session the token lost or left with an operation active. */
static gh_err
session_restart(struct p11_provider *p)
{
	char msg[256];
	gh_err err;

	GH_LOG_WARN(GH_OK, "token %s: reopening the session (%s)", p->label,
	    rv_str(p->last_rv));
	if (p->session_open) {
		(void)p->fl->C_CloseSession(p->session);
		p->session_open = false;
	}
	err = find_slot(p, msg, sizeof msg);
	if (err == GH_OK)
		err = session_start(p, msg, sizeof msg);
	if (err != GH_OK) {
		GH_LOG_ERR(err, "%s", msg);
		if (p->session_open) {
			(void)p->fl->C_CloseSession(p->session);
			p->session_open = false;
		}
	}
	return err;
}

/* ---- master keys --------------------------------------------------------- */

/* Parses "gatehouse-master-<n>": n decimal, no leading zero, 1..UINT32_MAX. */
static bool
label_version(const char *label, size_t len, uint32_t *version)
{
	uint64_t v = 0;
	size_t i;

	if (len <= LABEL_PREFIX_LEN || len > LABEL_PREFIX_LEN + 10 ||
	    memcmp(label, LABEL_PREFIX, LABEL_PREFIX_LEN) != 0 ||
	    label[LABEL_PREFIX_LEN] == '0')
		return false;
	for (i = LABEL_PREFIX_LEN; i < len; i++) {
		if (label[i] < '0' || label[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(label[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*version = (uint32_t)v;
	return true;
}

/*
 * Refuses a key that could leave the token or is not an AES-256 key usable
 * for GCM: whoever put it there did not follow the contract.
 */
static gh_err
check_key(struct p11_provider *p, CK_OBJECT_HANDLE h, const char *label)
{
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
	CK_BBOOL enc = CK_FALSE, dec = CK_FALSE;
	CK_KEY_TYPE type = 0;
	CK_ULONG len = 0;
	CK_ATTRIBUTE t[] = {
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_SENSITIVE, &sensitive, sizeof sensitive },
		{ CKA_EXTRACTABLE, &extractable, sizeof extractable },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_ENCRYPT, &enc, sizeof enc },
		{ CKA_DECRYPT, &dec, sizeof dec },
	};
	CK_RV rv;

	rv = p->fl->C_GetAttributeValue(p->session, h, t, sizeof t / sizeof t[0]);
	if (rv != CKR_OK) {
		p->last_rv = rv;
		GH_LOG_ERR(GH_ERR_INTERNAL, "token %s: reading the attributes "
		    "of %s failed: %s", p->label, label, rv_str(rv));
		return GH_ERR_INTERNAL;
	}
	if (type != CKK_AES || len != GH_KMS_KEY_LEN || sensitive != CK_TRUE ||
	    extractable != CK_FALSE || enc != CK_TRUE || dec != CK_TRUE) {
		GH_LOG_ERR(GH_ERR_INVALID, "token %s: key %s is not a "
		    "sensitive, non-extractable AES-256 encrypt/decrypt key; "
		    "refusing it", p->label, label);
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

/* Collects the handles of the token's secret keys matching t. */
static gh_err
find_objects(struct p11_provider *p, CK_ATTRIBUTE *t, CK_ULONG t_len,
    CK_OBJECT_HANDLE **out, CK_ULONG *n_out)
{
	CK_OBJECT_HANDLE *h = NULL, *grown;
	CK_ULONG n = 0, cap = 0, got;
	gh_err err = GH_OK;
	CK_RV rv;

	*out = NULL;
	*n_out = 0;
	rv = p->fl->C_FindObjectsInit(p->session, t, t_len);
	if (rv != CKR_OK) {
		p->last_rv = rv;
		GH_LOG_ERR(GH_ERR_INTERNAL, "token %s: C_FindObjectsInit: %s",
		    p->label, rv_str(rv));
		return GH_ERR_INTERNAL;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= MAX_OBJECTS) {
				err = GH_ERR_LIMIT;
				GH_LOG_ERR(err, "token %s: more than %d "
				    "secret keys", p->label, MAX_OBJECTS);
				break;
			}
			cap = cap == 0 ? 16 : cap * 2;
			grown = realloc(h, cap * sizeof *h);
			if (grown == NULL) {
				err = GH_ERR_NOMEM;
				break;
			}
			h = grown;
		}
		got = 0;
		rv = p->fl->C_FindObjects(p->session, h + n, cap - n, &got);
		if (rv != CKR_OK) {
			p->last_rv = rv;
			err = GH_ERR_INTERNAL;
			GH_LOG_ERR(err, "token %s: C_FindObjects: %s",
			    p->label, rv_str(rv));
			break;
		}
		if (got == 0)
			break;
		n += got;
	}
	(void)p->fl->C_FindObjectsFinal(p->session);
	if (err != GH_OK) {
		free(h);
		return err;
	}
	*out = h;
	*n_out = n;
	return GH_OK;
}

/*
 * Lists the master keys: *count counts every key whose label starts with
 * the prefix (parsable or not), *max is the highest version (0 if none).
 * A master key that is not sensitive, non-extractable AES-256, or two keys
 * with one label, make it fail.
 */
static gh_err
list_versions(struct p11_provider *p, uint32_t *max, CK_ULONG *count)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_TOKEN, &yes, sizeof yes },
	};
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0, i, j;
	char label[LABEL_MAX + 1];
	uint32_t *versions = NULL, v;
	size_t nv = 0;
	gh_err err;
	CK_RV rv;

	*max = 0;
	*count = 0;
	err = find_objects(p, t, sizeof t / sizeof t[0], &h, &n);
	if (err != GH_OK)
		return err;
	versions = calloc(n + 1, sizeof *versions);
	if (versions == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		CK_ATTRIBUTE a = { CKA_LABEL, label, LABEL_MAX };

		rv = p->fl->C_GetAttributeValue(p->session, h[i], &a, 1);
		if (rv == CKR_BUFFER_TOO_SMALL ||
		    rv == CKR_ATTRIBUTE_TYPE_INVALID)
			continue;	/* too long to be ours, or unlabelled */
		if (rv != CKR_OK || a.ulValueLen > LABEL_MAX) {
			p->last_rv = rv;
			err = GH_ERR_INTERNAL;
			GH_LOG_ERR(err, "token %s: reading a key label: %s",
			    p->label, rv_str(rv));
			goto out;
		}
		label[a.ulValueLen] = '\0';
		if (a.ulValueLen < LABEL_PREFIX_LEN ||
		    memcmp(label, LABEL_PREFIX, LABEL_PREFIX_LEN) != 0)
			continue;
		(*count)++;
		if (!label_version(label, a.ulValueLen, &v)) {
			GH_LOG_WARN(GH_ERR_INVALID, "token %s: ignoring key "
			    "with malformed label \"%s\"", p->label, label);
			continue;
		}
		for (j = 0; j < nv; j++) {
			if (versions[j] == v) {
				err = GH_ERR_INVALID;
				GH_LOG_ERR(err, "token %s: two keys are "
				    "labelled %s", p->label, label);
				goto out;
			}
		}
		err = check_key(p, h[i], label);
		if (err != GH_OK)
			goto out;
		versions[nv++] = v;
		if (v > *max)
			*max = v;
	}
out:
	free(versions);
	free(h);
	return err;
}

static void
version_label(uint32_t version, char label[static LABEL_MAX + 1])
{
	(void)snprintf(label, LABEL_MAX + 1, LABEL_PREFIX "%" PRIu32, version);
}

/* Finds the one usable key of version. GH_ERR_NOTFOUND when absent. */
static gh_err
find_key(struct p11_provider *p, uint32_t version, CK_OBJECT_HANDLE *out)
{
	char label[LABEL_MAX + 1];
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_LABEL, label, 0 },
	};
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG n = 0;
	gh_err err;

	if (version == 0)
		return GH_ERR_NOTFOUND;
	version_label(version, label);
	t[2].ulValueLen = strlen(label);
	err = find_objects(p, t, sizeof t / sizeof t[0], &h, &n);
	if (err != GH_OK)
		return err;
	if (n == 0) {
		err = GH_ERR_NOTFOUND;
	} else if (n > 1) {
		err = GH_ERR_INVALID;
		GH_LOG_ERR(err, "token %s: %lu keys are labelled %s", p->label,
		    (unsigned long)n, label);
	} else {
		err = check_key(p, h[0], label);
		*out = h[0];
	}
	free(h);
	return err;
}

static gh_err
generate_key(struct p11_provider *p, uint32_t version)
{
	char label[LABEL_MAX + 1];
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_ULONG len = GH_KMS_KEY_LEN;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_TOKEN, &yes, sizeof yes },
		{ CKA_PRIVATE, &yes, sizeof yes },
		{ CKA_SENSITIVE, &yes, sizeof yes },
		{ CKA_EXTRACTABLE, &no, sizeof no },
		{ CKA_ENCRYPT, &yes, sizeof yes },
		{ CKA_DECRYPT, &yes, sizeof yes },
		/* Not a key-wrapping key: nothing else leaves under it. */
		{ CKA_WRAP, &no, sizeof no },
		{ CKA_UNWRAP, &no, sizeof no },
		{ CKA_VALUE_LEN, &len, sizeof len },
		{ CKA_LABEL, label, 0 },
		{ CKA_ID, label, 0 },
	};
	CK_OBJECT_HANDLE h;
	CK_RV rv;

	version_label(version, label);
	t[11].ulValueLen = strlen(label);
	t[12].ulValueLen = strlen(label);
	rv = p->fl->C_GenerateKey(p->session, &mech, t, sizeof t / sizeof t[0],
	    &h);
	if (rv != CKR_OK) {
		p->last_rv = rv;
		GH_LOG_ERR(GH_ERR_INTERNAL, "token %s: generating %s failed: "
		    "%s (0x%lx)", p->label, label, rv_str(rv),
		    (unsigned long)rv);
		return GH_ERR_INTERNAL;
	}
	GH_LOG_INFO("token %s: generated master key %s", p->label, label);
	return GH_OK;
}

/* ---- provider operations ------------------------------------------------- */

static struct p11_provider *
prov(struct kms_provider *base)
{
	return (struct p11_provider *)base;
}

static gh_err
current_locked(struct p11_provider *p, uint32_t *version)
{
	CK_ULONG count;
	uint32_t max;
	gh_err err;

	err = list_versions(p, &max, &count);
	if (err != GH_OK)
		return err;
	if (max == 0)
		return GH_ERR_NOTFOUND;
	*version = max;
	return GH_OK;
}

static gh_err
p11_current(struct kms_provider *base, uint32_t *version)
{
	struct p11_provider *p = prov(base);
	gh_err err;

	if (version == NULL)
		return GH_ERR_INVALID;
	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = current_locked(p, version);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = current_locked(p, version);
	}
	unlock(&p->mu);
	return err;
}

static bool
p11_has(struct kms_provider *base, uint32_t version)
{
	struct p11_provider *p = prov(base);
	CK_OBJECT_HANDLE h;
	gh_err err;

	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = find_key(p, version, &h);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = find_key(p, version, &h);
	}
	unlock(&p->mu);
	return err == GH_OK;
}

static gh_err
rotate_locked(struct p11_provider *p, uint32_t *version)
{
	CK_ULONG count;
	uint32_t max;
	gh_err err;

	err = list_versions(p, &max, &count);
	if (err != GH_OK)
		return err;
	if (max == UINT32_MAX)
		return GH_ERR_LIMIT;
	err = generate_key(p, max + 1);
	if (err != GH_OK)
		return err;
	*version = max + 1;
	return GH_OK;
}

static gh_err
p11_rotate(struct kms_provider *base, uint32_t *version)
{
	struct p11_provider *p = prov(base);
	gh_err err;

	if (version == NULL)
		return GH_ERR_INVALID;
	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = rotate_locked(p, version);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = rotate_locked(p, version);
	}
	unlock(&p->mu);
	if (err != GH_OK)
		GH_LOG_ERR(err, "token %s: master key rotation failed",
		    p->label);
	return err;
}

static void
gcm_params(CK_GCM_PARAMS *gcm, uint8_t *iv, const uint8_t *aad,
    size_t aad_len)
{
	memset(gcm, 0, sizeof *gcm);
	gcm->pIv = iv;
	gcm->ulIvLen = IV_LEN;
	gcm->ulIvBits = IV_LEN * 8;
	gcm->pAAD = (CK_BYTE_PTR)aad;
	gcm->ulAADLen = (CK_ULONG)aad_len;
	gcm->ulTagBits = TAG_LEN * 8;
}

/* Seals key into blob (iv | ct | tag) under version's master key. */
static gh_err
wrap_locked(struct p11_provider *p, uint32_t version,
    const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad, size_t aad_len,
    uint8_t blob[BLOB_LEN])
{
	CK_GCM_PARAMS gcm;
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof gcm };
	CK_OBJECT_HANDLE h;
	CK_ULONG ct_len = BLOB_LEN - IV_LEN;
	gh_err err;
	CK_RV rv;

	err = find_key(p, version, &h);
	if (err != GH_OK)
		return err;
	/* A fresh IV per attempt: a retried call never reuses one. */
	err = gh_rand_bytes(blob, IV_LEN);
	if (err != GH_OK)
		return err;
	gcm_params(&gcm, blob, aad, aad_len);
	rv = p->fl->C_EncryptInit(p->session, &mech, h);
	if (rv == CKR_OK)
		rv = p->fl->C_Encrypt(p->session, (CK_BYTE_PTR)key,
		    GH_KMS_KEY_LEN, blob + IV_LEN, &ct_len);
	if (rv != CKR_OK)
		p->last_rv = rv;
	/* The operation stays active after this one: reset the session. */
	if (rv == CKR_BUFFER_TOO_SMALL)
		(void)session_restart(p);
	if (rv != CKR_OK) {
		GH_LOG_ERR(GH_ERR_CRYPTO, "token %s: wrapping under master "
		    "version %" PRIu32 " failed: %s (0x%lx)", p->label,
		    version, rv_str(rv), (unsigned long)rv);
		return GH_ERR_CRYPTO;
	}
	if (ct_len != BLOB_LEN - IV_LEN) {
		GH_LOG_ERR(GH_ERR_CRYPTO, "token %s: AES-GCM gave %lu bytes, "
		    "not %d", p->label, (unsigned long)ct_len,
		    BLOB_LEN - IV_LEN);
		return GH_ERR_CRYPTO;
	}
	return GH_OK;
}

static gh_err
p11_wrap(struct kms_provider *base, uint32_t version,
    const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad, size_t aad_len,
    struct gh_buf *out)
{
	struct p11_provider *p = prov(base);
	uint8_t blob[BLOB_LEN];
	gh_err err;

	if (key == NULL || out == NULL || (aad == NULL && aad_len != 0) ||
	    aad_len > UINT32_MAX)
		return GH_ERR_INVALID;
	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = wrap_locked(p, version, key, aad, aad_len, blob);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = wrap_locked(p, version, key, aad, aad_len, blob);
	}
	unlock(&p->mu);
	if (err == GH_OK) {
		gh_buf_put(out, blob, sizeof blob);
		err = gh_buf_err(out);
	}
	gh_wipe(blob, sizeof blob);
	return err;
}

/* Opens blob into key. GH_ERR_CRYPTO for a bad tag. */
static gh_err
unwrap_locked(struct p11_provider *p, uint32_t version, const uint8_t *blob,
    const uint8_t *aad, size_t aad_len, uint8_t key[GH_KMS_KEY_LEN])
{
	uint8_t iv[IV_LEN];
	CK_GCM_PARAMS gcm;
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof gcm };
	CK_OBJECT_HANDLE h;
	CK_ULONG pt_len = (CK_ULONG)p->scratch->len;
	gh_err err;
	CK_RV rv;

	err = find_key(p, version, &h);
	if (err != GH_OK)
		return err;
	/* The token may not keep const promises: give it a copy. */
	memcpy(iv, blob, IV_LEN);
	gcm_params(&gcm, iv, aad, aad_len);
	rv = p->fl->C_DecryptInit(p->session, &mech, h);
	if (rv == CKR_OK)
		rv = p->fl->C_Decrypt(p->session, (CK_BYTE_PTR)blob + IV_LEN,
		    BLOB_LEN - IV_LEN, p->scratch->data, &pt_len);
	if (rv == CKR_OK && pt_len == GH_KMS_KEY_LEN) {
		memcpy(key, p->scratch->data, GH_KMS_KEY_LEN);
		gh_wipe(p->scratch->data, p->scratch->len);
		return GH_OK;
	}
	gh_wipe(p->scratch->data, p->scratch->len);
	p->last_rv = rv;
	/* The operation stays active after this one: reset the session. */
	if (rv == CKR_BUFFER_TOO_SMALL)
		(void)session_restart(p);
	switch (rv) {
	case CKR_OK:		/* a wrong length: not one of our blobs */
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
	case CKR_GENERAL_ERROR:	/* SoftHSM's answer to a bad tag */
	case CKR_FUNCTION_FAILED:
		GH_LOG_ERR(GH_ERR_CRYPTO, "token %s: unwrap under master "
		    "version %" PRIu32 " failed authentication (%s)",
		    p->label, version, rv_str(rv));
		return GH_ERR_CRYPTO;
	default:
		GH_LOG_ERR(GH_ERR_INTERNAL, "token %s: unwrap under master "
		    "version %" PRIu32 " failed: %s (0x%lx)", p->label,
		    version, rv_str(rv), (unsigned long)rv);
		return GH_ERR_INTERNAL;
	}
}

static gh_err
p11_unwrap(struct kms_provider *base, uint32_t version, const uint8_t *blob,
    size_t blob_len, const uint8_t *aad, size_t aad_len,
    uint8_t key[GH_KMS_KEY_LEN])
{
	struct p11_provider *p = prov(base);
	gh_err err;

	if (key == NULL)
		return GH_ERR_INVALID;
	if (blob == NULL || (aad == NULL && aad_len != 0) ||
	    aad_len > UINT32_MAX || blob_len < IV_LEN + TAG_LEN) {
		err = GH_ERR_INVALID;
		goto out;
	}
	if (blob_len != BLOB_LEN) {
		err = GH_ERR_CRYPTO;	/* truncated or extended */
		goto out;
	}
	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = unwrap_locked(p, version, blob, aad, aad_len, key);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = unwrap_locked(p, version, blob, aad, aad_len, key);
	}
	unlock(&p->mu);
out:
	/* Whatever the caller's buffer held is not a key now. */
	if (err != GH_OK)
		gh_wipe(key, GH_KMS_KEY_LEN);
	return err;
}

static gh_err
destroy_locked(struct p11_provider *p, uint32_t version)
{
	CK_OBJECT_HANDLE h;
	CK_ULONG count;
	uint32_t max;
	gh_err err;
	CK_RV rv;

	err = list_versions(p, &max, &count);
	if (err != GH_OK)
		return err;
	/* Destroying the newest would let rotate reuse its number. */
	if (version == max) {
		GH_LOG_ERR(GH_ERR_INVALID, "token %s: refusing to destroy "
		    "the current master version %" PRIu32, p->label, version);
		return GH_ERR_INVALID;
	}
	err = find_key(p, version, &h);
	if (err != GH_OK)
		return err;
	rv = p->fl->C_DestroyObject(p->session, h);
	if (rv != CKR_OK) {
		p->last_rv = rv;
		GH_LOG_ERR(GH_ERR_INTERNAL, "token %s: destroying master "
		    "version %" PRIu32 " failed: %s", p->label, version,
		    rv_str(rv));
		return GH_ERR_INTERNAL;
	}
	GH_LOG_INFO("token %s: destroyed master version %" PRIu32, p->label,
	    version);
	return GH_OK;
}

static gh_err
p11_destroy(struct kms_provider *base, uint32_t version)
{
	struct p11_provider *p = prov(base);
	gh_err err;

	lock(&p->mu);
	p->last_rv = CKR_OK;
	err = destroy_locked(p, version);
	if (err != GH_OK && session_lost(p->last_rv) &&
	    session_restart(p) == GH_OK) {
		p->last_rv = CKR_OK;
		err = destroy_locked(p, version);
	}
	unlock(&p->mu);
	return err;
}

static void
p11_free(struct kms_provider *base)
{
	struct p11_provider *p = prov(base);

	if (p == NULL)
		return;
	if (p->module_ref)
		module_release(p);
	else if (p->session_open)
		(void)p->fl->C_CloseSession(p->session);
	if (p->dl != NULL)
		(void)dlclose(p->dl);
	gh_secret_free(p->pin);
	gh_secret_free(p->scratch);
	free(p->label);
	free(p->module);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- open ---------------------------------------------------------------- */

static gh_err
load_module(struct p11_provider *p, char *msg, size_t cap)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	const char *why;
	CK_RV rv;

	p->dl = dlopen(p->module, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		why = dlerror();
		set_msg(msg, cap, "cannot load PKCS#11 module %s: %s",
		    p->module, why != NULL ? why : "unknown error");
		return GH_ERR_INVALID;
	}
	*(void **)&get_list = dlsym(p->dl, "C_GetFunctionList");
	if (get_list == NULL) {
		set_msg(msg, cap, "%s is not a PKCS#11 module (no "
		    "C_GetFunctionList)", p->module);
		return GH_ERR_INVALID;
	}
	rv = get_list(&p->fl);
	if (rv != CKR_OK || p->fl == NULL) {
		set_msg(msg, cap, "PKCS#11 module %s: C_GetFunctionList "
		    "failed: %s", p->module, rv_str(rv));
		return GH_ERR_INVALID;
	}
	rv = module_acquire(p->fl);
	if (rv != CKR_OK) {
		set_msg(msg, cap, "PKCS#11 module %s: C_Initialize failed: "
		    "%s (0x%lx)", p->module, rv_str(rv), (unsigned long)rv);
		return GH_ERR_INTERNAL;
	}
	p->module_ref = true;
	return GH_OK;
}

gh_err
kms_provider_pkcs11_open(const char *module, const char *token_label,
    const char *pin, bool create, struct kms_provider **out, char *errmsg,
    size_t errmsg_cap)
{
	struct p11_provider *p = NULL;
	CK_ULONG count = 0;
	uint32_t max = 0;
	gh_err err;

	if (errmsg != NULL && errmsg_cap > 0)
		errmsg[0] = '\0';
	if (out == NULL)
		return GH_ERR_INVALID;
	*out = NULL;
	if (module == NULL || module[0] == '\0') {
		set_msg(errmsg, errmsg_cap, "no PKCS#11 module path is set");
		return GH_ERR_INVALID;
	}
	if (token_label == NULL || token_label[0] == '\0' ||
	    strlen(token_label) > TOKEN_LABEL_LEN) {
		set_msg(errmsg, errmsg_cap, "the PKCS#11 token label must be "
		    "1 to %d bytes", TOKEN_LABEL_LEN);
		return GH_ERR_INVALID;
	}
	if (pin == NULL || pin[0] == '\0') {
		set_msg(errmsg, errmsg_cap, "no PIN is set for PKCS#11 token "
		    "\"%s\"", token_label);
		return GH_ERR_INVALID;
	}

	p = calloc(1, sizeof *p);
	if (p == NULL)
		goto nomem;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		p = NULL;
		goto nomem;
	}
	p->base.name = "pkcs11";
	p->base.current = p11_current;
	p->base.has = p11_has;
	p->base.rotate = p11_rotate;
	p->base.wrap = p11_wrap;
	p->base.unwrap = p11_unwrap;
	p->base.destroy = p11_destroy;
	p->base.free = p11_free;
	p->module = gh_strdup(module);
	p->label = gh_strdup(token_label);
	if (p->module == NULL || p->label == NULL ||
	    gh_secret_from_str(pin, &p->pin) != GH_OK ||
	    gh_secret_new(BLOB_LEN - IV_LEN, &p->scratch) != GH_OK)
		goto nomem;

	err = load_module(p, errmsg, errmsg_cap);
	if (err != GH_OK)
		goto out;
	err = find_slot(p, errmsg, errmsg_cap);
	if (err != GH_OK)
		goto out;
	err = session_start(p, errmsg, errmsg_cap);
	if (err != GH_OK)
		goto out;

	err = list_versions(p, &max, &count);
	if (err != GH_OK) {
		set_msg(errmsg, errmsg_cap, "PKCS#11 token \"%s\": cannot list "
		    "its master keys (%s; see the log)", token_label,
		    gh_err_str(err));
		goto out;
	}
	if (create && count > 0) {
		err = GH_ERR_CONFLICT;
		set_msg(errmsg, errmsg_cap, "PKCS#11 token \"%s\" already holds "
		    "%lu gatehouse master key(s); refusing to create another "
		    "master key set", token_label, (unsigned long)count);
		goto out;
	}
	if (create) {
		err = generate_key(p, 1);
		if (err != GH_OK) {
			set_msg(errmsg, errmsg_cap, "PKCS#11 token \"%s\": "
			    "generating master key version 1 failed (see the "
			    "log)", token_label);
			goto out;
		}
	} else if (max == 0) {
		err = GH_ERR_NOTFOUND;
		set_msg(errmsg, errmsg_cap, "PKCS#11 token \"%s\" holds no "
		    "gatehouse master key; create one first", token_label);
		goto out;
	}
	*out = &p->base;
	p = NULL;
	err = GH_OK;
	goto out;
nomem:
	err = GH_ERR_NOMEM;
	set_msg(errmsg, errmsg_cap, "out of memory opening PKCS#11 token");
out:
	if (p != NULL)
		p11_free(&p->base);
	return err;
}
