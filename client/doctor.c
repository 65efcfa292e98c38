/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gpuswitchctl doctor [GPU]: checks the setup a switch needs and says, for
 * each problem, what to do about it.
 *
 * Checks (ids in --json): iommu, vfio-pci, config, daemon, then per managed
 * GPU (or the one named) iommu-group, boot-vga, nvidia-modeset, then
 * per GPU compositor (one for each compositor holding it, from the
 * daemon's ListHolders), then egl-vendor, flatpak-gl, nvidia-services,
 * authorization.  The per-GPU checks ask the daemon which GPUs it
 * manages; when it cannot be reached, they run on the GPUs it would manage
 * by the config (Gpus=, Gpus=auto), and are "skipped" when the config does
 * not parse either (compositor, which needs the daemon's holder scan, is
 * skipped without it).  Every rule the
 * daemon applies is applied with the daemon's own code (gpuswitch-rules),
 * so doctor and gpuswitchd cannot disagree.
 *
 * --json: {"checks": [{"id": str, "title": str,
 *                      "verdict": "ok"|"warning"|"fail"|"skipped",
 *                      "detail": str, "fix": str|null}...],
 *          "failures": int, "warnings": int}
 *
 * Exit status: 0 when no check failed (warnings allowed), 1 when one did,
 * 5 when the daemon does not manage the GPU named. */
#include "doctor.h"

#include <pwd.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "errors.h"
#include "gpu-arg.h"
#include "gpuswitch-bus.h"
#include "nvidia.h"
#include "output.h"
#include "util.h"

size_t doctor_count(GPtrArray *checks, Verdict v) {
        size_t n = 0;

        for (size_t i = 0; i < checks->len; i++)
                n += ((Check *) checks->pdata[i])->verdict == v;
        return n;
}

static const char *verdict_word(Verdict v) {
        switch (v) {
        case VERDICT_OK:      return "ok";
        case VERDICT_WARNING: return "warn";
        case VERDICT_FAIL:    return "FAIL";
        default:              return "skip";
        }
}

static const char *verdict_color(Verdict v) {
        switch (v) {
        case VERDICT_OK:      return ansi_green();
        case VERDICT_WARNING: return ansi_yellow();
        case VERDICT_FAIL:    return output_colors() ? "\033[1;31m" : "";
        default:              return "";
        }
}

void doctor_print(GPtrArray *checks, FILE *f) {
        size_t width = 0, warnings = doctor_count(checks, VERDICT_WARNING), failures = doctor_count(checks, VERDICT_FAIL),
               skipped = doctor_count(checks, VERDICT_SKIPPED);

        for (size_t i = 0; i < checks->len; i++)
                width = MAX(width, (size_t) g_utf8_strlen(((Check *) checks->pdata[i])->title, -1));
        for (size_t i = 0; i < checks->len; i++) {
                const Check *c = checks->pdata[i];

                fprintf(f, "%s%-4s%s  %s%*s  %s\n", verdict_color(c->verdict), verdict_word(c->verdict), ansi_normal(),
                        c->title, (int) (width - g_utf8_strlen(c->title, -1)), "", c->detail);
                if (c->fix && (c->verdict == VERDICT_WARNING || c->verdict == VERDICT_FAIL))
                        fprintf(f, "      fix: %s\n", c->fix);
        }
        fprintf(f, "\n%zu warning%s, %zu failure%s", warnings, warnings == 1 ? "" : "s", failures,
                failures == 1 ? "" : "s");
        if (skipped > 0)
                fprintf(f, ", %zu skipped", skipped);
        fputc('\n', f);
}

void doctor_to_json(GPtrArray *checks, JsonOut *o) {
        if (!o)
                return;
        json_out_begin_object(o);
        json_out_member(o, "checks");
        json_out_begin_array(o);
        for (size_t i = 0; i < checks->len; i++) {
                const Check *c = checks->pdata[i];
                bool has_fix = c->fix && (c->verdict == VERDICT_WARNING || c->verdict == VERDICT_FAIL);

                json_out_begin_object(o);
                json_out_member(o, "id");
                json_out_string(o, c->id);
                json_out_member(o, "title");
                json_out_string(o, c->title);
                json_out_member(o, "verdict");
                json_out_string(o, verdict_to_json(c->verdict));
                json_out_member(o, "detail");
                json_out_string(o, strempty(c->detail));
                json_out_member(o, "fix");
                json_out_string(o, has_fix ? c->fix : NULL);
                json_out_end_object(o);
        }
        json_out_end_array(o);
        json_out_member(o, "failures");
        json_out_int(o, (int64_t) doctor_count(checks, VERDICT_FAIL));
        json_out_member(o, "warnings");
        json_out_int(o, (int64_t) doctor_count(checks, VERDICT_WARNING));
        json_out_end_object(o);
}

/* ---- what the bus tells ---------------------------------------------------- */

/* The managed GPUs (or the one named): -ENODEV with error set when the
 * daemon does not manage it, another error when it cannot be asked. */
static int list_gpus(sd_bus *bus, const char *gpu, GPtrArray *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func(g_free);
        const char *object, *address, *name, *mode;
        int r;

        if (*gpu) {
                r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "GetGpu", error, &reply, "s", gpu);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &object);
                if (r < 0)
                        return sd_bus_error_has_name(error, GS_ERROR_NO_SUCH_GPU) ? -ENODEV : r;
                g_ptr_array_add(objects, g_strdup(object));
        } else {
                r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE, "ListGpus", error, &reply, NULL);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "(osss)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(osss)", &object, &address, &name, &mode)) > 0)
                        g_ptr_array_add(objects, g_strdup(object));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < objects->len; i++) {
                GpuInfo *info = NULL;

                r = gpu_info_get(bus, objects->pdata[i], &info, error);
                if (r < 0)
                        return r;
                g_ptr_array_add(ret, info);
        }
        return 0;
}

