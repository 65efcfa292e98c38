#!/bin/bash
# Both builds of the GNOME Shell extension pass gnome-shell's own checks:
# metadata.json parses with the keys gnome-extensions needs and the GNOME
# versions of its build, `gnome-extensions pack` makes the zip with every
# module in it; the ESM build uses no imports.*, the legacy build no
# import/export statement; po/*.pot has every string of the sources.
#
#   test-extension-pack.sh BUILT_DIR SOURCE_DIR
#
# Exit 77 (skipped) without gnome-extensions or jq.
set -uo pipefail
built=${1:?usage: test-extension-pack.sh BUILT_DIR SOURCE_DIR} src=${2:?}
for t in gnome-extensions jq; do command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }; done
UUID=gpuswitch@gpuswitch.org
passed=0 failed=0
check() {
        if "${@:2}"; then passed=$((passed + 1)); echo "ok: $1"; else failed=$((failed + 1)); echo "FAILED: $1"; fi
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

declare -A versions=([esm]='["45","46","47","48","49"]' [legacy]='["43","44"]')
for flavour in esm legacy; do
        d=$built/$flavour
        check "$flavour: metadata.json parses, uuid $UUID" \
                test "$(jq -r .uuid "$d/metadata.json")" = $UUID
        check "$flavour: name, description, gettext-domain set" \
                jq -e '(.name | length > 0) and (.description | length > 0) and (."gettext-domain" | length > 0)' "$d/metadata.json"
        check "$flavour: shell-version ${versions[$flavour]}" \
                test "$(jq -c '."shell-version"' "$d/metadata.json")" = "${versions[$flavour]}"
        extra=()
        # (gnome-extensions 43 crashes on an absolute --extra-source)
        for f in "$d"/*.js; do [ "${f##*/}" = extension.js ] || extra+=(--extra-source="${f##*/}"); done
        [ -d "$d/locale" ] && extra+=(--extra-source=locale)
        mkdir -p "$out/$flavour"
        check "$flavour: gnome-extensions pack" \
                sh -c 'cd "$1" && shift && gnome-extensions pack "$@"' sh "$d" --force -o "$out/$flavour" "${extra[@]}"
        zip=$out/$flavour/$UUID.shell-extension.zip
        check "$flavour: the zip has metadata.json, extension.js, client.js, menu.js" \
                python3 -c 'import sys, zipfile; n = set(zipfile.ZipFile(sys.argv[1]).namelist()); sys.exit(not {"metadata.json", "extension.js", "client.js", "menu.js"} <= n)' "$zip"
done
# Each module parses in gjs (the shell's own modules are not there: only
# their ImportError is expected).
if command -v gjs >/dev/null; then
        for flavour in esm legacy; do
                for f in "$built/$flavour"/*.js; do
                        mode=(); [ $flavour = esm ] && mode=(-m)
                        check "$flavour: ${f##*/} parses in gjs" \
                                bash -c '! (cd "$(dirname "$1")" && timeout 20 gjs "${@:2}" "$(basename "$1")" 2>&1) | grep -E "SyntaxError|ReferenceError|TypeError|Failed to parse|No such file"' \
                                bash "$f" "${mode[@]}"
                done
        done
fi
check "esm: no imports.* (GNOME 45 refuses them)" sh -c "! grep -n 'imports\\.' '$built'/esm/*.js"
check "esm: the entry point is a default export" grep -q '^export default class' "$built/esm/extension.js"
check "legacy: no import or export statement" sh -c "! grep -nE '^(import|export) ' '$built'/legacy/*.js"
check "legacy: the entry point is init()" grep -q '^function init()' "$built/legacy/extension.js"

# Every _('...') of the sources is in the template.
pot=$src/po/gnome-shell-extension-gpuswitch.pot
if command -v xgettext >/dev/null; then
        xgettext --from-code=UTF-8 --language=JavaScript --keyword=_ --keyword=ngettext:1,2 -o "$out/now.pot" "$src"/src/*.js
        msgids() { grep -A1 '^msgid' "$1" | grep -v '^--$' | paste -sd' ' | grep -o 'msgid "[^"]*"' | sort -u; }
        check "po/*.pot has every string of the sources (make gnome-shell-extension-pot)" \
                diff <(msgids "$out/now.pot") <(msgids "$pot")
fi
echo "test-extension-pack: $passed passed, $failed failed"
[ $failed = 0 ]
