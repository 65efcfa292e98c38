/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "holder-session.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <glib.h>
#include <systemd/sd-bus.h>

#include "systemd-job.h"
#include "util.h"

#define LOGIND_UNIT "systemd-logind.service"
#define FDSTORE_CALL_TIMEOUT_USEC (5ULL * 1000 * 1000)

void logind_sessions_free(LogindSession *s, size_t n) {
        for (size_t i = 0; s && i < n; i++)
                free(s[i].devices);
        free(s);
}

/* A user name from a file goes into messages and bus replies: printable
 * ASCII only. */
static void copy_printable(char *dst, size_t len, const char *src) {
        size_t i = 0;

        for (; src[i] && i + 1 < len; i++)
                dst[i] = (unsigned char) src[i] > 0x20 && (unsigned char) src[i] < 0x7f ? src[i] : '?';
        dst[i] = 0;
}

/* "226:0 13:64 " */
static int parse_devices(const char *v, LogindSession *s) {
        for (const char *p = v; *p;) {
                unsigned ma, mi;
                int used = 0;
                dev_t *l;

                p += strspn(p, " ");
                if (!*p)
                        break;
                if (sscanf(p, "%u:%u%n", &ma, &mi, &used) != 2 || used == 0)
                        return -EINVAL;
                p += used;
                l = reallocarray(s->devices, s->n_devices + 1, sizeof *l);
                if (!l)
                        return -ENOMEM;
                s->devices = l;
                l[s->n_devices++] = makedev(ma, mi);
        }
        return 0;
}

/* logind's session_save(): KEY=VALUE lines; CONTROLLER= and DEVICES= only
 * while a controller is set. */
static int session_read(int dir_fd, const char *id, LogindSession *s) {
        _cleanup_close_ int fd = openat(dir_fd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        _cleanup_fclose_ FILE *f = NULL;
        struct stat st;
        char line[512];

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return -EBADF;
        f = fdopen(fd, "re");
        if (!f)
                return -errno;
        TAKE_FD(fd);
        *s = (LogindSession) { .uid = (uid_t) -1 };
        snprintf(s->id, sizeof s->id, "%s", id);
        while (fgets(line, sizeof line, f)) {
                char *v = strchr(line, '=');
                int r;

                line[strcspn(line, "\n")] = 0;
                if (!v)
                        continue;
                *v++ = 0;
                if (streq(line, "UID"))
                        s->uid = (uid_t) strtoul(v, NULL, 10);
                else if (streq(line, "USER"))
                        copy_printable(s->user, sizeof s->user, v);
                else if (streq(line, "SCOPE"))
                        copy_printable(s->scope, sizeof s->scope, v);
                else if (streq(line, "CONTROLLER"))
                        copy_printable(s->controller, sizeof s->controller, v);
                else if (streq(line, "DEVICES")) {
                        r = parse_devices(v, s);
                        if (r < 0) {
                                free(s->devices);
                                s->devices = NULL;
                                return r;
                        }
                }
        }
        return 0;
}

static int session_cmp(const void *a, const void *b) {
        return strcmp(((const LogindSession *) a)->id, ((const LogindSession *) b)->id);
}

int logind_sessions_read(const char *dir, LogindSession **ret, size_t *ret_n) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        LogindSession *l = NULL;
        size_t n = 0;
        struct dirent *de;

        *ret = NULL;
        *ret_n = 0;
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                LogindSession s, *nl;

                /* session IDs are alphanumeric; "2.ref" is the session's FIFO */
                if (de->d_name[0] == '.' || strspn(de->d_name, "abcdefghijklmnopqrstuvwxyz0123456789") !=
                                                    strlen(de->d_name) || strlen(de->d_name) >= sizeof s.id)
                        continue;
                if (session_read(dirfd(d), de->d_name, &s) < 0)
                        continue;       /* gone meanwhile, or not logind's */
                if (!s.controller[0] || s.n_devices == 0) {
                        free(s.devices);
                        continue;
                }
                nl = reallocarray(l, n + 1, sizeof *nl);
                if (!nl) {
                        free(s.devices);
                        logind_sessions_free(l, n);
                        return -ENOMEM;
                }
                l = nl;
                l[n++] = s;
        }
        if (n > 1)
                qsort(l, n, sizeof *l, session_cmp);
        *ret = l;
        *ret_n = n;
        return 0;
}

static const DeviceNode *node_by_name(const DeviceNode *nodes, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(nodes[i].name, name))
                        return &nodes[i];
        return NULL;
}

