/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "pci-address.h"

/* The slots of a libvirt domain's PCI hostdevs, from the domain XML as
 * libvirtd hands it to a hook: the <source><address/> of every
 * /domain/devices/hostdev with type='pci' (mode='subsystem', libvirt's
 * default), once each, in document order.  Only elements count: text in
 * CDATA, comments and elements of other namespaces (<metadata>) do not.
 * The XML is never allowed to reach the network or the file system (no
 * DTD, no external entities).  -EINVAL with *error_message on XML that
 * does not parse or an address that is not one. */
int domain_pci_hostdev_slots(const char *xml, size_t len, PciAddress **ret, size_t *ret_n, char **error_message);