/* systemd's ActiveState of each NVIDIA service ("" when not loaded); false
 * with reason set when systemd cannot be asked. */
static bool service_states(sd_bus *bus, char **states, char **reason) {
        for (size_t i = 0; nvidia_services[i]; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_free_ char *state = NULL;
                const char *unit;
                int r;

                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "GetUnit", &error, &reply, "s",
                                       nvidia_services[i]);
                if (r < 0 && sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit")) {
                        states[i] = g_strdup("");
                        continue;
                }
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &unit);
                if (r >= 0)
                        r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", unit,
                                                       "org.freedesktop.systemd1.Unit", "ActiveState", &error, &state);
                if (r < 0) {
                        *reason = g_strdup_printf("systemd could not be asked about %s: %s", nvidia_services[i],
                                                  sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                        return false;
                }
                states[i] = g_strdup(state);
        }
        return true;
}

/* The daemon's ListHolders of a GPU, into holders (DoctorHolder); false
 * with reason set when it did not answer. */
static bool list_holders(sd_bus *bus, const char *address, GArray *holders, char **reason) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *comm, *node;
        uint32_t pid, uid;
        int r;

        r = sd_bus_call_method(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH, GPUSWITCH_MANAGER_INTERFACE,
                               "ListHolders", &error, &reply, "s", address);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(uuss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uuss)", &pid, &uid, &comm, &node)) > 0) {
                DoctorHolder h = { .pid = pid, .comm = g_strdup(comm), .node = g_strdup(node) };

                g_array_append_val(holders, h);
        }
        if (r < 0) {
                *reason = g_strdup_printf("the daemon did not list what holds %s: %s", address,
                                          sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return false;
        }
        return true;
}

/* polkit's answer for org.gpuswitch1.switch, asked for this process's own
 * bus name without interaction, as the daemon would ask it. */
static AuthAnswer authorization(sd_bus *bus, char **reason) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *unique = NULL;
        int authorized = 0, challenge = 0, r;

        if (geteuid() == 0)
                return AUTH_ROOT;
        r = sd_bus_get_unique_name(bus, &unique);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                                       "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization", &error, &reply,
                                       "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", unique,
                                       POLKIT_ACTION_SWITCH, 0, 0u, "");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                *reason = g_strdup(sd_bus_error_is_set(&error) ? error.message : strerror(-r));
                return AUTH_UNKNOWN;
        }
        return authorized ? AUTH_YES : challenge ? AUTH_CHALLENGE : AUTH_NO;
}

static int no_such_gpu(const sd_bus_error *e, bool json) {
        g_autoptr(JsonOut) j = json ? json_out_new() : NULL;

        json_out_begin_object(j);
        json_out_member(j, "error");
        json_out_string(j, e->name);
        json_out_member(j, "message");
        json_out_string(j, strempty(e->message));
        json_out_end_object(j);
        json_out_print(j, stdout, true);
        fprintf(stderr, "gpuswitchctl: %s\n", strempty(e->message));
        return GS_EXIT_NO_SUCH_GPU;
}

