/* Device users: name and level rules, the password policy (complexity,
 * history, common passwords), all-or-nothing changes, and persistence in
 * state_dir/users.xml (0600) with passwords sealed under the device key and
 * old passwords kept only as keyed fingerprints. */
#include "opennvt/users.h"
#include "opennvt/atomicfile.h"
#include "opennvt/log.h"
#include "opennvt/secretbox.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>

#define USERS_FILE_MAX (256 * 1024)
/* "v1:" + base64(12 + 64 + 16) + NUL is 128; room to spare. */
#define SEALED_MAX 160
#define FINGERPRINT_LEN 32
#define HISTORY_PURPOSE "password-history"
#define PASSWORD_CONTEXT_PREFIX "user-password:"

struct user_record {
    char name[USERS_NAME_MAX + 1];
    enum user_level level;
    char sealed[SEALED_MAX];        /* the current password, sealed; never the plain text */
    size_t n_previous;
    unsigned char previous[USERS_HISTORY_MAX][FINGERPRINT_LEN]; /* newest first */
};

/* Everything that is persisted; copied whole so a change is built aside and
 * swapped in only after it reached disk. */
struct users_state {
    size_t n;
    struct user_record user[USERS_MAX];
    struct users_complexity complexity;
    struct users_history history;
};

struct users {
    pthread_mutex_t lock;
    char path[PATH_MAX];
    struct secretbox *box;
    struct users_state state;
};

/* Passwords that satisfy typical complexity rules yet are the first ones an
 * attacker tries; compared case-insensitively. Shorter ones are included
 * because MinLen is configurable down to the floor only, not below 8. */
static const char *const common_passwords[] = {
    "password", "password1", "password12", "password123", "password1234", "password!", "password1!",
    "Password@123", "P@ssword1", "P@ssw0rd", "P@ssw0rd1", "P@ssw0rd!", "P@$$w0rd", "Passw0rd", "Passw0rd!",
    "Passw0rd1", "pa$$word", "pa55word", "12345678", "123456789", "1234567890", "12345678910", "123123123",
    "11111111", "00000000", "88888888", "87654321", "11223344", "12341234", "123456788", "1q2w3e4r",
    "1q2w3e4r5t", "1qaz2wsx", "1qaz2wsx3edc", "zaq12wsx", "!qaz2wsx", "qwertyui", "qwertyuiop", "qwerty12",
    "qwerty123", "qwerty1234", "Qwerty123!", "qwe123qwe", "asdfghjkl", "asdf1234", "zxcvbnm1", "abcd1234",
    "abc12345", "abcdefg1", "a1b2c3d4", "aa123456", "admin123", "admin1234", "admin12345", "Admin@123",
    "Admin123!", "administrator", "administrator1", "adminadmin", "root1234", "toor1234", "rootroot",
    "changeme", "changeme1", "Changeme123", "default1", "letmein1", "letmein123", "welcome1", "welcome123",
    "Welcome1!", "Welcome@123", "iloveyou", "iloveyou1", "sunshine", "sunshine1", "princess", "princess1",
    "football", "football1", "baseball", "baseball1", "superman", "batman123", "starwars", "trustno1",
    "whatever", "master123", "monkey123", "dragon123", "shadow123", "michael1", "jennifer", "computer",
    "internet", "security", "security1", "Secret123", "test1234", "test12345", "testtest", "user1234",
    "guest123", "service1", "support1", "operator", "operator1", "camera123", "onvif123", "ipcam123",
    "hikvision", "dahua123", "Spring2024", "Summer2024", "Autumn2024", "Winter2024", "Spring2025", "Summer2025",
    "Winter2025", "qazwsxedc", "q1w2e3r4", "q1w2e3r4t5", "Aa123456!", "Aa12345678", "Abc@1234", "Qwer1234",
    "Qwer1234!", "Passer2009", "azerty123", "1password", "mypassword",
};

const char *users_level_name(enum user_level level)
{
    switch (level) {
    case USER_LEVEL_ADMINISTRATOR: return "Administrator";
    case USER_LEVEL_OPERATOR: return "Operator";
    case USER_LEVEL_USER: return "User";
    case USER_LEVEL_ANONYMOUS: return "Anonymous";
    }
    return "Unknown";
}

