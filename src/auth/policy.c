/*
 * policy.c: the password strength policy. Checks, in order: UTF-8, length
 * in bytes and in code points, the user's context (username, e-mail, org),
 * a built-in list of common passwords and simple patterns, character
 * classes, then libpwquality's score.
 *
 * Untrusted input: the password and the context strings come from clients.
 * The password is bounded to GH_PW_MAX_LEN bytes before any copy is made.
 *
 * Secrets: the password is borrowed. Its normalised copies live on the stack
 * and are wiped before returning. The reason sentences are fixed strings and
 * never quote the password. libpwquality is run on its built-in defaults,
 * never the system's pwquality.conf, so that results do not depend on the
 * host.
 */
#include "auth/auth.h"

#include <pthread.h>
#include <pwquality.h>
#include <stdio.h>
#include <string.h>

#include "auth/common_passwords.h"

/* Strings of the context shorter than this many characters are ignored: a
 * two-letter username would refuse too many good passwords. */
#define CONTEXT_MIN_CHARS 3

/* libpwquality's own minimum length (it refuses lower settings). Ours is at
 * least 8, so our length rule is always the one that speaks. */
#define PWQ_MIN_LENGTH 6

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* cracklib, under libpwquality, keeps state in statics: one check at a
 * time. */
static pthread_mutex_t pwq_lock = PTHREAD_MUTEX_INITIALIZER;

void
gh_auth_pw_policy_default(struct gh_pw_policy *pol)
{
	pol->min_length = 10;
	pol->min_classes = 0;
	pol->min_score = 30;
	pol->reject_common = true;
	pol->reject_context = true;
}

gh_err
gh_auth_pw_policy_validate(const struct gh_pw_policy *pol,
    const char **field_out)
{
	const char *field = NULL;

	if (pol->min_length < 8 || pol->min_length > 128)
		field = "min_length";
	else if (pol->min_classes < 0 || pol->min_classes > 4)
		field = "min_classes";
	else if (pol->min_score < 0 || pol->min_score > 100)
		field = "min_score";
	if (field_out != NULL)
		*field_out = field;
	return field == NULL ? GH_OK : GH_ERR_INVALID;
}

/* Code points in n bytes of well-formed UTF-8. */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t i, count = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			count++;
	return count;
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	c = ascii_lower(c);
	return is_digit(c) || (c >= 'a' && c <= 'z');
}

/* ASCII punctuation and space: what people append to a word. */
static bool
is_symbol(char c)
{
	return (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f &&
	    !is_alnum(c);
}

/* Lowercase ASCII copy of s[0..n) into out (n + 1 bytes). */
static void
lower_copy(const char *s, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = ascii_lower(s[i]);
	out[n] = '\0';
}

/* Undoes leetspeak in place; one_as is what '1' stands for ('i' or 'l'). */
static void
unleet(char *s, char one_as)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '0': *s = 'o'; break;
		case '1': *s = one_as; break;
		case '3': *s = 'e'; break;
		case '4': case '@': *s = 'a'; break;
		case '5': case '$': *s = 's'; break;
		case '7': *s = 't'; break;
		default: break;
		}
	}
}

/* True if a and b sit next to each other in an alphabet, a number row or
 * a keyboard row, or are the same character. */
static bool
adjacent(char a, char b)
{
	static const char *const rows[] = {
		"1234567890", "qwertyuiopasdfghjklzxcvbnm", "qwertzuiop",
		"azertyuiop", "qsdfghjklm", "wxcvbn",
	};
	size_t r;

	if (a == b)
		return true;
	if ((a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z') ||
	    (is_digit(a) && is_digit(b)))
		if (a - b == 1 || b - a == 1)
			return true;
	for (r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		const char *pa = strchr(rows[r], a), *pb = strchr(rows[r], b);

		if (a != '\0' && b != '\0' && pa != NULL && pb != NULL &&
		    (pa - pb == 1 || pb - pa == 1))
			return true;
	}
	/* 7890 then 1234 again. */
	return (a == '9' && b == '0') || (a == '0' && b == '9');
}

/* Repeated characters, alphabet runs and keyboard walks: "aaaaaa",
 * "abcdefgh", "12345678", "qwertyuiop", "0987654321". */
static bool
is_walk(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 1; i < n; i++)
		if (!adjacent(s[i - 1], s[i]))
			return false;
	return true;
}

