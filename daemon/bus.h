/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "manager.h"

/* The API of dbus/org.gpuswitch1.xml on m->bus: the Manager object and one
 * Gpu object per managed GPU.  The manager knows nothing of it; it only
 * announces its changes (PropertiesChanged). */
int bus_attach(Manager *m);

/* bus-gpu.c */
extern const sd_bus_vtable gpu_vtable[];
