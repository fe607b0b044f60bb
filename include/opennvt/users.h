/* Device users: names, ONVIF user levels, password policy (complexity,
 * history, common-password refusal) and the password material the
 * authenticators need. Passwords are sealed with the device key at rest
 * (secretbox) and only handed out to authn for verification. Persisted
 * atomically in state_dir/users.xml (0600); every change is all-or-nothing.
 * Thread-safe. */
#ifndef OPENNVT_USERS_H
#define OPENNVT_USERS_H

#include <stddef.h>

struct secretbox;

enum user_level {
    USER_LEVEL_ADMINISTRATOR = 0,
    USER_LEVEL_OPERATOR = 1,
    USER_LEVEL_USER = 2,
    USER_LEVEL_ANONYMOUS = 3,   /* unauthenticated requests; no user has it */
};

#define USERS_MAX 32              /* users at most */
#define USERS_NAME_MAX 32         /* bytes; [A-Za-z0-9._-], starting with a letter or digit */
#define USERS_PASSWORD_MAX 64     /* bytes; printable ASCII 0x20..0x7e */
#define USERS_PASSWORD_MIN_FLOOR 8 /* MinLen may not be configured below this */
#define USERS_HISTORY_MAX 10      /* PasswordHistory Length at most */

enum users_error {
    USERS_OK = 0,
    USERS_E_EXISTS = -1,          /* username clash (with a stored user or within the request) */
    USERS_E_TOO_MANY = -2,        /* would exceed USERS_MAX */
    USERS_E_NAME_INVALID = -3,    /* empty, too long, or characters outside the set */
    USERS_E_NAME_TOO_LONG = -4,
    USERS_E_PASSWORD_TOO_LONG = -5,
    USERS_E_PASSWORD_WEAK = -6,   /* complexity rules, common password, contains the username */
    USERS_E_PASSWORD_REUSED = -7, /* one of the last N passwords (history) */
    USERS_E_PASSWORD_INVALID = -8,/* characters outside printable ASCII */
    USERS_E_ANONYMOUS = -9,       /* level Anonymous cannot be given to a user */
    USERS_E_NO_SUCH_USER = -10,
    USERS_E_LAST_ADMIN = -11,     /* would leave no Administrator */
    USERS_E_POLICY = -12,         /* policy value out of range, or policy locked */
    USERS_E_STORE = -13,          /* could not persist; nothing changed */
    USERS_E_NOMEM = -14,
    USERS_E_INVALID = -15,        /* other bad argument (NULL, bad level) */
    USERS_E_HAS_ADMIN = -16,      /* users_create_first_admin: there is one already */
};

struct users;

/* One user of a CreateUsers/SetUser request. For users_set, password NULL
 * keeps the current password. */
struct users_entry {
    const char *name;
    const char *password;
    enum user_level level;
};

/* What GetUsers shows: never the password. */
struct users_info {
    char name[USERS_NAME_MAX + 1];
    enum user_level level;
};

/* ONVIF PasswordComplexityConfiguration. uppercase is the minimum number of
 * upper AND of lower case letters; number and special_chars minimum counts. */
struct users_complexity {
    int min_len;                  /* USERS_PASSWORD_MIN_FLOOR..USERS_PASSWORD_MAX */
    int uppercase;                /* 0..USERS_PASSWORD_MAX */
    int number;
    int special_chars;
    int block_username_occurrence;/* bool: password may not contain the username (case-insensitive) */
    int policy_configuration_locked; /* bool: once set, Set* of the policy is refused */
};

struct users_history {
    int enabled;                  /* bool */
    int length;                   /* 1..USERS_HISTORY_MAX */
};

/* Opens state_dir/users.xml (a fresh device has no users). Defaults:
 * min_len 8, uppercase 1, number 1, special 0, block_username 1, unlocked;
 * history enabled, length 3. */
int users_open(struct users **out, const char *state_dir, struct secretbox *box);
void users_close(struct users *u);

/* Creates all users or none. On error *bad_index (when not NULL) is the
 * index of the entry at fault. */
int users_create(struct users *u, const struct users_entry *list, size_t n, size_t *bad_index);
/* Creates the device's first Administrator (admin->level must be
 * Administrator): refused with USERS_E_HAS_ADMIN when one exists, checked
 * atomically with the creation. */
int users_create_first_admin(struct users *u, const struct users_entry *admin);
/* Deletes all named users or none (refuses to remove the last Administrator). */
int users_delete(struct users *u, const char *const *names, size_t n, size_t *bad_index);
/* Changes password and/or level of existing users, all or none. A new
 * password passes the complexity and history checks. */
int users_set(struct users *u, const struct users_entry *list, size_t n, size_t *bad_index);

/* Copies all users into a malloc'd array the caller frees. */
int users_list(struct users *u, struct users_info **out, size_t *n);
/* 1 when at least one Administrator exists. */
int users_have_admin(struct users *u);
/* The user's level; USERS_E_NO_SUCH_USER when absent. */
int users_level(struct users *u, const char *name, enum user_level *level);

/* Unseals the user's password into out (outlen >= USERS_PASSWORD_MAX + 1) for
 * a verifier; the caller wipes it (OPENSSL_cleanse) right after use.
 * *level receives the user's level. */
int users_password(struct users *u, const char *name, char *out, size_t outlen, enum user_level *level);

/* Checks a candidate password for name against the current policy, without
 * changing anything (what users_create/users_set apply). */
int users_check_password(struct users *u, const char *name, const char *password);

/* Which rule of the current policy a password breaks, as a short text for
 * the client ("too few digits"), or NULL when none (or the form is wrong). */
const char *users_password_weakness(struct users *u, const char *name, const char *password);

int users_get_complexity(struct users *u, struct users_complexity *out);
int users_set_complexity(struct users *u, const struct users_complexity *in);
int users_get_history(struct users *u, struct users_history *out);
int users_set_history(struct users *u, const struct users_history *in);

const char *users_level_name(enum user_level level);  /* "Administrator", ... */
const char *users_strerror(int err);

#endif
