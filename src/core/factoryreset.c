/* Factory reset: which state files each kind removes, and how. */
#include "opennvt/factoryreset.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct state_file {
    const char *name;
    int soft;          /* removed by a soft reset too */
    int secret;        /* holds sealed secrets or key material: overwritten first */
};

/* The device key first: once it is gone every sealed secret is unreadable,
 * whatever happens to the other files. */
static const struct state_file state_files[] = {
    { "device.key", 1, 1 },
    { "users.xml", 1, 1 },
    { "keystore.xml", 1, 1 },
    { "deviceca.xml", 1, 1 },
    { "authn.xml", 1, 0 },
    { "ipfilter.xml", 1, 0 },
    { "tlspolicy.xml", 0, 0 },
    { "netcfg.xml", 0, 0 },
    { "clock.xml", 0, 0 },
    { "media.xml", 1, 0 },
};

int factoryreset_kind_from_name(const char *name)
{
    if (name && !strcmp(name, "soft"))
        return FACTORYRESET_SOFT;
    if (name && !strcmp(name, "hard"))
        return FACTORYRESET_HARD;
    return -1;
}

/* Overwrites the file's bytes with zeros and syncs them. */
static int overwrite(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    static const char zeros[4096];
    for (off_t done = 0; rc == 0 && S_ISREG(st.st_mode) && done < st.st_size;) {
        size_t n = (size_t)(st.st_size - done) < sizeof zeros ? (size_t)(st.st_size - done) : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, done);
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else
            done += w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

#define RESET_PENDING "reset.pending"

/* A staged configuration restore (backup.c) would bring the old state back. */
static void remove_staged_restores(const char *state_dir)
{
    static const char *const dirs[] = { "restore.staging", "restore.ready" };
    for (size_t i = 0; i < 2; i++) {
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", state_dir, dirs[i]) >= (int)sizeof dir)
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            char path[2 * PATH_MAX];
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) {
                overwrite(path);
                unlink(path);
            }
        }
        closedir(d);
        rmdir(dir);
    }
}

int factoryreset_wipe(const char *state_dir, enum factoryreset_kind kind)
{
    if (!state_dir || (kind != FACTORYRESET_SOFT && kind != FACTORYRESET_HARD))
        return -EINVAL;
    /* Half-written replacements of these files would outlive them. */
    atomicfile_remove_stale_temps(state_dir);
    remove_staged_restores(state_dir);
    int removed = 0;
    for (size_t i = 0; i < sizeof state_files / sizeof state_files[0]; i++) {
        const struct state_file *f = &state_files[i];
        if (kind == FACTORYRESET_SOFT && !f->soft)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", state_dir, f->name) >= (int)sizeof path)
            return -ENAMETOOLONG;
        int rc = f->secret ? overwrite(path) : 0;
        if (rc != 0) {
            log_err("system", "factory reset: cannot overwrite %s: %s", f->name, strerror(-rc));
            return rc;
        }
        if (unlink(path) == 0)
            removed++;
        else if (errno != ENOENT)
            return -errno;
    }
    int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    log_notice("system", "factory reset (%s): %d state file(s) removed, device key destroyed",
               kind == FACTORYRESET_HARD ? "hard" : "soft", removed);
    return removed;
}

static int pending_path(const char *state_dir, char *out, size_t len)
{
    return snprintf(out, len, "%s/%s", state_dir, RESET_PENDING) < (int)len ? 0 : -ENAMETOOLONG;
}

/* The recorded kind, or -1 when none. */
static int pending_kind(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char buf[8] = "";
    int kind = fgets(buf, sizeof buf, f) ? factoryreset_kind_from_name(strtok(buf, "\n")) : -1;
    fclose(f);
    return kind < 0 ? FACTORYRESET_HARD : kind;   /* unreadable: the safe side */
}

int factoryreset_request(const char *state_dir, enum factoryreset_kind kind)
{
    char path[PATH_MAX];
    if (!state_dir || pending_path(state_dir, path, sizeof path) != 0)
        return -EINVAL;
    if (pending_kind(path) == FACTORYRESET_HARD)
        kind = FACTORYRESET_HARD;
    const char *text = kind == FACTORYRESET_HARD ? "hard\n" : "soft\n";
    return atomicfile_write(path, text, strlen(text), 0600);
}

int factoryreset_resume(const char *state_dir)
{
    char path[PATH_MAX];
    if (!state_dir || pending_path(state_dir, path, sizeof path) != 0)
        return -EINVAL;
    int kind = pending_kind(path);
    if (kind < 0)
        return 0;
    int rc = factoryreset_wipe(state_dir, (enum factoryreset_kind)kind);
    if (rc < 0)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return -errno;
    return 1;
}