const char *users_strerror(int err)
{
    switch (err) {
    case USERS_OK: return "ok";
    case USERS_E_EXISTS: return "username already exists";
    case USERS_E_TOO_MANY: return "too many users";
    case USERS_E_NAME_INVALID: return "username empty or with characters outside [A-Za-z0-9._-]";
    case USERS_E_NAME_TOO_LONG: return "username too long";
    case USERS_E_PASSWORD_TOO_LONG: return "password too long";
    case USERS_E_PASSWORD_WEAK: return "password too weak";
    case USERS_E_PASSWORD_REUSED: return "password used recently";
    case USERS_E_PASSWORD_INVALID: return "password with characters outside printable ASCII";
    case USERS_E_ANONYMOUS: return "level Anonymous cannot be given to a user";
    case USERS_E_NO_SUCH_USER: return "no such user";
    case USERS_E_LAST_ADMIN: return "would leave no Administrator";
    case USERS_E_POLICY: return "password policy value out of range or policy locked";
    case USERS_E_STORE: return "could not save users";
    case USERS_E_NOMEM: return "out of memory";
    case USERS_E_INVALID: return "invalid argument";
    case USERS_E_HAS_ADMIN: return "an Administrator already exists";
    }
    return "unknown error";
}

/* --- pure rules ---------------------------------------------------------- */

/* ASCII only: names and passwords are ASCII, and the daemon's locale must
 * not change what counts as the same name. */
static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int d = ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
        if (d != 0 || *a == '\0')
            return d;
    }
}

static int ascii_casestr(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; haystack++) {
        size_t i = 0;
        while (i < n && haystack[i] && ascii_lower((unsigned char)haystack[i]) == ascii_lower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int is_alnum(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int check_name(const char *name)
{
    if (!name)
        return USERS_E_INVALID;
    size_t len = strnlen(name, USERS_NAME_MAX + 1);
    if (len > USERS_NAME_MAX)
        return USERS_E_NAME_TOO_LONG;
    if (len == 0 || !is_alnum((unsigned char)name[0]))
        return USERS_E_NAME_INVALID;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum((unsigned char)name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return USERS_E_NAME_INVALID;
    return USERS_OK;
}

static int check_level(int level)
{
    if (level == USER_LEVEL_ANONYMOUS)
        return USERS_E_ANONYMOUS;
    if (level < USER_LEVEL_ADMINISTRATOR || level > USER_LEVEL_ANONYMOUS)
        return USERS_E_INVALID;
    return USERS_OK;
}

/* Length and charset only: what any stored password must satisfy, whatever
 * the policy was when it was set. */
static int check_password_form(const char *password)
{
    if (!password)
        return USERS_E_INVALID;
    size_t len = strnlen(password, USERS_PASSWORD_MAX + 1);
    if (len > USERS_PASSWORD_MAX)
        return USERS_E_PASSWORD_TOO_LONG;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)password[i] < 0x20 || (unsigned char)password[i] > 0x7e)
            return USERS_E_PASSWORD_INVALID;
    return USERS_OK;
}

static int is_common_password(const char *password)
{
    for (size_t i = 0; i < sizeof common_passwords / sizeof common_passwords[0]; i++)
        if (ascii_casecmp(password, common_passwords[i]) == 0)
            return 1;
    return 0;
}

/* The first policy rule the password breaks, as text, or NULL. */
static const char *policy_weakness(const struct users_complexity *c, const char *name, const char *password)
{
    int upper = 0, lower = 0, digits = 0, special = 0;
    size_t len = strlen(password);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)password[i];
        if (ch >= 'A' && ch <= 'Z')
            upper++;
        else if (ch >= 'a' && ch <= 'z')
            lower++;
        else if (ch >= '0' && ch <= '9')
            digits++;
        else
            special++;
    }
    if ((int)len < c->min_len)
        return "shorter than the minimum length";
    if (upper < c->uppercase || lower < c->uppercase)
        return "too few upper or lower case letters";
    if (digits < c->number)
        return "too few digits";
    if (special < c->special_chars)
        return "too few special characters";
    if (c->block_username_occurrence && name && name[0] && ascii_casestr(password, name))
        return "contains the username";
    if (is_common_password(password))
        return "one of the most common passwords";
    return NULL;
}

static int check_password_policy(const struct users_complexity *c, const char *name, const char *password)
{
    int rc = check_password_form(password);
    if (rc != USERS_OK)
        return rc;
    return policy_weakness(c, name, password) ? USERS_E_PASSWORD_WEAK : USERS_OK;
}

static int check_complexity_values(const struct users_complexity *c)
{
    if (c->min_len < USERS_PASSWORD_MIN_FLOOR || c->min_len > USERS_PASSWORD_MAX)
        return USERS_E_POLICY;
    if (c->uppercase < 0 || c->uppercase > USERS_PASSWORD_MAX || c->number < 0 || c->number > USERS_PASSWORD_MAX ||
        c->special_chars < 0 || c->special_chars > USERS_PASSWORD_MAX)
        return USERS_E_POLICY;
    /* uppercase counts twice: that many upper and that many lower case letters. */
    if (c->uppercase * 2 + c->number + c->special_chars > USERS_PASSWORD_MAX)
        return USERS_E_POLICY;
    return USERS_OK;
}

