/*
 * provider_file.c: the master-key provider backed by a small text file kept
 * outside the data directory, mode 0400:
 *
 *   gatehouse-master-keys 1\n
 *   <version> <base64url of 32 random bytes>\n      one line per version
 *
 * Versions are strictly increasing; the last line is the current version.
 * Rotation and destruction write a complete new file next to the old one
 * (O_EXCL, 0400), fsync it, rename it over and fsync the directory, so the
 * file is always either the old or the new one.
 *
 * Untrusted input: the file itself (permissions, type and contents are all
 * checked; a symlink, a mode wider than 0400, a malformed or truncated
 * file, a duplicate version and an all-zero key are refused). Secrets: the
 * master keys, held in gh_secret (locked, undumpable) and wiped on free;
 * the file's bytes pass only through GH_BUF_SECRET buffers.
 *
 * Not thread-safe: the hierarchy in kms.c serialises calls.
 */
#include "kms/kms_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_MAGIC "gatehouse-master-keys 1"
#define PF_MAX_BYTES 65536
#define PF_MAX_VERSIONS 1000

struct pf_key {
	uint32_t version;
	struct gh_secret *key;
};

struct pf {
	struct kms_provider base;	/* first: the vtable is cast back */
	char *path;
	struct pf_key *keys;		/* ascending version */
	size_t n;
};

static struct pf *
pf_of(struct kms_provider *p)
{
	return (struct pf *)p;
}

static bool
bytes_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	while (n-- > 0)
		acc |= *p++;
	return acc == 0;
}

static const struct pf_key *
pf_find(const struct pf *f, uint32_t version)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->keys[i].version == version)
			return &f->keys[i];
	return NULL;
}

static void
pf_keys_free(struct pf_key *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		gh_secret_free(keys[i].key);
	free(keys);
}

/* Writes every key except skip (0: none) to an open descriptor. */
static gh_err
pf_write_fd(const struct pf *f, const struct pf_key *extra, uint32_t skip,
    int fd)
{
	struct gh_buf b;
	char b64[64];
	size_t i, off;
	gh_err err;

	gh_buf_init(&b, PF_MAX_BYTES, GH_BUF_SECRET);
	gh_buf_put_str(&b, PF_MAGIC "\n");
	for (i = 0; i <= f->n; i++) {
		const struct pf_key *k = i < f->n ? &f->keys[i] : extra;

		if (k == NULL || k->version == skip)
			continue;
		gh_b64url_encode(k->key->data, GH_KMS_KEY_LEN, b64);
		gh_buf_printf(&b, "%u %s\n", (unsigned)k->version, b64);
	}
	gh_wipe(b64, sizeof b64);
	if ((err = gh_buf_err(&b)) != GH_OK)
		goto out;
	for (off = 0; off < b.len;) {
		ssize_t w = write(fd, b.data + off, b.len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = GH_ERR_INTERNAL;
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		err = GH_ERR_INTERNAL;
out:
	gh_buf_free(&b);
	return err;
}

static gh_err
fsync_parent(const char *path)
{
	char *dir = gh_strdup(path), *slash;
	gh_err err = GH_OK;
	int fd;

	if (dir == NULL)
		return GH_ERR_NOMEM;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		err = GH_ERR_INTERNAL;
	if (fd >= 0)
		close(fd);
	free(dir);
	return err;
}

/* Creates path exclusively with mode 0400 and writes the keys to it. */
static gh_err
pf_write_new(const struct pf *f, const char *path, const struct pf_key *extra,
    uint32_t skip)
{
	gh_err err;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0400);
	if (fd < 0)
		return errno == EEXIST ? GH_ERR_CONFLICT : GH_ERR_INTERNAL;
	/* The umask may only narrow the mode; make sure it is exactly 0400. */
	if (fchmod(fd, 0400) != 0) {
		close(fd);
		unlink(path);
		return GH_ERR_INTERNAL;
	}
	err = pf_write_fd(f, extra, skip, fd);
	if (close(fd) != 0 && err == GH_OK)
		err = GH_ERR_INTERNAL;
	if (err != GH_OK)
		unlink(path);
	return err;
}

/* Replaces the file atomically with the keys plus extra, minus skip. */
static gh_err
pf_rewrite(const struct pf *f, const struct pf_key *extra, uint32_t skip)
{
	struct gh_buf tmp;
	gh_err err;

	gh_buf_init(&tmp, 4096, 0);
	gh_buf_printf(&tmp, "%s.new", f->path);
	if ((err = gh_buf_err(&tmp)) != GH_OK)
		goto out;
	/* A leftover from a crash before the rename: the old file is still
	 * the authoritative one, so the leftover can go. */
	(void)unlink(gh_buf_cstr(&tmp));
	if ((err = pf_write_new(f, gh_buf_cstr(&tmp), extra, skip)) != GH_OK)
		goto out;
	if (rename(gh_buf_cstr(&tmp), f->path) != 0) {
		err = GH_ERR_INTERNAL;
		(void)unlink(gh_buf_cstr(&tmp));
		goto out;
	}
	err = fsync_parent(f->path);
out:
	if (err != GH_OK)
		GH_LOG_ERR(err, "master key file %s: rewrite failed", f->path);
	gh_buf_free(&tmp);
	return err;
}

static gh_err
pf_new_key(uint32_t version, struct pf_key *out)
{
	gh_err err;

	out->version = version;
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &out->key)) != GH_OK)
		return err;
	do {
		if ((err = gh_rand_bytes(out->key->data, GH_KMS_KEY_LEN)) !=
		    GH_OK) {
			gh_secret_free(out->key);
			out->key = NULL;
			return err;
		}
	} while (bytes_zero(out->key->data, GH_KMS_KEY_LEN));
	return GH_OK;
}

