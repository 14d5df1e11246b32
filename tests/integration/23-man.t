#!/bin/bash
# The man pages (docs/man) against the programs' own --help, as a reader
# sees them (rendered by mandoc): every long and short flag a --help prints is
# in the page, and each option it lists has an entry (.TP) of its own; for
# imgproc, every command and task subcommand has its heading ("imgproc task
# create ...") and that command's own options (those above "Options for every
# command") are named under it; a default that --help states as one word,
# "(default 64M)", is in that option's entry.  mandoc's and groff's linters
# say nothing about any page.  No server starts.
PORT=47123
PROG=1061000023
. "$(dirname "$0")/../lib.sh"

MAN="$TOP/docs/man"
WEB="$TOP/$BUILD/imgproc-web"
for b in "$IMGPROCD" "$IMGPROC" "$WEB"; do
    [ -x "$b" ] || bail "$b is not built (make all)"
done
command -v mandoc >/dev/null || bail "mandoc is not installed (apt-get install mandoc)"
command -v groff >/dev/null || bail "groff is not installed (apt-get install groff-base)"

# render PAGE: the page as plain text, one long line per paragraph line
# (no overstrike; roff's \- is a plain '-' in -T ascii).  Headings (.SS) are
# indented 3, tags (.TP) 7, their text 14.
render() {
    mandoc -T ascii -O width=250 "$1" | sed 's/.\x08//g'
}

# flags: the long flags (--name) and short ones (" -x,") in a help text, one a line.
flags() {
    grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]| -[a-zA-Z],' | sed -E 's/^ //; s/,$//' | sort -u
}

# entry_flags: the flags that head an option's entry in a help text
# ("  -o, --output OUT   help..."), not those its prose mentions.
entry_flags() {
    grep -E '^ {1,9}-' | awk '{ print $1; if ($1 ~ /,$/) print $2 }' | sed 's/,$//' | sort -u
}

# missing TEXT-FILE < FLAGS: the flags not found in the text as words of their own.
missing() {
    local f out=""
    while read -r f; do
        [ -n "$f" ] || continue
        grep -qE -- "(^|[^A-Za-z0-9_-])$f([^A-Za-z0-9_-]|\$)" "$1" || out="$out $f"
    done
    echo "${out# }"
}

# span TEXT-FILE WORDS...: the subsections whose heading is "imgproc WORDS..."
# (more words may follow): from the heading to the next heading or section.
span() {
    local file=$1 re
    shift
    re="^   imgproc"
    for w in "$@"; do re="$re +$w"; done
    awk -v re="$re( |\$)" '
        /^   [^ ]/ || /^[^ ]/ { on = ($0 ~ re) }
        on' "$file"
}

# paragraph TEXT-FILE FLAG: the first .TP paragraph whose tag starts with FLAG
# (or "-x, FLAG"), with the tags given together with it (.TQ), and its text.
# A tag is indented 7 and starts a paragraph: the line before it is blank, a
# heading, or the tag it goes with (so a line of running text that happens to
# start with the flag is not taken for one).
paragraph() {
    awk -v flag="$2" '
        function ind(line) { match(line, /^ */); return RLENGTH }
        function tagged(line) { return line ~ ("^       (-[a-zA-Z], )?" flag "([ ,]|$)") }
        function starts(p1, p2) {
            return p1 ~ /^ *$/ || ind(p1) < 7 || (ind(p1) == 7 && p1 ~ /^ *-/ && (p2 ~ /^ *$/ || ind(p2) < 7))
        }
        done { next }
        !on && tagged($0) && starts(p1, p2) { on = 1; body = 0; print; next }
        on && $0 != "" && ind($0) <= 7 { if (body) { done = 1; next } print; next }
        on { body = 1; print }
        { p2 = p1; p1 = $0 }' "$1"
}

# defaults HELP-FILE: "FLAG TOKEN" for each option whose help states
# "(default TOKEN)", TOKEN one word.  An entry starts with "-" indented less
# than 10 columns; its help goes on in lines indented more.
defaults() {
    awk '
        function flush() {
            if (entry != "" && match(entry, /\(default [^); ]+\)/)) {
                tok = substr(entry, RSTART + 9, RLENGTH - 10)
                if (match(entry, /--[a-z][a-z0-9-]*[a-z0-9]/) || match(entry, /-[a-zA-Z]/))
                    print substr(entry, RSTART, RLENGTH), tok
            }
            entry = ""
        }
        { match($0, /^ */); ind = RLENGTH }
        ind >= 1 && ind <= 9 && /^ *-/ { flush(); entry = $0; next }
        ind >= 10 && $0 !~ /^ *$/ && entry != "" { sub(/^ +/, ""); entry = entry " " $0; next }
        { flush() }
        END { flush() }' "$1"
}

