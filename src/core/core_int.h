/* core_int.h: private to src/core and its tests. */
#ifndef GH_CORE_INT_H
#define GH_CORE_INT_H

#include <stddef.h>

/* Page-backed, mlock'd (best effort), MADV_DONTDUMP memory, zeroed. */
void *gh_secure_alloc(size_t n);
/* Wipes n bytes then releases memory from gh_secure_alloc. NULL is a no-op. */
void gh_secure_free(void *p, size_t n);
/* The bytes usable in a gh_secure_alloc(n) region (n rounded up to whole
 * pages), so that a growing secret buffer takes the whole page at once. */
size_t gh_secure_usable(size_t n);

#endif
