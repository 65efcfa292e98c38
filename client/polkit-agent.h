/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A text polkit agent for this process, as systemctl starts one: pkttyagent
 * asks for the password on our terminal when polkit wants one. */
int polkit_agent_open(void);
void polkit_agent_close(void);