static int check_history_values(const struct users_history *h)
{
    return (h->length < 1 || h->length > USERS_HISTORY_MAX) ? USERS_E_POLICY : USERS_OK;
}

static void default_policy(struct users_state *st)
{
    st->complexity = (struct users_complexity){
        .min_len = 8, .uppercase = 1, .number = 1, .special_chars = 0,
        .block_username_occurrence = 1, .policy_configuration_locked = 0,
    };
    st->history = (struct users_history){ .enabled = 1, .length = 3 };
}

static struct user_record *find_exact(struct users_state *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->user[i].name, name) == 0)
            return &st->user[i];
    return NULL;
}

static int clashes(const struct users_state *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (ascii_casecmp(st->user[i].name, name) == 0)
            return 1;
    return 0;
}

static size_t count_admins(const struct users_state *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++)
        n += st->user[i].level == USER_LEVEL_ADMINISTRATOR;
    return n;
}

/* --- sealed passwords and fingerprints ----------------------------------- */

static int password_context(const char *name, char out[sizeof PASSWORD_CONTEXT_PREFIX + USERS_NAME_MAX])
{
    int n = snprintf(out, sizeof PASSWORD_CONTEXT_PREFIX + USERS_NAME_MAX, PASSWORD_CONTEXT_PREFIX "%s", name);
    return (n < 0 || (size_t)n >= sizeof PASSWORD_CONTEXT_PREFIX + USERS_NAME_MAX) ? USERS_E_INVALID : USERS_OK;
}

static int map_box_error(int rc)
{
    return rc == SECRETBOX_E_NOMEM ? USERS_E_NOMEM : USERS_E_STORE;
}

static int seal_password(const struct users *u, const char *name, const char *password, char out[SEALED_MAX])
{
    char context[sizeof PASSWORD_CONTEXT_PREFIX + USERS_NAME_MAX];
    if (password_context(name, context) != USERS_OK)
        return USERS_E_INVALID;
    char *sealed = NULL;
    int rc = secretbox_seal(u->box, password, strlen(password), context, &sealed);
    if (rc != SECRETBOX_OK) {
        log_err("users", "sealing the password of %s failed: %s", name, secretbox_strerror(rc));
        return map_box_error(rc);
    }
    size_t len = strlen(sealed);
    if (len >= SEALED_MAX) {
        free(sealed);
        return USERS_E_INVALID;
    }
    memcpy(out, sealed, len + 1);
    free(sealed);
    return USERS_OK;
}

/* Unseals a stored password into out (USERS_PASSWORD_MAX + 1 bytes); the
 * caller wipes it. A value that does not open, or opens to something that
 * could never have been set, counts as corrupt. */
static int unseal_password(const struct users *u, const struct user_record *rec, char out[USERS_PASSWORD_MAX + 1])
{
    char context[sizeof PASSWORD_CONTEXT_PREFIX + USERS_NAME_MAX];
    if (password_context(rec->name, context) != USERS_OK)
        return USERS_E_INVALID;
    unsigned char *plain = NULL;
    size_t len = 0;
    int rc = secretbox_unseal(u->box, rec->sealed, context, &plain, &len);
    if (rc != SECRETBOX_OK) {
        log_err("users", "the stored password of %s does not open: %s", rec->name, secretbox_strerror(rc));
        return map_box_error(rc);
    }
    if (len > USERS_PASSWORD_MAX || strlen((char *)plain) != len || check_password_form((char *)plain) != USERS_OK) {
        secretbox_free(plain, len + 1);
        log_err("users", "the stored password of %s is malformed", rec->name);
        return USERS_E_STORE;
    }
    memcpy(out, plain, len + 1);
    secretbox_free(plain, len + 1);
    return USERS_OK;
}

static int fingerprint(const struct users *u, const char *name, const char *password,
                       unsigned char out[FINGERPRINT_LEN])
{
    /* name + '\0' + password: the fingerprint is bound to the user. */
    char data[USERS_NAME_MAX + 1 + USERS_PASSWORD_MAX + 1];
    size_t name_len = strlen(name), pw_len = strlen(password);
    if (name_len > USERS_NAME_MAX || pw_len > USERS_PASSWORD_MAX)
        return USERS_E_INVALID;
    memcpy(data, name, name_len + 1);
    memcpy(data + name_len + 1, password, pw_len);
    int rc = secretbox_mac(u->box, HISTORY_PURPOSE, data, name_len + 1 + pw_len, out);
    OPENSSL_cleanse(data, sizeof data);
    return rc == SECRETBOX_OK ? USERS_OK : map_box_error(rc);
}