static bool
in_common_list(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof common_passwords / sizeof common_passwords[0];
	    i++)
		if (strlen(common_passwords[i]) == n &&
		    memcmp(common_passwords[i], s, n) == 0)
			return true;
	return false;
}

static bool
weak_unit(const char *s, size_t n)
{
	return in_common_list(s, n) || is_walk(s, n);
}

/* A listed word or a walk, whole or repeated ("abcabcabc",
 * "passwordpassword"). */
static bool
weak_candidate(const char *s)
{
	size_t n = strlen(s), unit, k;

	if (n == 0)
		return false;
	if (weak_unit(s, n))
		return true;
	for (unit = 1; unit <= n / 2; unit++) {
		if (n % unit != 0)
			continue;
		for (k = unit; k < n; k += unit)
			if (memcmp(s, s + k, unit) != 0)
				break;
		if (k >= n && weak_unit(s, unit))
			return true;
	}
	return false;
}

/* Tries s as is and with leetspeak undone both ways. */
static bool
weak_with_leet(const char *s, char *scratch)
{
	size_t n = strlen(s);
	bool weak;

	if (weak_candidate(s))
		return true;
	memcpy(scratch, s, n + 1);
	unleet(scratch, 'i');
	weak = weak_candidate(scratch);
	if (!weak) {
		memcpy(scratch, s, n + 1);
		unleet(scratch, 'l');
		weak = weak_candidate(scratch);
	}
	gh_wipe(scratch, n);
	return weak;
}

/*
 * True if the password, lowercased, is a common password or a simple
 * pattern, also once trailing symbols, then trailing digits and symbols,
 * then leading digits are stripped, and leetspeak undone.
 */
static bool
is_common(const char *pw, size_t n)
{
	char lower[GH_PW_MAX_LEN + 1], cand[GH_PW_MAX_LEN + 1];
	char scratch[GH_PW_MAX_LEN + 1];
	size_t end, start;
	bool weak;

	lower_copy(pw, n, lower);
	weak = weak_with_leet(lower, scratch);
	/* Trailing symbols only: "password!" and "12345678!". */
	end = n;
	while (!weak && end > 0 && is_symbol(lower[end - 1]))
		end--;
	if (!weak && end < n) {
		memcpy(cand, lower, end);
		cand[end] = '\0';
		weak = weak_with_leet(cand, scratch);
	}
	/* Trailing digits and symbols, then leetspeak undone on what is
	 * left: "Password1", "P@ssw0rd!99". A lone letter before digits
	 * ("x2847193") counts as a pattern too. */
	while (!weak && end > 0 &&
	    (is_symbol(lower[end - 1]) || is_digit(lower[end - 1])))
		end--;
	if (!weak) {
		memcpy(cand, lower, end);
		cand[end] = '\0';
		weak = weak_with_leet(cand, scratch);
	}
	/* Leading digits: "2024dragon". */
	start = 0;
	while (!weak && start < end && is_digit(cand[start]))
		start++;
	if (!weak && start > 0)
		weak = weak_with_leet(cand + start, scratch);
	gh_wipe(lower, sizeof lower);
	gh_wipe(cand, sizeof cand);
	gh_wipe(scratch, sizeof scratch);
	return weak;
}

/* Case-insensitive (ASCII) search of needle in the lowercased password
 * lower[0..n), also with leetspeak undone. */
static bool
contains_ci(const char *lower, size_t n, const char *needle, size_t needle_len)
{
	char pat[GH_PW_MAX_LEN + 1], scratch[GH_PW_MAX_LEN + 1];
	bool found = false;
	int pass;

	if (needle_len == 0 || needle_len > n)
		return false;
	lower_copy(needle, needle_len, pat);
	memcpy(scratch, lower, n + 1);
	for (pass = 0; pass < 3 && !found; pass++) {
		if (pass == 1)
			unleet(scratch, 'i');
		if (pass == 2) {
			memcpy(scratch, lower, n + 1);
			unleet(scratch, 'l');
		}
		found = memmem(scratch, n, pat, needle_len) != NULL;
	}
	gh_wipe(scratch, sizeof scratch);
	gh_wipe(pat, sizeof pat);
	return found;
}