/* The GPUs the per-GPU checks look at: the daemon's, each read from sysfs
 * with the host drivers the daemon resolved; without the daemon the ones
 * its config makes it manage.  1 when they are known, 0 with *reason when
 * not, -ENODEV with error set when the daemon does not manage gpu. */
static int doctor_gpus(sd_bus *bus, bool daemon_up, const char *gpu, const Config *config, GPtrArray *gpus,
                       char **reason, sd_bus_error *error) {
        g_autoptr(GPtrArray) infos = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_info_free);
        g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_free);
        char slot[PCI_SLOT_STRLEN];
        int r;

        if (daemon_up) {
                r = list_gpus(bus, gpu, infos, error);
                if (r == -ENODEV)
                        return r;
                if (r < 0) {
                        *reason = g_strdup_printf("the daemon did not list its GPUs: %s",
                                                  error->message ? error->message : strerror(-r));
                        return 0;
                }
                for (size_t i = 0; i < infos->len; i++) {
                        const GpuInfo *info = infos->pdata[i];
                        Gpu *g = NULL;

                        r = doctor_gpu_read("/", info->address, config, info, &g);
                        if (r < 0) {
                                *reason = g_strdup_printf("%s could not be read from sysfs: %s", info->address,
                                                          strerror(-r));
                                return 0;
                        }
                        g_ptr_array_add(gpus, g);
                }
                return 1;
        }
        if (!config) {
                *reason = g_strdup("needs the daemon, which does not answer, or a config it accepts");
                return 0;
        }
        r = doctor_find_gpus("/", config, all);
        if (r < 0) {
                *reason = g_strdup_printf("the GPUs of the config could not be read: %s", strerror(-r));
                return 0;
        }
        if (*gpu && gpu_arg_normalize(gpu, slot) < 0) {
                *reason = g_strdup_printf("'%s' is not a PCI address", gpu);
                return 0;
        }
        for (size_t i = 0; i < all->len; i++)
                if (!*gpu || streq(((Gpu *) all->pdata[i])->address, slot))
                        g_ptr_array_add(gpus, g_steal_pointer(&all->pdata[i]));
        if (*gpu && gpus->len == 0) {
                *reason = g_strdup_printf("the daemon does not answer, and its config does not make it manage %s",
                                          slot);
                return 0;
        }
        return 1;
}