static int current_fingerprint(const struct users *u, const struct user_record *rec,
                               unsigned char out[FINGERPRINT_LEN])
{
    char current[USERS_PASSWORD_MAX + 1];
    int rc = unseal_password(u, rec, current);
    if (rc == USERS_OK)
        rc = fingerprint(u, rec->name, current, out);
    OPENSSL_cleanse(current, sizeof current);
    return rc;
}

/* USERS_E_PASSWORD_REUSED when password is the current one or one of the last
 * `length` ones of rec (history enabled). */
static int check_reuse(const struct users *u, const struct users_state *st, const struct user_record *rec,
                       const char *password)
{
    if (!st->history.enabled)
        return USERS_OK;
    unsigned char candidate[FINGERPRINT_LEN], current[FINGERPRINT_LEN];
    int rc = fingerprint(u, rec->name, password, candidate);
    if (rc == USERS_OK)
        rc = current_fingerprint(u, rec, current);
    if (rc == USERS_OK && CRYPTO_memcmp(candidate, current, FINGERPRINT_LEN) == 0)
        rc = USERS_E_PASSWORD_REUSED;
    size_t depth = rec->n_previous < (size_t)st->history.length ? rec->n_previous : (size_t)st->history.length;
    for (size_t i = 0; rc == USERS_OK && i < depth; i++)
        if (CRYPTO_memcmp(candidate, rec->previous[i], FINGERPRINT_LEN) == 0)
            rc = USERS_E_PASSWORD_REUSED;
    OPENSSL_cleanse(candidate, sizeof candidate);
    OPENSSL_cleanse(current, sizeof current);
    return rc;
}

/* Replaces rec's password, pushing the old one's fingerprint onto its history.
 * The history is kept even while disabled, so enabling it protects at once. */
static int replace_password(const struct users *u, struct user_record *rec, const char *password)
{
    unsigned char old[FINGERPRINT_LEN];
    int rc = current_fingerprint(u, rec, old);
    char sealed[SEALED_MAX];
    if (rc == USERS_OK)
        rc = seal_password(u, rec->name, password, sealed);
    if (rc == USERS_OK) {
        size_t keep = rec->n_previous < USERS_HISTORY_MAX ? rec->n_previous : USERS_HISTORY_MAX - 1;
        memmove(rec->previous[1], rec->previous[0], keep * FINGERPRINT_LEN);
        memcpy(rec->previous[0], old, FINGERPRINT_LEN);
        rec->n_previous = keep + 1;
        memcpy(rec->sealed, sealed, sizeof sealed);
    }
    OPENSSL_cleanse(old, sizeof old);
    return rc;
}

/* --- persistence --------------------------------------------------------- */

static const char *bool_text(int b)
{
    return b ? "true" : "false";
}

