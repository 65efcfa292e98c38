#!/bin/bash
# Makes one build of the extension from src/ (ES modules, GNOME 45 and
# later):
#   build.sh esm|legacy VERSION OUT_DIR
# "legacy" is GNOME 43 and 44's: imports.* instead of import statements,
# "var" for what a module exports, init() for the entry point.  The .mo
# files of po/ go to OUT_DIR/locale when msgfmt is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
flavour=${1:?usage: build.sh esm|legacy VERSION OUT_DIR} version=${2:?} out=${3:?}
UUID=gpuswitch@gpuswitch.org
DOMAIN=gnome-shell-extension-gpuswitch
case $flavour in
        esm) versions='"45", "46", "47", "48", "49"' ;;
        legacy) versions='"43", "44"' ;;
        *) echo "build.sh: esm or legacy, not $flavour" >&2; exit 2 ;;
esac

rm -rf "$out"
mkdir -p "$out"
sed -e "s/@UUID@/$UUID/; s/@GETTEXT_DOMAIN@/$DOMAIN/; s/@SHELL_VERSIONS@/$versions/; s/@VERSION@/$version/" \
        "$here/metadata.json.in" >"$out/metadata.json"
for f in "$here"/src/*.js; do
        if [ "$flavour" = esm ]; then
                sed -e '/^\/\/@legacy/d' -e 's| *// @esm-only$||' "$f" >"$out/${f##*/}"
                continue
        fi
        {
                echo "'use strict';"
                sed -E -e '/@esm-only$/d' -e 's|^//@legacy ?||' \
                        -e "s|^import \\{gettext as _\\} from 'resource:///org/gnome/shell/extensions/extension.js';|const _ = imports.misc.extensionUtils.gettext;|" \
                        -e "s|^import \\{gettext as _, ngettext\\} from 'resource:///org/gnome/shell/extensions/extension.js';|const {gettext: _, ngettext} = imports.misc.extensionUtils;|" \
                        -e "s|^import ([A-Za-z_]+) from 'gi://([A-Za-z]+)';|const \\1 = imports.gi.\\2;|" \
                        -e "s|^import \\* as ([A-Za-z_]+) from 'resource:///org/gnome/shell/([a-z]+)/([A-Za-z_]+)\\.js';|const \\1 = imports.\\2.\\3;|" \
                        -e "s|^import (\\{[^}]*\\}) from 'resource:///org/gnome/shell/([a-z]+)/([A-Za-z_]+)\\.js';|const \\1 = imports.\\2.\\3;|" \
                        -e "s|^import (\\{[^}]*\\}) from '\\./([A-Za-z_]+)\\.js';|const \\1 = imports.misc.extensionUtils.getCurrentExtension().imports.\\2;|" \
                        -e 's/^export (const|let) /var /' \
                        -e 's/^export function /function /' \
                        -e 's/^export class ([A-Za-z_]+)/var \1 = class \1/' \
                        -e 's/^export default class /class /' \
                        "$f"
        } >"$out/${f##*/}"
        if grep -nE '^(import|export) ' "$out/${f##*/}"; then
                echo "build.sh: ${f##*/}: an import or export the legacy build cannot translate" >&2
                exit 1
        fi
done
if command -v msgfmt >/dev/null; then
        for po in "$here"/po/*.po; do
                [ -e "$po" ] || continue
                lang=$(basename "$po" .po)
                mkdir -p "$out/locale/$lang/LC_MESSAGES"
                msgfmt -o "$out/locale/$lang/LC_MESSAGES/$DOMAIN.mo" "$po"
        done
fi
