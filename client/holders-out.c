/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "holders-out.h"

#include "gpuswitch-bus.h"
#include "output.h"

int holders_out(sd_bus_message *reply, const char *address, const BusUsers *users, JsonOut *j, FILE *f) {
        g_autoptr(Table) t = table_new(4, "PID", "USER", "COMMAND", "NODE");
        const char *comm, *node;
        uint32_t pid, uid;
        unsigned hidden = 0;
        int r;

        json_out_begin_object(j);
        json_out_member(j, "gpu");
        json_out_string(j, address);
        json_out_member(j, "holders");
        json_out_begin_array(j);
        r = sd_bus_message_enter_container(reply, 'a', "(uuss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(uuss)", &pid, &uid, &comm, &node)) > 0) {
                char pid_s[16], user_buf[BUS_USER_NAME_MAX];
                const char *user;

                /* another user's process, which only root or those allowed
                 * to switch see */
                if (HOLDER_IS_HIDDEN(pid, uid)) {
                        hidden++;
                        continue;
                }
                user = bus_users_name(users, uid, user_buf);
                snprintf(pid_s, sizeof pid_s, "%u", pid);
                json_out_begin_object(j);
                json_out_member(j, "pid");
                json_out_int(j, pid);
                json_out_member(j, "uid");
                json_out_int(j, uid);
                json_out_member(j, "user");
                json_out_string(j, user);
                json_out_member(j, "command");
                json_out_string(j, comm);
                json_out_member(j, "node");
                json_out_string(j, node);
                json_out_end_object(j);
                table_add_row(t, pid_s, user, comm, node);
        }
        if (r < 0)
                return r;
        json_out_end_array(j);
        json_out_member(j, "hidden");
        json_out_int(j, hidden);
        json_out_end_object(j);

        if (j)
                return json_out_print(j, f, true);
        if (table_rows(t) == 0 && hidden == 0) {
                fprintf(f, "No process holds %s.\n", address);
                return 0;
        }
        if (table_rows(t) > 0)
                table_print(t, f);
        if (hidden > 0)
                fprintf(f, "%u more process%s of other users, hidden (root or those allowed to switch see them)\n",
                        hidden, hidden == 1 ? "" : "es");
        return 0;
}