/* Appends formatted text; *ok drops to 0 when it does not fit. */
static void append(char *buf, size_t cap, size_t *used, int *ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void append(char *buf, size_t cap, size_t *used, int *ok, const char *fmt, ...)
{
    if (!*ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *used)
        *ok = 0;
    else
        *used += (size_t)n;
}

/* Writes st; called with the lock held, before st is committed in memory.
 * Names, levels, sealed text and hex need no XML escaping: their character
 * sets exclude every markup character. */
static int store(const struct users *u, const struct users_state *st)
{
    size_t cap = 1024 + st->n * (256 + SEALED_MAX + USERS_HISTORY_MAX * (FINGERPRINT_LEN * 2 + 32));
    char *buf = malloc(cap);
    if (!buf)
        return USERS_E_NOMEM;
    size_t used = 0;
    int ok = 1;
    const struct users_complexity *c = &st->complexity;
    append(buf, cap, &used, &ok,
           "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<users version=\"1\">\n"
           "  <complexity min-len=\"%d\" uppercase=\"%d\" number=\"%d\" special-chars=\"%d\""
           " block-username-occurrence=\"%s\" policy-configuration-locked=\"%s\"/>\n"
           "  <history enabled=\"%s\" length=\"%d\"/>\n",
           c->min_len, c->uppercase, c->number, c->special_chars, bool_text(c->block_username_occurrence),
           bool_text(c->policy_configuration_locked), bool_text(st->history.enabled), st->history.length);
    for (size_t i = 0; i < st->n; i++) {
        const struct user_record *rec = &st->user[i];
        append(buf, cap, &used, &ok, "  <user name=\"%s\" level=\"%s\">\n    <password>%s</password>\n",
               rec->name, users_level_name(rec->level), rec->sealed);
        for (size_t k = 0; k < rec->n_previous; k++) {
            char hex[FINGERPRINT_LEN * 2 + 1];
            for (size_t b = 0; b < FINGERPRINT_LEN; b++)
                snprintf(hex + 2 * b, 3, "%02x", rec->previous[k][b]);
            append(buf, cap, &used, &ok, "    <previous>%s</previous>\n", hex);
        }
        append(buf, cap, &used, &ok, "  </user>\n");
    }
    append(buf, cap, &used, &ok, "</users>\n");
    int rc = ok ? atomicfile_write(u->path, buf, used, 0600) : -EOVERFLOW;
    free(buf);
    if (rc != 0) {
        log_err("users", "saving %s failed: %s", u->path, strerror(-rc));
        return USERS_E_STORE;
    }
    return USERS_OK;
}

static int parse_int(const xmlChar *text, int min, int max, int *out)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol((const char *)text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_bool(const xmlChar *text, int *out)
{
    if (text && !strcmp((const char *)text, "true"))
        *out = 1;
    else if (text && !strcmp((const char *)text, "false"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_level(const xmlChar *text, enum user_level *out)
{
    for (int l = USER_LEVEL_ADMINISTRATOR; l < USER_LEVEL_ANONYMOUS; l++)
        if (text && !strcmp((const char *)text, users_level_name((enum user_level)l))) {
            *out = (enum user_level)l;
            return 0;
        }
    return -1;
}

static int parse_hex(const xmlChar *text, unsigned char out[FINGERPRINT_LEN])
{
    if (!text || strlen((const char *)text) != FINGERPRINT_LEN * 2)
        return -1;
    for (size_t i = 0; i < FINGERPRINT_LEN * 2; i++) {
        int c = text[i], v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            return -1;
        out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] << 4) | v : v);
    }
    return 0;
}

/* Reads an attribute as int/bool into *out; -1 when present but malformed,
 * 0 otherwise (absent keeps the default). */
static int attr_int(xmlNode *node, const char *name, int min, int max, int *out)
{
    xmlChar *t = xmlGetProp(node, (const xmlChar *)name);
    int rc = t ? parse_int(t, min, max, out) : 0;
    xmlFree(t);
    return rc;
}

static int attr_bool(xmlNode *node, const char *name, int *out)
{
    xmlChar *t = xmlGetProp(node, (const xmlChar *)name);
    int rc = t ? parse_bool(t, out) : 0;
    xmlFree(t);
    return rc;
}

static int load_complexity(xmlNode *node, struct users_complexity *c)
{
    if (attr_int(node, "min-len", 0, USERS_PASSWORD_MAX, &c->min_len) ||
        attr_int(node, "uppercase", 0, USERS_PASSWORD_MAX, &c->uppercase) ||
        attr_int(node, "number", 0, USERS_PASSWORD_MAX, &c->number) ||
        attr_int(node, "special-chars", 0, USERS_PASSWORD_MAX, &c->special_chars) ||
        attr_bool(node, "block-username-occurrence", &c->block_username_occurrence) ||
        attr_bool(node, "policy-configuration-locked", &c->policy_configuration_locked))
        return -1;
    return check_complexity_values(c) == USERS_OK ? 0 : -1;
}

static int load_history(xmlNode *node, struct users_history *h)
{
    if (attr_bool(node, "enabled", &h->enabled) || attr_int(node, "length", 0, USERS_HISTORY_MAX, &h->length))
        return -1;
    return check_history_values(h) == USERS_OK ? 0 : -1;
}

static int load_user(const struct users *u, xmlNode *node, struct users_state *st)
{
    if (st->n >= USERS_MAX)
        return -1;
    struct user_record *rec = &st->user[st->n];
    memset(rec, 0, sizeof *rec);
    xmlChar *name = xmlGetProp(node, (const xmlChar *)"name");
    xmlChar *level = xmlGetProp(node, (const xmlChar *)"level");
    int rc = (name && check_name((const char *)name) == USERS_OK && !clashes(st, (const char *)name) &&
              parse_level(level, &rec->level) == 0) ? 0 : -1;
    if (rc == 0)
        snprintf(rec->name, sizeof rec->name, "%s", (const char *)name);
    xmlFree(name);
    xmlFree(level);
    int passwords = 0;
    for (xmlNode *c = node->children; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *t = xmlNodeGetContent(c);
        if (!strcmp((const char *)c->name, "password")) {
            if (!t || passwords++ || strlen((const char *)t) >= SEALED_MAX)
                rc = -1;
            else
                snprintf(rec->sealed, sizeof rec->sealed, "%s", (const char *)t);
        } else if (!strcmp((const char *)c->name, "previous")) {
            if (rec->n_previous >= USERS_HISTORY_MAX || parse_hex(t, rec->previous[rec->n_previous]) != 0)
                rc = -1;
            else
                rec->n_previous++;
        }
        xmlFree(t);
    }
    if (rc == 0 && passwords != 1)
        rc = -1;
    if (rc == 0) {
        /* Proves the password opens under this device key and name. */
        char plain[USERS_PASSWORD_MAX + 1];
        rc = unseal_password(u, rec, plain) == USERS_OK ? 0 : -1;
        OPENSSL_cleanse(plain, sizeof plain);
    }
    if (rc == 0)
        st->n++;
    return rc;
}

/* Fills st from the file: 0, -ENOENT when absent, another negative value
 * when unreadable or corrupt (st is then unspecified). */
static int load(const struct users *u, struct users_state *st)
{
    char *data = NULL;
    size_t len = 0;
    int rc = atomicfile_read(u->path, USERS_FILE_MAX, &data, &len);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(data, (int)len, u->path, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(data);
    if (!doc)
        return -EINVAL;
    memset(st, 0, sizeof *st);
    default_policy(st);
    xmlNode *root = xmlDocGetRootElement(doc);
    /* We never write a DTD; one here means the file is not ours. */
    rc = (root && !doc->intSubset && !strcmp((const char *)root->name, "users")) ? 0 : -EINVAL;
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!strcmp((const char *)c->name, "complexity"))
            rc = load_complexity(c, &st->complexity) ? -EINVAL : 0;
        else if (!strcmp((const char *)c->name, "history"))
            rc = load_history(c, &st->history) ? -EINVAL : 0;
        else if (!strcmp((const char *)c->name, "user"))
            rc = load_user(u, c, st) ? -EINVAL : 0;
    }
    xmlFreeDoc(doc);
    return rc;
}

/* --- lifecycle ----------------------------------------------------------- */

int users_open(struct users **out, const char *state_dir, struct secretbox *box)
{
    if (!out)
        return USERS_E_INVALID;
    *out = NULL;
    if (!state_dir || !box)
        return USERS_E_INVALID;
    struct users *u = calloc(1, sizeof *u);
    if (!u)
        return USERS_E_NOMEM;
    if (snprintf(u->path, sizeof u->path, "%s/users.xml", state_dir) >= (int)sizeof u->path) {
        free(u);
        return USERS_E_INVALID;
    }
    pthread_mutex_init(&u->lock, NULL);
    u->box = box;
    int rc = load(u, &u->state);
    if (rc == -ENOENT) {
        memset(&u->state, 0, sizeof u->state);
        default_policy(&u->state);
        rc = store(u, &u->state);
    } else if (rc != 0) {
        log_err("users", "%s is unreadable or corrupt; refusing to start over it", u->path);
        rc = USERS_E_STORE;
    }
    if (rc != USERS_OK) {
        users_close(u);
        return rc;
    }
    *out = u;
    return USERS_OK;
}

void users_close(struct users *u)
{
    if (!u)
        return;
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Saves next and, only when that worked, makes it the state. */
static int commit(struct users *u, const struct users_state *next)
{
    int rc = store(u, next);
    if (rc == USERS_OK)
        u->state = *next;
    return rc;
}

/* --- changes ------------------------------------------------------------- */

static int validate_create_entry(const struct users *u, const struct users_state *next, const struct users_entry *e)
{
    int rc = check_name(e->name);
    if (rc == USERS_OK)
        rc = check_level((int)e->level);
    if (rc == USERS_OK && clashes(next, e->name))
        rc = USERS_E_EXISTS;
    if (rc == USERS_OK && next->n >= USERS_MAX)
        rc = USERS_E_TOO_MANY;
    /* A user without a password could never authenticate safely. */
    if (rc == USERS_OK)
        rc = e->password ? check_password_policy(&next->complexity, e->name, e->password) : USERS_E_INVALID;
    return rc;
}

static int create_users(struct users *u, const struct users_entry *list, size_t n, size_t *bad_index, int first_admin)
{
    if (!u || (!list && n > 0))
        return USERS_E_INVALID;
    if (n == 0)
        return USERS_OK;
    struct users_state *next = malloc(sizeof *next);
    if (!next)
        return USERS_E_NOMEM;
    pthread_mutex_lock(&u->lock);
    *next = u->state;
    int rc = USERS_OK;
    size_t i = 0;
    /* Checked under the lock, so two racing first requests cannot both win. */
    if (first_admin && count_admins(next) > 0)
        rc = USERS_E_HAS_ADMIN;
    for (i = 0; i < n && rc == USERS_OK; i++) {
        rc = validate_create_entry(u, next, &list[i]);
        if (rc != USERS_OK)
            break;
        struct user_record *rec = &next->user[next->n];
        memset(rec, 0, sizeof *rec);
        snprintf(rec->name, sizeof rec->name, "%s", list[i].name);
        rec->level = list[i].level;
        rc = seal_password(u, rec->name, list[i].password, rec->sealed);
        if (rc != USERS_OK)
            break;
        next->n++;
    }
    if (rc == USERS_OK) {
        i = n; /* a save failure is no entry's fault */
        rc = commit(u, next);
        if (rc == USERS_OK)
            log_notice("users", "created %zu user(s)", n);
    }
    pthread_mutex_unlock(&u->lock);
    free(next);
    if (rc != USERS_OK && bad_index)
        *bad_index = i;
    return rc;
}

int users_create(struct users *u, const struct users_entry *list, size_t n, size_t *bad_index)
{
    return create_users(u, list, n, bad_index, 0);
}

int users_create_first_admin(struct users *u, const struct users_entry *admin)
{
    if (!admin || admin->level != USER_LEVEL_ADMINISTRATOR)
        return USERS_E_INVALID;
    return create_users(u, admin, 1, NULL, 1);
}

int users_delete(struct users *u, const char *const *names, size_t n, size_t *bad_index)
{
    if (!u || (!names && n > 0))
        return USERS_E_INVALID;
    if (n == 0)
        return USERS_OK;
    struct users_state *next = malloc(sizeof *next);
    if (!next)
        return USERS_E_NOMEM;
    pthread_mutex_lock(&u->lock);
    *next = u->state;
    int had_admin = count_admins(next) > 0;
    size_t last_admin_removal = n;
    int rc = USERS_OK;
    size_t i;
    for (i = 0; i < n; i++) {
        struct user_record *rec = names[i] ? find_exact(next, names[i]) : NULL;
        if (!rec) {
            rc = names[i] ? USERS_E_NO_SUCH_USER : USERS_E_INVALID;
            break;
        }
        if (rec->level == USER_LEVEL_ADMINISTRATOR)
            last_admin_removal = i;
        size_t k = (size_t)(rec - next->user);
        memmove(&next->user[k], &next->user[k + 1], (next->n - k - 1) * sizeof next->user[0]);
        next->n--;
    }
    if (rc == USERS_OK && had_admin && count_admins(next) == 0) {
        rc = USERS_E_LAST_ADMIN;
        i = last_admin_removal;
    }
    if (rc == USERS_OK) {
        i = n;
        rc = commit(u, next);
        if (rc == USERS_OK)
            log_notice("users", "deleted %zu user(s)", n);
    }
    pthread_mutex_unlock(&u->lock);
    free(next);
    if (rc != USERS_OK && bad_index)
        *bad_index = i;
    return rc;
}

int users_set(struct users *u, const struct users_entry *list, size_t n, size_t *bad_index)
{
    if (!u || (!list && n > 0))
        return USERS_E_INVALID;
    if (n == 0)
        return USERS_OK;
    struct users_state *next = malloc(sizeof *next);
    if (!next)
        return USERS_E_NOMEM;
    pthread_mutex_lock(&u->lock);
    *next = u->state;
    int had_admin = count_admins(next) > 0;
    size_t last_demotion = n;
    int rc = USERS_OK;
    size_t i;
    for (i = 0; i < n; i++) {
        const struct users_entry *e = &list[i];
        struct user_record *rec = e->name ? find_exact(next, e->name) : NULL;
        if (!rec)
            rc = e->name ? USERS_E_NO_SUCH_USER : USERS_E_INVALID;
        if (rc == USERS_OK)
            rc = check_level((int)e->level);
        if (rc == USERS_OK && e->password) {
            rc = check_password_policy(&next->complexity, rec->name, e->password);
            if (rc == USERS_OK)
                rc = check_reuse(u, next, rec, e->password);
            if (rc == USERS_OK)
                rc = replace_password(u, rec, e->password);
        }
        if (rc != USERS_OK)
            break;
        if (rec->level == USER_LEVEL_ADMINISTRATOR && e->level != USER_LEVEL_ADMINISTRATOR)
            last_demotion = i;
        rec->level = e->level;
    }
    if (rc == USERS_OK && had_admin && count_admins(next) == 0) {
        rc = USERS_E_LAST_ADMIN;
        i = last_demotion;
    }
    if (rc == USERS_OK) {
        i = n;
        rc = commit(u, next);
        if (rc == USERS_OK)
            log_notice("users", "changed %zu user(s)", n);
    }
    pthread_mutex_unlock(&u->lock);
    free(next);
    if (rc != USERS_OK && bad_index)
        *bad_index = i;
    return rc;
}

/* --- queries ------------------------------------------------------------- */

int users_list(struct users *u, struct users_info **out, size_t *n)
{
    if (!u || !out || !n)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    size_t count = u->state.n;
    struct users_info *list = calloc(count ? count : 1, sizeof *list);
    if (list) {
        for (size_t i = 0; i < count; i++) {
            memcpy(list[i].name, u->state.user[i].name, sizeof list[i].name);
            list[i].level = u->state.user[i].level;
        }
    }
    pthread_mutex_unlock(&u->lock);
    if (!list)
        return USERS_E_NOMEM;
    *out = list;
    *n = count;
    return USERS_OK;
}

int users_have_admin(struct users *u)
{
    if (!u)
        return 0;
    pthread_mutex_lock(&u->lock);
    int have = count_admins(&u->state) > 0;
    pthread_mutex_unlock(&u->lock);
    return have;
}

int users_level(struct users *u, const char *name, enum user_level *level)
{
    if (!u || !name || !level)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    const struct user_record *rec = find_exact(&u->state, name);
    if (rec)
        *level = rec->level;
    pthread_mutex_unlock(&u->lock);
    return rec ? USERS_OK : USERS_E_NO_SUCH_USER;
}

int users_password(struct users *u, const char *name, char *out, size_t outlen, enum user_level *level)
{
    if (!u || !name || !out || outlen < USERS_PASSWORD_MAX + 1)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    const struct user_record *rec = find_exact(&u->state, name);
    int rc = rec ? unseal_password(u, rec, out) : USERS_E_NO_SUCH_USER;
    if (rc == USERS_OK && level)
        *level = rec->level;
    pthread_mutex_unlock(&u->lock);
    if (rc != USERS_OK)
        OPENSSL_cleanse(out, outlen);
    return rc;
}

int users_check_password(struct users *u, const char *name, const char *password)
{
    if (!u || !name || !password)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    int rc = check_password_policy(&u->state.complexity, name, password);
    const struct user_record *rec = find_exact(&u->state, name);
    if (rc == USERS_OK && rec)
        rc = check_reuse(u, &u->state, rec, password);
    pthread_mutex_unlock(&u->lock);
    return rc;
}

const char *users_password_weakness(struct users *u, const char *name, const char *password)
{
    if (!u || !password || check_password_form(password) != USERS_OK)
        return NULL;
    pthread_mutex_lock(&u->lock);
    const char *why = policy_weakness(&u->state.complexity, name, password);
    pthread_mutex_unlock(&u->lock);
    return why;
}

/* --- policy -------------------------------------------------------------- */

int users_get_complexity(struct users *u, struct users_complexity *out)
{
    if (!u || !out)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    *out = u->state.complexity;
    pthread_mutex_unlock(&u->lock);
    return USERS_OK;
}

int users_set_complexity(struct users *u, const struct users_complexity *in)
{
    if (!u || !in)
        return USERS_E_INVALID;
    struct users_state *next = malloc(sizeof *next);
    if (!next)
        return USERS_E_NOMEM;
    pthread_mutex_lock(&u->lock);
    int rc = u->state.complexity.policy_configuration_locked ? USERS_E_POLICY : check_complexity_values(in);
    if (rc == USERS_OK) {
        *next = u->state;
        next->complexity = *in;
        next->complexity.block_username_occurrence = in->block_username_occurrence != 0;
        next->complexity.policy_configuration_locked = in->policy_configuration_locked != 0;
        rc = commit(u, next);
    }
    pthread_mutex_unlock(&u->lock);
    free(next);
    return rc;
}

int users_get_history(struct users *u, struct users_history *out)
{
    if (!u || !out)
        return USERS_E_INVALID;
    pthread_mutex_lock(&u->lock);
    *out = u->state.history;
    pthread_mutex_unlock(&u->lock);
    return USERS_OK;
}

int users_set_history(struct users *u, const struct users_history *in)
{
    if (!u || !in)
        return USERS_E_INVALID;
    struct users_state *next = malloc(sizeof *next);
    if (!next)
        return USERS_E_NOMEM;
    pthread_mutex_lock(&u->lock);
    int rc = u->state.complexity.policy_configuration_locked ? USERS_E_POLICY : check_history_values(in);
    if (rc == USERS_OK) {
        *next = u->state;
        next->history.enabled = in->enabled != 0;
        next->history.length = in->length;
        rc = commit(u, next);
    }
    pthread_mutex_unlock(&u->lock);
    free(next);
    return rc;
}
