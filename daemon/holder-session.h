/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "holders.h"

/* A compositor opens a GPU's DRM node through systemd-logind (TakeControl,
 * then TakeDevice on org.freedesktop.login1.Session): logind opens the node,
 * keeps that descriptor, hands the compositor a copy and pushes another into
 * PID 1's fd store (FDSTORE=1, FDNAME=session-ID-device-MAJ-MIN) to survive
 * its own restart.  A scan of /proc then finds PID 1 and logind beside the
 * compositor.  Those copies belong to the session's controller: once it
 * exits logind drops its session devices, closes its descriptor and removes
 * the copy from PID 1's fd store (FDSTOREREMOVE=1).  What logind writes of
 * such a session is in /run/systemd/sessions/ID (session_save()). */

#define LOGIND_SESSIONS_DIR "/run/systemd/sessions"

typedef struct LogindSession {
        char id[32];
        uid_t uid;
        char user[32];
        char scope[96];          /* "session-2.scope" */
        char controller[64];     /* its unique bus name, ":1.42" */
        dev_t *devices;          /* DEVICES=: what it took with TakeDevice */
        size_t n_devices;
} LogindSession;

/* The sessions under dir that have a controller and devices, sorted by
 * id.  A missing folder is no session. */
int logind_sessions_read(const char *dir, LogindSession **ret, size_t *ret_n);
void logind_sessions_free(LogindSession *s, size_t n);

/* The services whose fd store (FileDescriptorStoreMax=) may keep a
 * descriptor of devnum, as a NULL-terminated list.  Returns 1 when systemd
 * said which descriptors they keep (DumpUnitFileDescriptorStore, systemd
 * 254 and later), 0 when they are only the services that keep any
 * (NFileDescriptorStore, older systemd), or -errno. */
typedef int (*FdStoreUnitsFunc)(dev_t devnum, char ***ret_units, void *userdata);

/* systemd's answer, over a connection of the calling thread's own: it
 * blocks, call it off the bus loop. */
int fdstore_units_systemd(dev_t devnum, char ***ret_units, void *userdata);

typedef struct HolderSources {
        const char *proc_root;          /* "/proc": PID 1's and logind's descriptors are counted there */
        const char *sessions_dir;       /* LOGIND_SESSIONS_DIR; NULL: nothing is attributed */
        FdStoreUnitsFunc fdstore_units; /* NULL: the fd stores are not asked about */
        void *userdata;
} HolderSources;

/* Names who holds what PID 1 and systemd-logind hold.  A session's
 * controller among the holders gets the session (session_controller);
 * PID 1's and logind's entries whose descriptors are all copies of
 * devices of sessions whose controller is listed are dropped from the
 * list: the controller is the holder.  What is left of them says why:
 * a session whose controller holds no copy (session), or descriptors PID
 * 1 keeps beyond the sessions' (fdstore).  Reads files only, but
 * fdstore_units may call systemd. */
int holders_attribute(const HolderSources *src, const DeviceNode *nodes, size_t n_nodes, Holder **holders,
                      size_t *n);

/* The hint for an entry holders_attribute() annotated, or NULL. */
const char *holder_session_hint(const Holder *h, char *buf, size_t len);