/* How many of PID's descriptors are the character device devnum. */
static unsigned count_fds(const char *proc_root, pid_t pid, dev_t devnum) {
        _cleanup_free_ char *p = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        unsigned n = 0;

        if (asprintf(&p, "%s/%d/fd", proc_root, (int) pid) < 0)
                return 0;
        d = opendir(p);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == devnum)
                        n++;
        }
        return n;
}

static int read_proc_file(const char *proc_root, pid_t pid, const char *name, char *buf, size_t len) {
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -1;
        ssize_t k;

        if (asprintf(&p, "%s/%d/%s", proc_root, (int) pid, name) < 0)
                return -ENOMEM;
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, len - 1);
        if (k < 0)
                return -errno;
        buf[k] = 0;
        return 0;
}

/* How sure it is that holder h is session s's controller: in the
 * session's scope (a compositor started by the login), of its audit
 * session (logind takes the audit session's ID as its own), of its user
 * (GNOME and Plasma run the compositor as a service of the user's systemd:
 * only the user tells then).  0: not that session's, as one in another
 * session's scope. */
static int controller_score(const char *proc_root, const Holder *h, const LogindSession *s) {
        char buf[1024];
        int score = 0;

        if (read_proc_file(proc_root, h->pid, "cgroup", buf, sizeof buf) >= 0)
                for (const char *p = strstr(buf, "/session-"); p; p = strstr(p + 1, "/session-")) {
                        size_t len = strcspn(p + 1, "/\n");

                        if (len <= strlen("session-.scope") || strncmp(p + 1 + len - 6, ".scope", 6) != 0)
                                continue;
                        if (len != strlen(s->scope) || strncmp(p + 1, s->scope, len) != 0)
                                return 0;
                        score += 4;
                        break;
                }
        if (read_proc_file(proc_root, h->pid, "sessionid", buf, sizeof buf) >= 0 && streq(buf, s->id))
                score += 2;
        if (h->uid == s->uid)
                score += 1;
        return score;
}

/* /proc/PID/stat: "PID (COMM) STATE PPID ...", COMM may hold anything. */
static pid_t parent_of(const char *proc_root, pid_t pid) {
        char buf[512], *p;
        int ppid;

        if (read_proc_file(proc_root, pid, "stat", buf, sizeof buf) < 0 || !(p = strrchr(buf, ')')) ||
            sscanf(p + 1, " %*c %d", &ppid) != 1)
                return 0;
        return ppid;
}

static bool is_ancestor(const char *proc_root, pid_t ancestor, pid_t pid) {
        for (unsigned depth = 0; depth < 64 && pid > 1; depth++) {
                pid = parent_of(proc_root, pid);
                if (pid == ancestor)
                        return true;
        }
        return false;
}

static bool is_logind(const Holder *h) {
        return streq(h->unit, LOGIND_UNIT);
}

/* The holder of session s's device devnum most surely of the session, or
 * -1.  Of two alike (a compositor and the Xwayland it started, both in the
 * session), the one that started the other, else the older PID. */
static ssize_t find_controller(const HolderSources *src, const DeviceNode *nodes, size_t n_nodes, Holder *h,
                               size_t n, const LogindSession *s, dev_t devnum) {
        ssize_t best = -1;
        int best_score = 0;

        for (size_t i = 0; i < n; i++) {
                const DeviceNode *node = node_by_name(nodes, n_nodes, h[i].node);
                int score;

                if (h[i].protected || !node || node->devnum != devnum)
                        continue;
                score = controller_score(src->proc_root, &h[i], s);
                if (score == 0 || score < best_score)
                        continue;
                if (score == best_score && (is_ancestor(src->proc_root, h[best].pid, h[i].pid) ||
                                            (!is_ancestor(src->proc_root, h[i].pid, h[best].pid) &&
                                             h[best].pid < h[i].pid)))
                        continue;
                best = (ssize_t) i;
                best_score = score;
        }
        return best;
}

static void set_session(Holder *h, const LogindSession *s) {
        snprintf(h->session, sizeof h->session, "%s", s->id);
        snprintf(h->session_user, sizeof h->session_user, "%s", s->user[0] ? s->user : "?");
}

/* PID 1 keeps more copies of devnum than logind's sessions: name the
 * services whose fd store may hold them. */
static void ask_fdstore(const HolderSources *src, dev_t devnum, Holder *h) {
        g_auto(GStrv) units = NULL;
        int r;

        if (!src->fdstore_units) {
                h->fdstore_unnamed = true;
                return;
        }
        r = src->fdstore_units(devnum, &units, src->userdata);
        if (r < 0) {
                log_warning_errno(r, "asking systemd which service's fd store keeps %s", h->node);
                h->fdstore_unnamed = true;
                return;
        }
        if (!units || !units[0]) {
                h->fdstore_unnamed = true;
                return;
        }
        {
                g_autofree char *joined = g_strjoinv(", ", units);

                snprintf(h->fdstore, sizeof h->fdstore, "%s", joined);
        }
        h->fdstore_exact = r > 0;
}

