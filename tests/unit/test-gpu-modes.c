/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The three mode types and their parsers: what a GPU shows, where a switch
 * takes it, what DefaultMode= asks for. */
#include "gpu-modes.h"
#include "testlib.h"
#include "util.h"

static void test_state(void) {
        CHECK_STR(gpu_state_to_string(GPU_STATE_HOST), "host");
        CHECK_STR(gpu_state_to_string(GPU_STATE_SWITCHING), "switching");
        CHECK(gpu_state_to_string(_GPU_STATE_MAX) == NULL);
        CHECK(gpu_state_to_string(_GPU_STATE_INVALID) == NULL);
        for (GpuState s = 0; s < _GPU_STATE_MAX; s++)
                CHECK_INT(gpu_state_from_string(gpu_state_to_string(s)), s);
        CHECK_INT(gpu_state_from_string("keep"), _GPU_STATE_INVALID);
        CHECK_INT(gpu_state_from_string(NULL), _GPU_STATE_INVALID);
}

static void test_target(void) {
        char buf[SWITCH_TARGET_CHOICES_MAX];

        for (SwitchTarget t = 0; t < _SWITCH_TARGET_MAX; t++) {
                const SwitchTargetInfo *info = switch_target_info(t);

                CHECK(info != NULL);
                CHECK_INT(switch_target_from_string(switch_target_to_string(t)), t);
                /* the state a GPU shows once there has the target's name */
                CHECK_STR(gpu_state_to_string(info->state), info->name);
        }
        CHECK_STR(switch_target_info(SWITCH_TARGET_VFIO)->driver, "vfio-pci");
        CHECK(switch_target_info(SWITCH_TARGET_VFIO)->leaves_host);
        CHECK(switch_target_info(SWITCH_TARGET_HOST)->driver == NULL);
        CHECK(!switch_target_info(SWITCH_TARGET_HOST)->leaves_host);
        /* observed states and DefaultMode's keep are no targets */
        CHECK_INT(switch_target_from_string("mixed"), _SWITCH_TARGET_INVALID);
        CHECK_INT(switch_target_from_string("switching"), _SWITCH_TARGET_INVALID);
        CHECK_INT(switch_target_from_string("keep"), _SWITCH_TARGET_INVALID);
        CHECK_INT(switch_target_from_string("VFIO"), _SWITCH_TARGET_INVALID);
        CHECK_INT(switch_target_from_string(""), _SWITCH_TARGET_INVALID);
        CHECK_INT(switch_target_from_string(NULL), _SWITCH_TARGET_INVALID);
        CHECK(switch_target_info(_SWITCH_TARGET_MAX) == NULL);
        CHECK_STR(switch_target_choices(buf, false), "vfio or host");
        CHECK_STR(switch_target_choices(buf, true), "vfio, host or keep");
}

static void test_default(void) {
        SwitchTarget t = _SWITCH_TARGET_INVALID;

        CHECK_INT(default_mode_from_string("keep"), DEFAULT_MODE_KEEP);
        CHECK_INT(default_mode_from_string("vfio"), DEFAULT_MODE_VFIO);
        CHECK_INT(default_mode_from_string("host"), DEFAULT_MODE_HOST);
        CHECK_INT(default_mode_from_string("mixed"), _DEFAULT_MODE_INVALID);
        CHECK_INT(default_mode_from_string(NULL), _DEFAULT_MODE_INVALID);
        for (DefaultMode m = 0; m < _DEFAULT_MODE_MAX; m++)
                CHECK_INT(default_mode_from_string(default_mode_to_string(m)), m);
        CHECK(default_mode_to_string(_DEFAULT_MODE_MAX) == NULL);
        CHECK(!default_mode_target(DEFAULT_MODE_KEEP, &t));
        CHECK_INT(t, _SWITCH_TARGET_INVALID);
        CHECK(default_mode_target(DEFAULT_MODE_VFIO, &t));
        CHECK_INT(t, SWITCH_TARGET_VFIO);
        CHECK(default_mode_target(DEFAULT_MODE_HOST, &t));
        CHECK_INT(t, SWITCH_TARGET_HOST);
        CHECK(!default_mode_target(_DEFAULT_MODE_INVALID, &t));
}

int main(void) {
        test_state();
        test_target();
        test_default();
        TEST_MAIN_END();
}