# untagged TEXT-FILE < FLAGS: the flags that head no paragraph of their own.
untagged() {
    local f out=""
    while read -r f; do
        [ -n "$f" ] || continue
        [ -n "$(paragraph "$1" "$f")" ] || out="$out $f"
    done
    echo "${out# }"
}

# check_defaults NAME HELP-FILE TEXT-FILE: one check, every stated default in
# its flag's paragraph.
check_defaults() {
    local bad="" flag tok
    while read -r flag tok; do
        paragraph "$3" "$flag" >"$TMP/para"
        grep -qF -- "$tok" "$TMP/para" || bad="$bad $flag($tok)"
    done < <(defaults "$2")
    is "${bad# }" "" "$1: each default --help states is in its flag's paragraph"
}

# lint NAME PAGE: two checks, mandoc's and groff's warnings.
lint() {
    local out
    out=$(mandoc -T lint -W warning "$2" 2>&1)
    is "$out" "" "$1: mandoc -T lint -W warning says nothing"
    out=$(groff -ww -man -Tutf8 -z "$2" 2>&1)
    is "$out" "" "$1: groff -ww -man says nothing"
}

# ---- imgprocd(8) and imgproc-web(8): one help text, one page
for prog in imgprocd imgproc-web; do
    page="$MAN/$prog.8"
    [ -f "$page" ] || { ok 1 "$prog: $page exists"; continue; }
    "$TOP/$BUILD/$prog" --help >"$TMP/$prog.help" 2>&1
    render "$page" >"$TMP/$prog.txt"
    n=$(flags <"$TMP/$prog.help" | wc -l)
    [ "$n" -ge 5 ] || bail "$prog --help printed $n flags: $(head -3 "$TMP/$prog.help")"
    is "$(flags <"$TMP/$prog.help" | missing "$TMP/$prog.txt")" "" \
        "$prog: each of the $n flags of --help is in $prog.8"
    is "$(entry_flags <"$TMP/$prog.help" | untagged "$TMP/$prog.txt")" "" \
        "$prog: each option --help lists has an entry of its own in $prog.8"
    check_defaults "$prog" "$TMP/$prog.help" "$TMP/$prog.txt"
    lint "$prog.8" "$page"
done

# ---- imgproc(1): the main help, every command's, every task subcommand's
page="$MAN/imgproc.1"
[ -f "$page" ] || bail "$page is missing"
render "$page" >"$TMP/imgproc.txt"
"$IMGPROC" --help >"$TMP/main.help" 2>&1
is "$(flags <"$TMP/main.help" | missing "$TMP/imgproc.txt")" "" \
    "imgproc: each flag of imgproc --help is in imgproc.1"
is "$(entry_flags <"$TMP/main.help" | untagged "$TMP/imgproc.txt")" "" \
    "imgproc: each option imgproc --help lists has an entry of its own in imgproc.1"
check_defaults "imgproc" "$TMP/main.help" "$TMP/imgproc.txt"

cmds=$(awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' "$TMP/main.help")
[ "$(echo "$cmds" | wc -w)" -ge 10 ] || bail "no command list in imgproc --help"
subs=$("$IMGPROC" task --help 2>&1 | sed -nE 's/^  imgproc task ([a-z]+).*/\1/p')
[ "$(echo "$subs" | wc -w)" -ge 8 ] || bail "no subcommand list in imgproc task --help"

# check_command WORDS...: "imgproc WORDS... --help"'s own options (the entries
# above "Options for every command") under its heading; every other flag it
# prints anywhere in the page.
check_command() {
    local name="$*" file="$TMP/cmd.help" local_flags global_flags m why=""
    "$IMGPROC" "$@" --help >"$file" 2>&1
    span "$TMP/imgproc.txt" "$@" >"$TMP/span.txt"
    if [ ! -s "$TMP/span.txt" ]; then
        why="no heading 'imgproc $name' under COMMANDS"
    else
        local_flags=$(sed '/^Options for every command/,$d' "$file" | entry_flags)
        global_flags=$(flags <"$file")
        m=$(echo "$local_flags" | missing "$TMP/span.txt")
        [ -n "$m" ] && why="not under its heading: $m"
        m=$(echo "$global_flags" | missing "$TMP/imgproc.txt")
        [ -n "$m" ] && why="$why; not in the page: $m"
    fi
    is "$why" "" "imgproc $name: a heading, and each flag of its --help"
    sed '/^Options for every command/,$d' "$file" >"$TMP/cmd.local"
    # Its own defaults, in its own paragraphs (if it states any).
    if [ -s "$TMP/span.txt" ] && [ -n "$(defaults "$TMP/cmd.local")" ]; then
        check_defaults "imgproc $name" "$TMP/cmd.local" "$TMP/span.txt"
    fi
}

for c in $cmds; do
    check_command "$c"
done
for s in $subs; do
    check_command task "$s"
done
lint "imgproc.1" "$page"

done_testing
