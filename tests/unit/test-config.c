/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "config.h"
#include "testlib.h"

static Config *parse_ok(const char *text) {
        Config *c = NULL;
        char *err = NULL;
        int r = config_parse(text, strlen(text), "test.conf", &c, &err);

        if (r < 0) {
                fprintf(stderr, "rejected:\n%s\n-> %s\n", text, err);
                test_failures++;
        }
        g_free(err);
        return c;
}

/* Rejected, with a message that names what is wrong. */
static void parse_bad(const char *text, const char *must_name) {
        Config *c = NULL;
        char *err = NULL;
        int r = config_parse(text, strlen(text), "test.conf", &c, &err);

        CHECK_INT(r, -EINVAL);
        CHECK(c == NULL);
        CHECK_CONTAINS(err, "test.conf");
        CHECK_CONTAINS(err, must_name);
        g_free(err);
        config_free(c);
}

int main(void) {
        Config *c;
        char *err = NULL;
        PciAddress a;

        c = parse_ok("");
        CHECK(c && c->gpus_auto && c->n_gpus == 0 && c->n_sections == 0);
        config_free(c);

        CHECK_INT(config_load("/nonexistent/gpuswitch.conf", &c, &err), 0);
        CHECK(c && c->gpus_auto);
        config_free(c);

        c = parse_ok("[Daemon]\nGpus=auto\n");
        CHECK(c && c->gpus_auto);
        CHECK_INT(c->step_timeout_sec, DEFAULT_STEP_TIMEOUT_SEC);
        config_free(c);

        c = parse_ok("[Daemon]\nStepTimeoutSec=5\n");
        CHECK_INT(c->step_timeout_sec, 5);
        config_free(c);
        parse_bad("[Daemon]\nStepTimeoutSec=0\n", "StepTimeoutSec");
        parse_bad("[Daemon]\nStepTimeoutSec=-1\n", "StepTimeoutSec");
        parse_bad("[Daemon]\nStepTimeoutSec=5s\n", "StepTimeoutSec");
        parse_bad("[Daemon]\nStepTimeoutSec=99999\n", "StepTimeoutSec");

        c = parse_ok("# comment\n[Daemon]\nGpus=0000:0a:00;0b:00\n");
        CHECK(c && !c->gpus_auto);
        CHECK_INT(c->n_gpus, 2);
        CHECK_INT(c->gpus[0].bus, 0x0a);
        CHECK_INT(c->gpus[1].bus, 0x0b);
        config_free(c);

        c = parse_ok("[Daemon]\nGpus=0000:0a:00\n\n[Gpu 0000:0a:00]\nDefaultMode=vfio\nHostDriver=nvidia\n"
                     "AllowBootVga=yes\n\n[Gpu 0b:00]\nDefaultMode=host\n");
        CHECK_INT(c->n_sections, 2);
        CHECK_INT(pci_address_parse("0000:0a:00", &a), 0);
        CHECK(config_find_gpu(c, &a) != NULL);
        CHECK_INT(config_find_gpu(c, &a)->default_mode, DEFAULT_MODE_VFIO);
        CHECK_STR(config_find_gpu(c, &a)->host_driver, "nvidia");
        CHECK(config_find_gpu(c, &a)->allow_boot_vga);
        CHECK_INT(pci_address_parse("0000:0b:00", &a), 0);
        CHECK_INT(config_find_gpu(c, &a)->default_mode, DEFAULT_MODE_HOST);
        CHECK(!config_find_gpu(c, &a)->allow_boot_vga);
        CHECK(config_find_gpu(c, &a)->host_driver == NULL);
        CHECK_INT(pci_address_parse("0000:0c:00", &a), 0);
        CHECK(config_find_gpu(c, &a) == NULL);
        config_free(c);

        c = parse_ok("[Gpu 0000:0a:00]\nDefaultMode=keep\n");
        CHECK_INT(c->sections[0].default_mode, DEFAULT_MODE_KEEP);
        CHECK(c->sections[0].stop_services == NULL);
        config_free(c);

        c = parse_ok("[Gpu 0000:0a:00]\nStopServices=nvidia-persistenced.service; ollama.service\n");
        CHECK_STR(c->sections[0].stop_services[0], "nvidia-persistenced.service");
        CHECK_STR(c->sections[0].stop_services[1], "ollama.service");
        CHECK(c->sections[0].stop_services[2] == NULL);
        config_free(c);
        parse_bad("[Gpu 0000:0a:00]\nStopServices=sshd\n", "sshd");
        parse_bad("[Gpu 0000:0a:00]\nStopServices=../x.service\n", "../x.service");

        parse_bad("[Demon]\nGpus=auto\n", "[Demon]");
        parse_bad("[Daemon]\nGpuz=auto\n", "Gpuz");
        parse_bad("[Gpu 0000:0a:00]\nDefualtMode=vfio\n", "DefualtMode");
        parse_bad("[Gpu 0000:0a:00]\nDefaultMode=passthrough\n", "passthrough");
        parse_bad("[Gpu 0000:0a:00]\nDefaultMode=mixed\n", "DefaultMode");
        parse_bad("[Daemon]\nGpus=0000:0a:00;zz:00\n", "zz:00");
        parse_bad("[Daemon]\nGpus=0000:0a:00.1\n", "0000:0a:00.1");
        parse_bad("[Daemon]\nGpus=0a:00;0000:0a:00\n", "twice");
        parse_bad("[Daemon]\nGpus=\n", "Gpus");
        parse_bad("[Gpu ../../sys]\n", "../../sys");
        parse_bad("[Gpu 0000:0a:00.2]\n", "0000:0a:00.2");
        parse_bad("[Gpu 0000:0a:00]\n[Gpu 0a:00]\n", "second section");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=../vfio-pci\n", "HostDriver");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=a/b\n", "HostDriver");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=..\n", "HostDriver='..'");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=.\n", "HostDriver='.'");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=.hidden\n", "HostDriver='.hidden'");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=nvidia drm\n", "HostDriver='nvidia drm'");
        parse_bad("[Gpu 0000:0a:00]\nHostDriver=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                  "HostDriver");
        c = parse_ok("[Gpu 0000:0a:00]\nHostDriver=snd_hda_intel\n[Gpu 0000:0b:00]\nHostDriver=vfio-pci.2:x\n");
        CHECK_STR(c->sections[0].host_driver, "snd_hda_intel");
        config_free(c);
        parse_bad("[Gpu 0000:0a:00]\nStopServices=.service\n", "StopServices: '.service'");
        parse_bad("[Gpu 0000:0a:00]\nStopServices=a.service;.hidden.service\n", "'.hidden.service'");
        parse_bad("[Gpu 0000:0a:00]\nAllowBootVga=maybe\n", "AllowBootVga");
        /* gpuswitchctl doctor reports these messages as they are (test-doctor) */
        parse_bad("[Gpu 0000:0a:00]\nAllowBootVga=on\n",
                  "test.conf: [Gpu 0000:0a:00]: AllowBootVga='on' is not a boolean (yes or no)");
        c = parse_ok("[Gpu 0a:00]\nAllowBootVga=TRUE\n");
        CHECK_INT(pci_address_parse("0000:0a:00", &a), 0);
        CHECK(c && config_find_gpu(c, &a) && config_find_gpu(c, &a)->allow_boot_vga);
        CHECK_STR(c->sections[0].address, "0000:0a:00");
        config_free(c);
        /* DesktopAccess=: yes unless said no */
        c = parse_ok("[Gpu 0000:0a:00]\nDefaultMode=host\n[Gpu 0000:0b:00]\nDesktopAccess=no\n"
                     "[Gpu 0000:0c:00]\nDesktopAccess=yes\n");
        CHECK(c && c->sections[0].desktop_access);
        CHECK(c && !c->sections[1].desktop_access);
        CHECK(c && c->sections[2].desktop_access);
        config_free(c);
        c = parse_ok("[Gpu 0000:0a:00]\nDesktopAccess= false \n");
        CHECK(c && !c->sections[0].desktop_access);
        config_free(c);
        parse_bad("[Gpu 0000:0a:00]\nDesktopAccess=never\n",
                  "test.conf: [Gpu 0000:0a:00]: DesktopAccess='never' is not a boolean (yes or no)");
        parse_bad("[Gpu 0000:0a:00]\nDesktopAccess=\n", "DesktopAccess=''");
        parse_bad("[Gpu 0000:0a:00]\nDesktopAcess=no\n", "unknown key 'DesktopAcess'");
        parse_bad("this is not an ini file\n", "test.conf");
        /* a message quoting bytes that are not UTF-8 is still UTF-8 (it may go out on the bus) */
        for (const char *const *t = (const char *const[]) { "[Gpu 0000:0a:00]\nDefaultMode=\xff\n",
                                                            "[Gpu 0000:0a:00]\nK\xe9y=1\n", "[Gpu \xff]\n", NULL };
             *t; t++) {
                CHECK_INT(config_parse(*t, strlen(*t), "test.conf", &c, &err), -EINVAL);
                CHECK(err && g_utf8_validate(err, -1, NULL));
                g_free(err);
                err = NULL;
        }
        TEST_MAIN_END();
}