/* Whether session s has a controller among the holders of its device
 * devnum; marks it.  Each session's controller is found once per device,
 * before PID 1's and logind's entries are weighed. */
static bool attribute_device(const HolderSources *src, const DeviceNode *nodes, size_t n_nodes, Holder *h, size_t n,
                             const LogindSession *s, dev_t devnum) {
        ssize_t c = find_controller(src, nodes, n_nodes, h, n, s, devnum);

        if (c < 0)
                return false;
        h[c].session_controller = true;
        set_session(&h[c], s);
        return true;
}

int holders_attribute(const HolderSources *src, const DeviceNode *nodes, size_t n_nodes, Holder **holders,
                      size_t *n) {
        LogindSession *sessions = NULL;
        size_t n_sessions = 0, kept = 0, n_devices = 0;
        _cleanup_free_ bool *drop = NULL, *controlled = NULL;
        bool any = false;
        Holder *h = *holders;
        int r;

        if (!src || !src->sessions_dir)
                return 0;
        for (size_t i = 0; i < *n; i++)
                any = any || h[i].pid == 1 || is_logind(&h[i]);
        if (!any)
                return 0;

        r = logind_sessions_read(src->sessions_dir, &sessions, &n_sessions);
        if (r < 0)
                log_debug_errno(r, "reading logind's sessions in %s", src->sessions_dir);
        for (size_t k = 0; k < n_sessions; k++)
                n_devices += sessions[k].n_devices;
        drop = calloc(*n, sizeof *drop);
        controlled = calloc(n_devices ?: 1, sizeof *controlled);
        if (!drop || !controlled) {
                logind_sessions_free(sessions, n_sessions);
                return -ENOMEM;
        }
        /* controlled[] in the sessions' order, each one's devices in turn */
        for (size_t k = 0, at = 0; k < n_sessions; at += sessions[k].n_devices, k++)
                for (size_t d = 0; d < sessions[k].n_devices; d++)
                        controlled[at + d] = attribute_device(src, nodes, n_nodes, h, *n, &sessions[k],
                                                              sessions[k].devices[d]);

        for (size_t i = 0; i < *n; i++) {
                const DeviceNode *node = node_by_name(nodes, n_nodes, h[i].node);
                const LogindSession *orphan = NULL;
                unsigned count, in_sessions = 0;

                if (!node || !(h[i].pid == 1 || is_logind(&h[i])))
                        continue;
                for (size_t k = 0, at = 0; k < n_sessions; at += sessions[k].n_devices, k++)
                        for (size_t d = 0; d < sessions[k].n_devices; d++) {
                                if (sessions[k].devices[d] != node->devnum)
                                        continue;
                                in_sessions++;
                                if (!controlled[at + d] && !orphan)
                                        orphan = &sessions[k];
                        }
                /* logind keeps one descriptor per session device, and PID 1
                 * one copy of each in logind's fd store */
                count = count_fds(src->proc_root, h[i].pid, node->devnum);
                if (orphan)
                        set_session(&h[i], orphan);
                if (h[i].pid == 1 && count > in_sessions)
                        ask_fdstore(src, node->devnum, &h[i]);
                drop[i] = !orphan && count <= in_sessions;
        }

        for (size_t i = 0; i < *n; i++) {
                if (drop[i]) {
                        log_debug("%d (%s) holds %s for a session's controller: not a holder of its own",
                                  (int) h[i].pid, h[i].comm, h[i].node);
                        closep(&h[i].pidfd);
                        continue;
                }
                h[kept++] = h[i];
        }
        *n = kept;
        logind_sessions_free(sessions, n_sessions);
        return 0;
}

