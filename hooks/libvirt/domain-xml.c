/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "domain-xml.h"

#include <errno.h>
#include <glib.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "util.h"

static void xml_doc_freep(xmlDocPtr *d) { if (*d) xmlFreeDoc(*d); }
static void xpath_context_freep(xmlXPathContextPtr *c) { if (*c) xmlXPathFreeContext(*c); }
static void xpath_object_freep(xmlXPathObjectPtr *o) { if (*o) xmlXPathFreeObject(*o); }
static void xml_freep(xmlChar **s) { if (*s) xmlFree(*s); }

/* libvirt's own grammar: mode absent means subsystem; only the hostdev's
 * <source> address is the host's (the <address type='pci'/> beside it is
 * where the guest sees the device). */
#define PCI_HOSTDEV_SOURCES \
        "/domain/devices/hostdev[@type='pci'][not(@mode) or @mode='subsystem']/source/address"

static int fail(char **error_message, const char *fmt, ...) _printf_(2, 3);
static int fail(char **error_message, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        *error_message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* "0x0a" as libvirt writes numbers, or decimal; up to max. */
static int parse_number(const char *s, unsigned max, unsigned *ret) {
        unsigned long v;
        char *end;

        if (isempty(s) || s[0] == '-' || s[0] == '+' || g_ascii_isspace(s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, g_str_has_prefix(s, "0x") || g_str_has_prefix(s, "0X") ? 16 : 10);
        if (errno != 0 || *end != '\0' || end == s || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* The attribute, or def when it is absent. */
static int address_part(xmlNodePtr node, const char *name, const char *def, unsigned max, unsigned *ret) {
        _cleanup_(xml_freep) xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *) name);

        return parse_number(v ? (const char *) v : def, max, ret);
}

/* libxml2 reports a parse error through the generic error callback, in
 * pieces; the first error's line names what is wrong. */
typedef struct ParseError {
        GString *text;
        bool complete;
} ParseError;

static void collect_error(void *userdata, const char *fmt, ...) _printf_(2, 3);
static void collect_error(void *userdata, const char *fmt, ...) {
        ParseError *e = userdata;
        va_list ap;

        if (e->complete)
                return;
        va_start(ap, fmt);
        g_string_append_vprintf(e->text, fmt, ap);
        va_end(ap);
        e->complete = strchr(e->text->str, '\n') != NULL;
}

int domain_pci_hostdev_slots(const char *xml, size_t len, PciAddress **ret, size_t *ret_n, char **error_message) {
        _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
        _cleanup_(xpath_context_freep) xmlXPathContextPtr ctx = NULL;
        _cleanup_(xpath_object_freep) xmlXPathObjectPtr found = NULL;
        ParseError parse_error = { .text = g_string_new(NULL) };
        g_autofree char *parse_text = NULL;
        char *what;
        g_autoptr(GArray) slots = g_array_new(false, false, sizeof(PciAddress));

        if (len > INT_MAX)
                return fail(error_message, "the domain XML is too large");
        xmlSetGenericErrorFunc(&parse_error, collect_error);
        doc = xmlReadMemory(xml, (int) len, "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
        xmlSetGenericErrorFunc(NULL, NULL);
        parse_text = g_string_free(parse_error.text, false);
        if (!doc) {
                /* the first line, "domain.xml:LINE: parser error : WHAT" */
                unsigned line = 0;

                what = parse_text;
                what[strcspn(what, "\n")] = '\0';
                if (sscanf(what, "domain.xml:%u:", &line) == 1 && strstr(what, "error : "))
                        what = strstr(what, "error : ") + strlen("error : ");
                g_autofree char *shown = g_strescape(g_strstrip(what), NULL);
                return line > 0 ? fail(error_message, "it is not XML: line %u: %s", line, shown)
                                : fail(error_message, "it is not XML: %s", shown);
        }

        ctx = xmlXPathNewContext(doc);
        if (!ctx)
                return -ENOMEM;
        found = xmlXPathEvalExpression((const xmlChar *) PCI_HOSTDEV_SOURCES, ctx);
        if (!found)
                return -ENOMEM;

        for (int i = 0; found->nodesetval && i < found->nodesetval->nodeNr; i++) {
                xmlNodePtr node = found->nodesetval->nodeTab[i];
                unsigned domain, bus, slot;
                PciAddress a;
                bool seen = false;

                if (address_part(node, "domain", "0", 0xffff, &domain) < 0 ||
                    address_part(node, "bus", NULL, 0xff, &bus) < 0 ||
                    address_part(node, "slot", NULL, 0x1f, &slot) < 0) {
                        _cleanup_(xml_freep) xmlChar *d = xmlGetNoNsProp(node, (const xmlChar *) "domain");
                        _cleanup_(xml_freep) xmlChar *b = xmlGetNoNsProp(node, (const xmlChar *) "bus");
                        _cleanup_(xml_freep) xmlChar *s = xmlGetNoNsProp(node, (const xmlChar *) "slot");
                        g_autofree char *raw = g_strdup_printf("domain='%s' bus='%s' slot='%s'", d ? (char *) d : "",
                                                               b ? (char *) b : "", s ? (char *) s : "");
                        g_autofree char *shown = g_strescape(raw, NULL);

                        return fail(error_message, "a PCI hostdev's source address (line %ld) is not one: %s",
                                    xmlGetLineNo(node), shown);
                }
                a = (PciAddress) { .domain = domain, .bus = bus, .slot = slot, .function = -1 };
                for (guint j = 0; j < slots->len; j++)
                        seen = seen || pci_address_same_slot(&g_array_index(slots, PciAddress, j), &a);
                if (!seen)
                        g_array_append_val(slots, a);
        }
        *ret_n = slots->len;
        *ret = (PciAddress *) g_array_free(TAKE_PTR(slots), false);
        return 0;
}