/*
 * True if the password contains s (or s without its spaces and
 * punctuation, for "Acme Corp" and "acme-corp"). Strings shorter than
 * CONTEXT_MIN_CHARS characters, or not UTF-8, are ignored.
 */
static bool
contains_context(const char *lower, size_t n, const char *s, size_t s_len)
{
	char squashed[GH_PW_MAX_LEN + 1];
	size_t i, sq = 0;
	bool found;

	if (s == NULL || s_len > GH_PW_MAX_LEN || !gh_utf8_valid(s, s_len) ||
	    utf8_chars(s, s_len) < CONTEXT_MIN_CHARS)
		return false;
	if (contains_ci(lower, n, s, s_len))
		return true;
	for (i = 0; i < s_len; i++)
		if (!is_symbol(s[i]))
			squashed[sq++] = s[i];
	squashed[sq] = '\0';
	found = sq < s_len && utf8_chars(squashed, sq) >= CONTEXT_MIN_CHARS &&
	    contains_ci(lower, n, squashed, sq);
	gh_wipe(squashed, sizeof squashed);
	return found;
}

static bool
contains_str(const char *lower, size_t n, const char *s)
{
	return s != NULL &&
	    contains_context(lower, n, s, strnlen(s, GH_PW_MAX_LEN + 1));
}

/* The local part of an address: before the last '@', or all of it. */
static bool
contains_email(const char *lower, size_t n, const char *email)
{
	const char *at;

	if (email == NULL)
		return false;
	at = strrchr(email, '@');
	return contains_context(lower, n, email,
	    at != NULL ? (size_t)(at - email) :
	    strnlen(email, GH_PW_MAX_LEN + 1));
}

/* Lower, upper, digit, and everything else (symbols, spaces, non-ASCII). */
static int
char_classes(const char *s, size_t n)
{
	bool lower = false, upper = false, digit = false, other = false;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			lower = true;
		else if (c >= 'A' && c <= 'Z')
			upper = true;
		else if (is_digit(c))
			digit = true;
		else
			other = true;
	}
	return lower + upper + digit + other;
}

/* libpwquality's score (0..100), or a negative PWQ_ERROR_* code. */
static int
pwquality_score(const char *password, const char *username)
{
	pwquality_settings_t *pwq;
	void *aux = NULL;
	char msg[256];
	int rc;

	pwq = pwquality_default_settings();
	if (pwq == NULL)
		return PWQ_ERROR_MEM_ALLOC;
	rc = pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH,
	    PWQ_MIN_LENGTH);
	if (rc == 0) {
		pthread_mutex_lock(&pwq_lock);
		rc = pwquality_check(pwq, password, NULL, username, &aux);
		pthread_mutex_unlock(&pwq_lock);
	}
	if (rc < 0 && aux != NULL) {
		/* The trap: without cracklib-runtime every password fails
		 * the dictionary check. Say so to the operator; the password
		 * is still refused (fail closed). */
		if (rc == PWQ_ERROR_CRACKLIB_CHECK &&
		    strstr((const char *)aux, "error loading dictionary") != NULL)
			GH_LOG_ERR(GH_ERR_INTERNAL, "libpwquality cannot load the "
			    "cracklib dictionary (is cracklib-runtime installed?)");
		/* Frees aux. The text may quote the password's words, so it
		 * is wiped, never shown. */
		pwquality_strerror(msg, sizeof msg, rc, aux);
		gh_wipe(msg, sizeof msg);
	}
	pwquality_free_settings(pwq);
	return rc;
}

static const char *
weak_sentence(int rc)
{
	switch (rc) {
	case PWQ_ERROR_CRACKLIB_CHECK:
		return "The password is based on a dictionary word.";
	case PWQ_ERROR_PALINDROME:
		return "The password is a palindrome.";
	case PWQ_ERROR_USER_CHECK:
	case PWQ_ERROR_GECOS_CHECK:
		return "The password contains your username in some form.";
	case PWQ_ERROR_MAX_CONSECUTIVE:
	case PWQ_ERROR_MAX_CLASS_REPEAT:
	case PWQ_ERROR_MAX_SEQUENCE:
		return "The password repeats characters or a sequence too much.";
	default:
		return "The password is too easy to guess. A longer passphrase "
		    "of unrelated words is both stronger and easier to "
		    "remember.";
	}
}

