/* Factory reset of the state directory (ONVIF SetSystemFactoryDefault, and
 * the command-line reset button). Soft keeps the network settings (scopes,
 * discovery mode, protocols and ports, clock); Hard keeps nothing but the
 * device's identity (device-uuid) and the device log, which survives resets.
 * The factory identity lives outside the state directory and is never
 * touched. Every secret goes: the device key is destroyed (every sealed
 * password and private key with it: a crypto-erase, since overwriting
 * sectors is no guarantee on flash or journaling file systems), and the
 * files holding sealed secrets are overwritten before they are removed.
 * Run it only while no module has the state open (services stopped). */
#ifndef OPENNVT_FACTORYRESET_H
#define OPENNVT_FACTORYRESET_H

enum factoryreset_kind { FACTORYRESET_SOFT, FACTORYRESET_HARD };

/* Returns the number of files removed, or -errno (nothing half done that a
 * second run would not finish: files are removed one by one, the device key
 * first). */
int factoryreset_wipe(const char *state_dir, enum factoryreset_kind kind);

/* A reset answered over the network must happen even if the daemon stops
 * before it runs: the request is recorded (state_dir/reset.pending, the
 * stronger kind when one is already pending), and factoryreset_resume,
 * called at every start before anything opens the state, carries it out;
 * the record goes last, so a reset interrupted by a crash is completed at
 * the next start. */
int factoryreset_request(const char *state_dir, enum factoryreset_kind kind);
/* Returns 1 when a recorded reset was carried out, 0 when none was pending,
 * or -errno. */
int factoryreset_resume(const char *state_dir);

/* "soft" / "hard" -> kind; -1 when unknown. */
int factoryreset_kind_from_name(const char *name);

#endif
