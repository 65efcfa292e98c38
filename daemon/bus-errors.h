/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "switch-error.h"

/* The engine's error as the API's named error (dbus/org.gpuswitch1.xml);
 * returns the negative errno sd-bus gives that name. */
int bus_error_from_switch_error(sd_bus_error *error, const SwitchError *e);
