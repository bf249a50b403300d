/* core_int.h: private to src/core and its tests. */
#ifndef GH_CORE_INT_H
#define GH_CORE_INT_H

#include <stddef.h>

/* Page-backed, mlock'd (best effort), MADV_DONTDUMP memory, zeroed. */
void *gh_secure_alloc(size_t n);
/* Wipes n bytes then releases memory from gh_secure_alloc. NULL is a no-op. */
void gh_secure_free(void *p, size_t n);

#endif
