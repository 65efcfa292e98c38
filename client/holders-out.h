/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>
#include <systemd/sd-bus.h>

#include "bus-users.h"
#include "json-out.h"

/* A ListHolders reply as the holders verb shows it, on f: a table of the
 * processes (or "No process holds ADDRESS."), then how many processes of
 * other users the daemon hid from the caller (users names the others as
 * their machine knows them); with j, the JSON document
 * instead ({"gpu", "holders": [...], "hidden"}).  0, or a negative errno
 * when the reply cannot be read. */
int holders_out(sd_bus_message *reply, const char *address, const BusUsers *users, JsonOut *j, FILE *f);
