#!/bin/bash
# The ESM build's imports from the shell, against a gnome-shell source
# tree of the version to support (GNOME 45 and later): each module it
# imports is there (resource:///org/gnome/shell/X.js is js/X.js), and
# exports each name it takes.  For adding a version to build.sh's list;
# this machine's gnome-shell (43) cannot load the ESM build.
#
#   check-shell-imports.sh GNOME_SHELL_SOURCE_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shell=${1:?usage: check-shell-imports.sh GNOME_SHELL_SOURCE_DIR}
[ -d "$shell/js" ] || { echo "check-shell-imports: $shell has no js/ folder" >&2; exit 2; }
bad=0
while IFS= read -r line; do
        module=$(sed -E "s|.*from 'resource:///org/gnome/shell/([^']+)'.*|\1|" <<<"$line")
        file=$shell/js/$module
        if [ ! -f "$file" ]; then
                echo "MISSING: $module"; bad=1; continue
        fi
        names=$(sed -nE 's/^import \{([^}]*)\}.*/\1/p' <<<"$line" | tr ',' '\n' | sed -E 's/ as .*//; s/^ *//; s/ *$//')
        # export const|let|var|class|function NAME, and export const {A, B} = ...
        exported=$( { grep -oE '^export (const|let|var|class|function\*?) +[A-Za-z_$][A-Za-z0-9_$]*' "$file" | awk '{print $NF}'
                      sed -n '/^export const {/,/}/p' "$file" | tr -c 'A-Za-z0-9_$\n' '\n' | grep -vE '^(export|const|)$'; } | sort -u)
        for n in $names; do
                if grep -qx -- "$n" <<<"$exported"; then
                        echo "ok: $module exports $n"
                else
                        echo "MISSING: $module does not export $n"; bad=1
                fi
        done
done < <(grep -h "^import .* from 'resource:///org/gnome/shell/" "$here"/src/*.js | sed 's| *// @esm-only$||' | sort -u)
exit $bad
