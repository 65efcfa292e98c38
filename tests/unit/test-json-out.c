/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* json-out: the text is what json-glib's JsonBuilder and JsonGenerator made
 * when gpuswitchctl called them itself (the expected strings below are their
 * output), json-glib is opened only when a JsonOut is made, and a NULL
 * JsonOut does nothing.  Not linked with json-glib, as gpuswitchctl. */
#include <dlfcn.h>

#include "json-out.h"
#include "testlib.h"

#define JSON_GLIB_SONAME "libjson-glib-1.0.so.0"

static bool json_glib_loaded(void) {
        void *dl = dlopen(JSON_GLIB_SONAME, RTLD_NOW | RTLD_NOLOAD);

        if (!dl)
                return false;
        dlclose(dl);
        return true;
}

/* Every call on NULL: nothing printed, nothing opened. */
static void test_null(void) {
        char buf[64] = "";
        FILE *f = fmemopen(buf, sizeof buf, "w");

        json_out_begin_object(NULL);
        json_out_member(NULL, "a");
        json_out_string(NULL, "b");
        json_out_string(NULL, NULL);
        json_out_int(NULL, 1);
        json_out_bool(NULL, true);
        json_out_null(NULL);
        json_out_begin_array(NULL);
        json_out_end_array(NULL);
        json_out_end_object(NULL);
        CHECK(!json_out_to_string(NULL, true));
        CHECK_INT(json_out_print(NULL, f, true), 0);
        json_out_free(NULL);
        {
                g_autoptr(JsonOut) none = NULL;
        }
        fclose(f);
        CHECK_STR(buf, "");
        CHECK(!json_glib_loaded());
}

static JsonOut *sample(void) {
        JsonOut *o = json_out_new();

        json_out_begin_object(o);
        json_out_member(o, "text");
        json_out_string(o, "say \"hi\" C:\\gpu\nnext\tline ü € 😀 </x> \x01");
        json_out_member(o, "none");
        json_out_null(o);
        json_out_member(o, "missing");
        json_out_string(o, NULL);
        json_out_member(o, "empty");
        json_out_string(o, "");
        json_out_member(o, "count");
        json_out_int(o, UINT32_MAX);
        json_out_member(o, "negative");
        json_out_int(o, -12);
        json_out_member(o, "yes");
        json_out_bool(o, true);
        json_out_member(o, "no");
        json_out_bool(o, false);
        json_out_member(o, "list");
        json_out_begin_array(o);
        json_out_int(o, 1);
        json_out_string(o, "two");
        json_out_null(o);
        json_out_begin_object(o);
        json_out_member(o, "inner");
        json_out_begin_array(o);
        json_out_end_array(o);
        json_out_member(o, "ok");
        json_out_bool(o, false);
        json_out_end_object(o);
        json_out_end_array(o);
        json_out_member(o, "object");
        json_out_begin_object(o);
        json_out_end_object(o);
        json_out_end_object(o);
        return o;
}

static const char compact[] =
        "{\"text\":\"say \\\"hi\\\" C:\\\\gpu\\nnext\\tline ü € 😀 </x> \\u0001\",\"none\":null,\"missing\":null,"
        "\"empty\":\"\",\"count\":4294967295,\"negative\":-12,\"yes\":true,\"no\":false,"
        "\"list\":[1,\"two\",null,{\"inner\":[],\"ok\":false}],\"object\":{}}";

static const char pretty[] =
        "{\n"
        "  \"text\" : \"say \\\"hi\\\" C:\\\\gpu\\nnext\\tline ü € 😀 </x> \\u0001\",\n"
        "  \"none\" : null,\n"
        "  \"missing\" : null,\n"
        "  \"empty\" : \"\",\n"
        "  \"count\" : 4294967295,\n"
        "  \"negative\" : -12,\n"
        "  \"yes\" : true,\n"
        "  \"no\" : false,\n"
        "  \"list\" : [\n"
        "    1,\n"
        "    \"two\",\n"
        "    null,\n"
        "    {\n"
        "      \"inner\" : [],\n"
        "      \"ok\" : false\n"
        "    }\n"
        "  ],\n"
        "  \"object\" : {  }\n"
        "}";

static void test_output(void) {
        g_autoptr(JsonOut) o = NULL;
        g_autofree char *s = NULL, *p = NULL;
        char buf[1024] = "";
        FILE *f = fmemopen(buf, sizeof buf, "w");
        const char *why = "unset";

        CHECK_INT(json_out_load(&why), 0);
        CHECK_STR(why, "unset");
        CHECK(json_glib_loaded());

        o = sample();
        CHECK(o);
        s = json_out_to_string(o, false);
        CHECK_STR(s, compact);
        p = json_out_to_string(o, true);
        CHECK_STR(p, pretty);
        CHECK_INT(json_out_print(o, f, true), 0);
        fclose(f);
        CHECK(g_str_has_suffix(buf, "}\n") && strncmp(buf, pretty, sizeof pretty - 1) == 0 &&
              strlen(buf) == sizeof pretty);
}

/* A document still open has no text. */
static void test_incomplete(void) {
        g_autoptr(JsonOut) o = json_out_new();
        g_autofree char *s = NULL;

        json_out_begin_object(o);
        json_out_member(o, "a");
        json_out_begin_array(o);
        CHECK(!json_out_to_string(o, false));
        CHECK_INT(json_out_print(o, stdout, true), -EINVAL);
        json_out_end_array(o);
        json_out_end_object(o);
        s = json_out_to_string(o, false);
        CHECK_STR(s, "{\"a\":[]}");
}

int main(void) {
        test_null();
        test_output();
        test_incomplete();
        TEST_MAIN_END();
}