const char *holder_session_hint(const Holder *h, char *buf, size_t len) {
        if (h->session_controller) {
                snprintf(buf, len, "the controller of %s's session %s, which opened the GPU through systemd-logind "
                         "(TakeDevice): log out of that session, or keep the desktop off this GPU; --force ends %s, "
                         "and logind then closes its copies", h->session_user, h->session, h->comm);
                return buf;
        }
        if (h->session[0]) {
                snprintf(buf, len, "systemd-logind%s holds it for %s's session %s (TakeDevice), whose controller "
                         "holds no copy any process here shows: 'loginctl terminate-session %s' ends the session; "
                         "gpuswitchd never ends %s", h->pid == 1 ? " (through PID 1's fd store)" : "",
                         h->session_user, h->session, h->session, h->pid == 1 ? "PID 1" : "logind");
                return buf;
        }
        if (h->fdstore[0] && h->fdstore_exact) {
                snprintf(buf, len, "PID 1 keeps it in the fd store (FileDescriptorStoreMax=) of %s: 'systemctl stop "
                         "%s' releases it; gpuswitchd never ends PID 1", h->fdstore, h->fdstore);
                return buf;
        }
        if (h->fdstore[0]) {
                snprintf(buf, len, "PID 1 keeps it in a service's fd store (FileDescriptorStoreMax=); this systemd "
                         "cannot say whose, and these services keep descriptors there: %s. Stopping the service "
                         "releases them ('systemctl stop NAME'); gpuswitchd never ends PID 1", h->fdstore);
                return buf;
        }
        if (h->fdstore_unnamed) {
                snprintf(buf, len, "PID 1 keeps it, and no session or service could be named: look for services "
                         "with stored descriptors ('systemctl show -p NFileDescriptorStore SERVICE', or "
                         "'systemd-analyze fdstore SERVICE' on systemd 254 and later) and stop that one; "
                         "gpuswitchd never ends PID 1");
                return buf;
        }
        return NULL;
}

/* systemd 254+: exactly which of a service's stored descriptors are the device. */
static int fdstore_dump_has(sd_bus *bus, const char *unit, dev_t devnum, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name, *path;
        uint32_t mode, dev_major, dev_minor, rdev_major, rdev_minor, flags;
        uint64_t inode;
        bool found = false;
        int r;

        r = sd_bus_call_method(bus, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER,
                               "DumpUnitFileDescriptorStore", e, &reply, "s", unit);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(suuutuusu)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(suuutuusu)", &name, &mode, &dev_major, &dev_minor, &inode,
                                        &rdev_major, &rdev_minor, &path, &flags)) > 0) {
                /* logind's copies of its sessions' devices are the sessions' */
                if (streq(unit, LOGIND_UNIT) && strncmp(name, "session-", 8) == 0)
                        continue;
                if (S_ISCHR(mode) && makedev(rdev_major, rdev_minor) == devnum)
                        found = true;
        }
        return r < 0 ? r : found;
}

int fdstore_units_systemd(dev_t devnum, char ***ret_units, void *userdata) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) units = g_ptr_array_new_null_terminated(0, g_free, TRUE);
        const char *id, *path;
        bool exact = true;
        int r;

        *ret_units = NULL;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_method_call_timeout(bus, FDSTORE_CALL_TIMEOUT_USEC);
        r = sd_bus_call_method(bus, SYSTEMD_BUS_NAME, SYSTEMD_BUS_PATH, SYSTEMD_BUS_MANAGER, "ListUnitsByPatterns",
                               &e, &reply, "asas", 0, 1, "*.service");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ssssssouso)", &id, NULL, NULL, NULL, NULL, NULL, &path, NULL, NULL,
                                        NULL)) > 0) {
                _cleanup_(sd_bus_error_free) sd_bus_error pe = SD_BUS_ERROR_NULL;
                uint32_t stored = 0;
                int q;

                if (sd_bus_get_property_trivial(bus, SYSTEMD_BUS_NAME, path, "org.freedesktop.systemd1.Service",
                                                "NFileDescriptorStore", &pe, 'u', &stored) < 0 || stored == 0)
                        continue;
                if (exact) {
                        _cleanup_(sd_bus_error_free) sd_bus_error de = SD_BUS_ERROR_NULL;

                        q = fdstore_dump_has(bus, id, devnum, &de);
                        if (q >= 0) {
                                if (q > 0)
                                        g_ptr_array_add(units, g_strdup(id));
                                continue;
                        }
                        if (!sd_bus_error_has_name(&de, SD_BUS_ERROR_UNKNOWN_METHOD))
                                continue;
                        /* systemd before 254: every service that keeps any
                         * descriptor, from here on and from those seen */
                        exact = false;
                        g_ptr_array_set_size(units, 0);
                        sd_bus_message_rewind(reply, true);
                        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
                        if (r < 0)
                                return r;
                        continue;
                }
                /* their descriptors are logind's sessions' and journald's
                 * stream sockets: neither ever a GPU's on its own */
                if (streq(id, LOGIND_UNIT) || streq(id, "systemd-journald.service"))
                        continue;
                g_ptr_array_add(units, g_strdup(id));
        }
        if (r < 0)
                return r;
        *ret_units = (char **) g_ptr_array_steal(units, NULL);
        return exact;
}