static gh_err
refuse(const char *code, const char *sentence, const char **code_out,
    char *reason, size_t reason_cap)
{
	if (code_out != NULL)
		*code_out = code;
	if (reason != NULL && reason_cap > 0)
		gh_strlcpy(reason, sentence, reason_cap);
	return GH_ERR_INVALID;
}

gh_err
gh_auth_pw_policy_check(const struct gh_pw_policy *pol,
    const char *password, const struct gh_pw_context *ctx,
    const char **code_out, char *reason, size_t reason_cap)
{
	char lower[GH_PW_MAX_LEN + 1];
	const char *code = NULL, *sentence = NULL;
	size_t n, scan;
	int score;

	if (code_out != NULL)
		*code_out = NULL;
	if (reason != NULL && reason_cap > 0)
		reason[0] = '\0';
	if (pol == NULL || password == NULL ||
	    gh_auth_pw_policy_validate(pol, NULL) != GH_OK)
		return GH_ERR_INVALID;

	/* Bound the scan: a longer password is refused as too long. */
	n = strnlen(password, GH_PW_MAX_LEN + 1);
	scan = n;
	/* A too-long password is cut at a character boundary for this check,
	 * so that it is reported as too long, not as broken text. */
	while (n > GH_PW_MAX_LEN && scan > 0 &&
	    ((unsigned char)password[scan] & 0xc0) == 0x80)
		scan--;
	if (!gh_utf8_valid(password, scan))
		return refuse("invalid_utf8",
		    "The password contains characters that are not valid "
		    "text.", code_out, reason, reason_cap);
	if (n > GH_PW_MAX_LEN)
		return refuse("too_long", "The password is too long (at most "
		    STRINGIFY(GH_PW_MAX_LEN) " bytes).", code_out, reason,
		    reason_cap);
	if (utf8_chars(password, n) < (size_t)pol->min_length) {
		if (reason != NULL && reason_cap > 0)
			snprintf(reason, reason_cap, "The password must have at "
			    "least %d characters.", pol->min_length);
		if (code_out != NULL)
			*code_out = "too_short";
		return GH_ERR_INVALID;
	}

	lower_copy(password, n, lower);
	if (pol->reject_context && ctx != NULL) {
		if (contains_str(lower, n, ctx->username)) {
			code = "contains_username";
			sentence = "The password contains your username.";
		} else if (contains_email(lower, n, ctx->email)) {
			code = "contains_email";
			sentence = "The password contains your e-mail address.";
		} else if (contains_str(lower, n, ctx->org_slug) ||
		    contains_str(lower, n, ctx->org_name)) {
			code = "contains_org";
			sentence = "The password contains the name of your "
			    "organisation.";
		}
	}
	gh_wipe(lower, sizeof lower);
	if (code != NULL)
		return refuse(code, sentence, code_out, reason, reason_cap);

	if (pol->reject_common && is_common(password, n))
		return refuse("common", "The password is too common, or a "
		    "common password with small changes.", code_out, reason,
		    reason_cap);
	if (char_classes(password, n) < pol->min_classes) {
		if (reason != NULL && reason_cap > 0)
			snprintf(reason, reason_cap, "The password must mix at "
			    "least %d of: lowercase letters, uppercase letters, "
			    "digits, symbols.", pol->min_classes);
		if (code_out != NULL)
			*code_out = "too_few_classes";
		return GH_ERR_INVALID;
	}

	score = pwquality_score(password,
	    ctx != NULL ? ctx->username : NULL);
	if (score == PWQ_ERROR_MEM_ALLOC)
		return GH_ERR_NOMEM;
	if (score < 0 || score < pol->min_score)
		return refuse("too_weak", weak_sentence(score), code_out,
		    reason, reason_cap);
	return GH_OK;
}
