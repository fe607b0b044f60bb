/* Atomic persistence: the only way state reaches disk.
 * A write goes to a temporary file in the same directory, is fsynced, renamed
 * over the target and the directory is fsynced, so a crash at any instant
 * leaves either the old or the new content. */
#ifndef OPENNVT_ATOMICFILE_H
#define OPENNVT_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with len bytes of data, created with the given mode.
 * Returns 0, or -errno. */
int atomicfile_write(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole file of at most max_len bytes into a NUL-terminated malloc'd
 * buffer. Returns 0, -ENOENT when absent, -EFBIG when larger than max_len,
 * or another -errno. */
int atomicfile_read(const char *path, size_t max_len, char **data, size_t *len);

/* Creates dir (and parents) with mode 0700 if missing; refuses a path that
 * exists and is not a directory. Returns 0 or -errno. */
int atomicfile_mkdir_private(const char *dir);

/* Removes temporary files an interrupted atomicfile_write left in dir (call
 * only while holding the directory's lock, before any writer runs).
 * Returns how many were removed, or -errno. */
int atomicfile_remove_stale_temps(const char *dir);

#endif