/* ---- the provider interface ---------------------------------------------- */

static gh_err
pf_current(struct kms_provider *p, uint32_t *version)
{
	struct pf *f = pf_of(p);

	if (f->n == 0)
		return GH_ERR_NOTFOUND;
	*version = f->keys[f->n - 1].version;
	return GH_OK;
}

static bool
pf_has(struct kms_provider *p, uint32_t version)
{
	return pf_find(pf_of(p), version) != NULL;
}

static gh_err
pf_rotate(struct kms_provider *p, uint32_t *version)
{
	struct pf *f = pf_of(p);
	struct pf_key k = { 0 }, *grown;
	uint32_t next = f->n > 0 ? f->keys[f->n - 1].version + 1 : 1;
	gh_err err;

	if (f->n >= PF_MAX_VERSIONS || next == 0)
		return GH_ERR_LIMIT;
	grown = realloc(f->keys, (f->n + 1) * sizeof *f->keys);
	if (grown == NULL)
		return GH_ERR_NOMEM;
	f->keys = grown;
	if ((err = pf_new_key(next, &k)) != GH_OK)
		return err;
	if ((err = pf_rewrite(f, &k, 0)) != GH_OK) {
		gh_secret_free(k.key);
		return err;
	}
	f->keys[f->n++] = k;
	*version = next;
	GH_LOG_INFO("master key file %s: version %u added", f->path,
	    (unsigned)next);
	return GH_OK;
}

static gh_err
pf_destroy(struct kms_provider *p, uint32_t version)
{
	struct pf *f = pf_of(p);
	size_t i;
	gh_err err;

	if (pf_find(f, version) == NULL)
		return GH_ERR_NOTFOUND;
	/* The current version is never destroyed. */
	if (f->keys[f->n - 1].version == version)
		return GH_ERR_INVALID;
	if ((err = pf_rewrite(f, NULL, version)) != GH_OK)
		return err;
	for (i = 0; i < f->n; i++)
		if (f->keys[i].version == version)
			break;
	gh_secret_free(f->keys[i].key);
	memmove(&f->keys[i], &f->keys[i + 1],
	    (f->n - i - 1) * sizeof *f->keys);
	f->n--;
	GH_LOG_INFO("master key file %s: version %u destroyed", f->path,
	    (unsigned)version);
	return GH_OK;
}

static gh_err
pf_wrap(struct kms_provider *p, uint32_t version,
    const uint8_t key[GH_KMS_KEY_LEN], const uint8_t *aad, size_t aad_len,
    struct gh_buf *out)
{
	const struct pf_key *k = pf_find(pf_of(p), version);

	if (k == NULL)
		return GH_ERR_NOTFOUND;
	return kms_aead_seal(k->key->data, aad, aad_len, key, GH_KMS_KEY_LEN,
	    out);
}