int doctor_run(sd_bus *bus, const char *gpu, bool json) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(config_freep) Config *config = NULL;
        g_autoptr(GPtrArray) checks = g_ptr_array_new_with_free_func((GDestroyNotify) check_free);
        g_autoptr(GPtrArray) gpus = g_ptr_array_new_with_free_func((GDestroyNotify) gpu_free);
        g_autofree char *version = NULL, *gpus_reason = NULL, *services_reason = NULL, *auth_reason = NULL;
        char *states[G_N_ELEMENTS(nvidia_services)] = {};
        struct passwd *pw = getpwuid(getuid());
        bool have_gpus = false, have_states = false, daemon_up = false;
        struct utsname u;
        AuthAnswer auth = AUTH_UNKNOWN;
        int r;

        /* the daemon's code logs what it finds; doctor reports it in its checks */
        gs_log_max_level = LOG_LEVEL_WARNING;
        (void) uname(&u);
        g_ptr_array_add(checks, doctor_check_iommu("/"));
        g_ptr_array_add(checks, doctor_check_vfio_pci("/", u.release));
        g_ptr_array_add(checks, doctor_check_config("/", &config));

        if (!bus) {
                _cleanup_(sd_bus_unrefp) sd_bus *retry = NULL;

                /* the caller could not connect: ask again for the reason */
                r = sd_bus_open_system(&retry);
                g_ptr_array_add(checks, doctor_check_daemon(NULL, NULL, r < 0 ? strerror(-r) : "not connected"));
        } else {
                r = sd_bus_get_property_string(bus, GPUSWITCH_BUS_NAME, GPUSWITCH_MANAGER_PATH,
                                               GPUSWITCH_MANAGER_INTERFACE, "Version", &error, &version);
                if (r < 0)
                        g_ptr_array_add(checks, doctor_check_daemon(NULL, error.name ? error.name : "",
                                                                    error.message ? error.message : strerror(-r)));
                else {
                        g_ptr_array_add(checks, doctor_check_daemon(version, NULL, NULL));
                        daemon_up = true;
                }
                sd_bus_error_free(&error);
        }
        r = doctor_gpus(bus, daemon_up, gpu, config, gpus, &gpus_reason, &error);
        if (r == -ENODEV)
                return no_such_gpu(&error, json);
        have_gpus = r > 0;

        if (!have_gpus) {
                g_ptr_array_add(checks, doctor_check_skipped("iommu-group", "IOMMU group", gpus_reason));
                g_ptr_array_add(checks, doctor_check_skipped("boot-vga", "Boot VGA", gpus_reason));
                g_ptr_array_add(checks, doctor_check_skipped("nvidia-modeset", "nvidia_drm modeset", gpus_reason));
        } else if (gpus->len == 0) {
                g_autoptr(Check) c = doctor_check_skipped("iommu-group", "IOMMU group",
                                                          daemon_up ? "no GPU is managed"
                                                          : config->gpus_auto ? "gpuswitchd would manage no GPU: "
                                                          "Gpus=auto finds no NVIDIA display controller but the boot "
                                                          "VGA device"
                                                          : "gpuswitchd would manage no GPU: none of Gpus= is there");

                c->verdict = VERDICT_WARNING;
                c->fix = g_strdup("name the GPU in Gpus= of " GPUSWITCH_CONFIG_FILE " ([Daemon]) and restart "
                                  "gpuswitchd");
                g_ptr_array_add(checks, g_steal_pointer(&c));
        }
        for (size_t i = 0; have_gpus && i < gpus->len; i++) {
                g_ptr_array_add(checks, doctor_check_group("/", gpus->pdata[i]));
                g_ptr_array_add(checks, doctor_check_boot_vga(config, gpus->pdata[i]));
                g_ptr_array_add(checks, doctor_check_nvidia("/", gpus->pdata[i]));
        }

        for (size_t i = 0; have_gpus && i < gpus->len; i++) {
                g_autoptr(GArray) holders = g_array_new(FALSE, FALSE, sizeof(DoctorHolder));
                g_autofree char *reason = NULL;
                bool known;

                g_array_set_clear_func(holders, (GDestroyNotify) doctor_holder_done);
                if (daemon_up)
                        known = list_holders(bus, ((Gpu *) gpus->pdata[i])->address, holders, &reason);
                else {
                        known = false;
                        reason = g_strdup("needs the daemon's holder scan: the daemon does not answer");
                }
                doctor_check_compositors("/", config, gpus->pdata[i], (Gpu **) gpus->pdata, gpus->len,
                                         (DoctorHolder *) holders->data, holders->len, known ? NULL : reason,
                                         checks);
        }
        if (!have_gpus)
                g_ptr_array_add(checks, doctor_check_skipped("compositor", "Desktop compositor", gpus_reason));

        g_ptr_array_add(checks, doctor_check_egl_vendor("/"));
        g_ptr_array_add(checks, doctor_check_flatpak("/", g_get_home_dir()));

        if (bus)
                have_states = service_states(bus, states, &services_reason);
        else
                services_reason = g_strdup("needs systemd on the system bus: no system bus");
        g_ptr_array_add(checks, doctor_check_services(config, have_states ? (const char *const *) states : NULL,
                                                      services_reason, have_gpus ? (Gpu **) gpus->pdata : NULL,
                                                      have_gpus ? gpus->len : 0));
        for (size_t i = 0; i < G_N_ELEMENTS(states); i++)
                g_free(states[i]);

        if (geteuid() == 0)
                auth = AUTH_ROOT;
        else if (bus)
                auth = authorization(bus, &auth_reason);
        if (auth == AUTH_UNKNOWN && !bus)
                g_ptr_array_add(checks, doctor_check_skipped("authorization", "Authorization",
                                                             "needs polkit on the system bus: no system bus"));
        else
                g_ptr_array_add(checks, doctor_check_authorization(auth, pw ? pw->pw_name : "USER", auth_reason));

        if (json) {
                g_autoptr(JsonOut) j = json_out_new();

                doctor_to_json(checks, j);
                json_out_print(j, stdout, true);
        } else
                doctor_print(checks, stdout);
        return doctor_count(checks, VERDICT_FAIL) > 0 ? GS_EXIT_FAILURE : GS_EXIT_OK;
}