static gh_err
pf_unwrap(struct kms_provider *p, uint32_t version, const uint8_t *blob,
    size_t blob_len, const uint8_t *aad, size_t aad_len,
    uint8_t key[GH_KMS_KEY_LEN])
{
	const struct pf_key *k = pf_find(pf_of(p), version);
	struct gh_buf pt;
	gh_err err;

	if (k == NULL)
		return GH_ERR_NOTFOUND;
	gh_buf_init(&pt, 2 * GH_KMS_KEY_LEN, GH_BUF_SECRET);
	err = kms_aead_open(k->key->data, aad, aad_len, blob, blob_len, &pt);
	if (err == GH_OK && pt.len != GH_KMS_KEY_LEN)
		err = GH_ERR_CRYPTO;
	if (err == GH_OK)
		memcpy(key, pt.data, GH_KMS_KEY_LEN);
	gh_buf_free(&pt);
	return err;
}

static void
pf_free(struct kms_provider *p)
{
	struct pf *f = pf_of(p);

	if (f == NULL)
		return;
	pf_keys_free(f->keys, f->n);
	free(f->path);
	free(f);
}

/* ---- reading the file ---------------------------------------------------- */

/* Parses one "<version> <key>" line of len bytes (no newline). */
static gh_err
pf_parse_line(struct pf *f, const char *line, size_t len, const char **why)
{
	struct pf_key k = { 0 };
	const char *sp = memchr(line, ' ', len);
	unsigned long v = 0;
	size_t i, key_len = 0;
	gh_err err;

	*why = "malformed version line";
	if (sp == NULL || sp == line || sp - line > 9)
		return GH_ERR_INVALID;
	for (i = 0; line + i < sp; i++) {
		if (line[i] < '0' || line[i] > '9' ||
		    (i == 0 && line[i] == '0'))
			return GH_ERR_INVALID;
		v = v * 10 + (unsigned long)(line[i] - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return GH_ERR_INVALID;
	if (pf_find(f, (uint32_t)v) != NULL) {
		*why = "duplicate version";
		return GH_ERR_INVALID;
	}
	if (f->n > 0 && (uint32_t)v < f->keys[f->n - 1].version) {
		*why = "versions out of order";
		return GH_ERR_INVALID;
	}
	if (f->n >= PF_MAX_VERSIONS) {
		*why = "too many versions";
		return GH_ERR_INVALID;
	}
	if ((err = gh_secret_new(GH_KMS_KEY_LEN, &k.key)) != GH_OK)
		return err;
	k.version = (uint32_t)v;
	sp++;
	err = gh_b64url_decode(sp, len - (size_t)(sp - line), k.key->data,
	    GH_KMS_KEY_LEN, &key_len);
	if (err != GH_OK || key_len != GH_KMS_KEY_LEN) {
		*why = "bad key encoding (want base64url of 32 bytes)";
		err = GH_ERR_INVALID;
		goto fail;
	}
	if (bytes_zero(k.key->data, GH_KMS_KEY_LEN)) {
		*why = "all-zero key";
		err = GH_ERR_INVALID;
		goto fail;
	}
	f->keys[f->n++] = k;	/* room was reserved by the caller */
	return GH_OK;
fail:
	gh_secret_free(k.key);
	return err;
}

static gh_err
pf_parse(struct pf *f, const struct gh_buf *b, const char **why)
{
	const char *p = (const char *)b->data, *end = p + b->len, *nl;
	size_t lines = 0;
	gh_err err;

	*why = "empty file";
	if (b->len == 0)
		return GH_ERR_INVALID;
	for (nl = p; nl < end; nl++)
		if (*nl == '\n')
			lines++;
	if (memchr(p, '\0', b->len) != NULL) {
		*why = "contains a NUL byte";
		return GH_ERR_INVALID;
	}
	if (end[-1] != '\n') {
		*why = "truncated (no final newline)";
		return GH_ERR_INVALID;
	}
	nl = memchr(p, '\n', b->len);
	if ((size_t)(nl - p) != strlen(PF_MAGIC) ||
	    memcmp(p, PF_MAGIC, strlen(PF_MAGIC)) != 0) {
		*why = "unknown format (want \"" PF_MAGIC "\")";
		return GH_ERR_INVALID;
	}
	if (lines - 1 > PF_MAX_VERSIONS) {
		*why = "too many versions";
		return GH_ERR_INVALID;
	}
	f->keys = calloc(lines, sizeof *f->keys);
	if (f->keys == NULL)
		return GH_ERR_NOMEM;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if ((err = pf_parse_line(f, p, (size_t)(nl - p), why)) !=
		    GH_OK)
			return err;
	}
	if (f->n == 0) {
		*why = "truncated (no key)";
		return GH_ERR_INVALID;
	}
	return GH_OK;
}

static gh_err
pf_read(struct pf *f, char *errmsg, size_t errmsg_cap)
{
	struct gh_buf b;
	struct stat st;
	uint8_t chunk[512];
	const char *why = NULL;
	gh_err err = GH_OK;
	int fd;

	gh_buf_init(&b, PF_MAX_BYTES, GH_BUF_SECRET);
	fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = errno == ENOENT ? GH_ERR_NOTFOUND : GH_ERR_DENIED;
		snprintf(errmsg, errmsg_cap, "master key file %s: %s", f->path,
		    errno == ELOOP ? "is a symlink (refused)" :
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err = GH_ERR_DENIED;
		snprintf(errmsg, errmsg_cap,
		    "master key file %s: not a regular file", f->path);
		goto out;
	}
	if ((st.st_mode & 07377) != 0) {
		err = GH_ERR_DENIED;
		snprintf(errmsg, errmsg_cap, "master key file %s: mode %04o is "
		    "wider than 0400 (run chmod 0400)", f->path,
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = GH_ERR_INTERNAL;
			snprintf(errmsg, errmsg_cap, "master key file %s: %s",
			    f->path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		gh_buf_put(&b, chunk, (size_t)r);
		if (gh_buf_err(&b) != GH_OK) {
			err = GH_ERR_INVALID;
			snprintf(errmsg, errmsg_cap,
			    "master key file %s: too large", f->path);
			goto out;
		}
	}
	if ((err = pf_parse(f, &b, &why)) != GH_OK)
		snprintf(errmsg, errmsg_cap, "master key file %s: %s", f->path,
		    why != NULL ? why : gh_err_str(err));
out:
	gh_wipe(chunk, sizeof chunk);
	if (fd >= 0)
		close(fd);
	gh_buf_free(&b);
	return err;
}

gh_err
kms_provider_file_open(const char *path, bool create,
    struct kms_provider **out, char *errmsg, size_t errmsg_cap)
{
	struct pf *f;
	gh_err err;

	*out = NULL;
	if (errmsg_cap > 0)
		errmsg[0] = '\0';
	if (path == NULL || path[0] == '\0') {
		snprintf(errmsg, errmsg_cap, "master_key_file is not set");
		return GH_ERR_INVALID;
	}
	if ((f = calloc(1, sizeof *f)) == NULL)
		return GH_ERR_NOMEM;
	f->base.name = "file";
	f->base.current = pf_current;
	f->base.has = pf_has;
	f->base.rotate = pf_rotate;
	f->base.wrap = pf_wrap;
	f->base.unwrap = pf_unwrap;
	f->base.destroy = pf_destroy;
	f->base.free = pf_free;
	if ((f->path = gh_strdup(path)) == NULL) {
		err = GH_ERR_NOMEM;
		goto out;
	}
	if (create) {
		if ((f->keys = calloc(1, sizeof *f->keys)) == NULL) {
			err = GH_ERR_NOMEM;
			goto out;
		}
		if ((err = pf_new_key(1, &f->keys[0])) != GH_OK)
			goto out;
		f->n = 1;
		err = pf_write_new(f, path, NULL, 0);
		if (err == GH_OK)
			err = fsync_parent(path);
		if (err != GH_OK)
			snprintf(errmsg, errmsg_cap, "master key file %s: %s",
			    path, err == GH_ERR_CONFLICT ?
			    "exists already (refusing to overwrite)" :
			    "cannot create");
	} else {
		err = pf_read(f, errmsg, errmsg_cap);
	}
out:
	if (err != GH_OK) {
		pf_free(&f->base);
		return err;
	}
	*out = &f->base;
	return GH_OK;
}
