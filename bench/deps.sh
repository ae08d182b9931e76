#!/usr/bin/env bash
# Dependencies and clean release build time of a minimal echo server on
# hubbub-tokio (default features: no hub, no HTTP, no signal) against the same
# server on tokio-tungstenite 0.30 (default features).
#
#   bash bench/deps.sh
#
# Environment:
#   DEPS_ROUNDS=3            timed rounds (each round builds both apps, the
#                            order alternating from one round to the next)
#   DEPS_BUILD_TIMEOUT=900   seconds allowed for one build (or fetch)
#   DEPS_TIMINGS=auto        `cargo build --release --timings` of each app
#                            after the rounds, printing the slowest units:
#                            auto = only when the ratio is above 1.1,
#                            1 = always, 0 = never
#
# What it does, in a temporary directory removed on exit:
#   1. writes two binary crates, each its own workspace, with the same tokio
#      features: `tt-echo` (tokio-tungstenite's README echo server) and
#      `hubbub-echo` (hubbub-tokio's crate-doc echo server), and for the
#      like-for-like figure `hubbub-echo-nd`, the same with hubbub-tokio's
#      `default-features = false` (no permessage-deflate, which
#      tokio-tungstenite 0.30 does not implement). The hubbub apps start from
#      the main workspace's Cargo.lock (cargo prunes what it does not use);
#      tt-echo is resolved fresh (`cargo generate-lockfile`).
#   2. counts unique crates: `cargo tree -e normal --prefix none` for the host
#      target, unique "name version" lines, the app itself excluded; lists the
#      crates one tree has and the other has not (by name); checks that
#      hubbub-echo's tree has none of the crates the optional features bring
#      in (serde_derive, syn, prometheus-client, mime_guess, dotenvy) — syn
#      is accepted only when tokio-macros (the apps' own `#[tokio::main]`,
#      the same in tt-echo) is all that pulls it.
#   3. fetches each app once (untimed), then times `cargo build --release
#      --frozen` from an empty CARGO_TARGET_DIR, DEPS_ROUNDS rounds, the
#      order reversed every other round; prints every build, the medians and
#      the ratios to tt-echo.
#   4. prints a Markdown table.
#
# Exit status: 0 when both builds succeeded (the verdicts are printed, not
# turned into an exit status), 1 on a failed build or tree.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
rounds="${DEPS_ROUNDS:-3}"
build_timeout="${DEPS_BUILD_TIMEOUT:-900}"
timings="${DEPS_TIMINGS:-auto}"
case "$rounds" in '' | *[!0-9]* | 0) echo "DEPS_ROUNDS must be a positive integer" >&2; exit 2 ;; esac

work="$(mktemp -d "${TMPDIR:-/tmp}/hubbub-deps.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

started="$(date -u '+%Y-%m-%d %H:%M UTC')"
t_start="$(date +%s)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== hubbub-tokio vs tokio-tungstenite: dependencies and clean release build ($started)"
echo "   $(rustc --version), $(cargo --version), $(nproc) CPUs, load average $load_before"
echo "   work dir $work"
# hubbub is built from the working tree: say which.
rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$repo" status --porcelain -- core ws runtime-tokio Cargo.lock 2>/dev/null | wc -l || true)"
echo "   hubbub at $rev ($dirty changed file(s) in core/, ws/, runtime-tokio/, Cargo.lock)"

# Same tokio features in both apps: what `#[tokio::main(flavor = "current_thread")]`
# and a TcpListener need.
tokio_dep='tokio = { version = "1", features = ["rt", "net", "macros"] }'

# ---------------------------------------------------------------- the apps
mkdir -p "$work/tt-echo/src" "$work/hubbub-echo/src" "$work/hubbub-echo-nd/src"

cat >"$work/tt-echo/Cargo.toml" <<EOF
[package]
name = "tt-echo"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tokio-tungstenite = "0.30"
$tokio_dep
futures-util = { version = "0.3", default-features = false, features = ["sink"] }

# Its own workspace, not a member of an enclosing one.
[workspace]
EOF

# tokio-tungstenite's README / examples/echo-server.rs, without env_logger.
cat >"$work/tt-echo/src/main.rs" <<'EOF'
use futures_util::{future, StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:9001").await?;
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(accept_connection(stream));
    }
    Ok(())
}

async fn accept_connection(stream: TcpStream) {
    let Ok(ws_stream) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws_stream.split();
    // Forward text and binary messages back to the client.
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
EOF

cat >"$work/hubbub-echo/Cargo.toml" <<EOF
[package]
name = "hubbub-echo"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
hubbub-tokio = { path = "$repo/runtime-tokio" }
$tokio_dep

# Its own workspace, not a member of hubbub's.
[workspace]
EOF

# hubbub-tokio's crate-doc echo server (runtime-tokio/src/lib.rs), with the
# handler taking the upgrade request as well (`Server::serve` since 3f3c03b).
cat >"$work/hubbub-echo/src/main.rs" <<'EOF'
use hubbub_tokio::{Config, Server};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
    Server::new(Config::default())
        .serve(listener, |mut ws, _request| async move {
            // `feed` queues; the replies to one read leave in one write.
            while let Some(message) = ws.recv().await {
                if let Ok(message) = message {
                    let _ = ws.feed(message).await;
                }
            }
        })
        .await;
    Ok(())
}
EOF

# The same app without hubbub-tokio's default features (no permessage-deflate,
# which tokio-tungstenite 0.30 does not implement): the like-for-like figure.
sed -e 's/^name = "hubbub-echo"/name = "hubbub-echo-nd"/' \
    -e 's|^hubbub-tokio = { path = "\([^"]*\)" }|hubbub-tokio = { path = "\1", default-features = false }|' \
    "$work/hubbub-echo/Cargo.toml" >"$work/hubbub-echo-nd/Cargo.toml"
grep -q 'default-features = false' "$work/hubbub-echo-nd/Cargo.toml"
cp "$work/hubbub-echo/src/main.rs" "$work/hubbub-echo-nd/src/main.rs"

# The workspace's versions for the hubbub apps; cargo adds the app and prunes the rest.
cp "$repo/Cargo.lock" "$work/hubbub-echo/Cargo.lock"
cp "$repo/Cargo.lock" "$work/hubbub-echo-nd/Cargo.lock"

apps=(hubbub-echo tt-echo hubbub-echo-nd)

echo
echo "== resolving and fetching (untimed)"
(cd "$work/tt-echo" && timeout "$build_timeout" cargo generate-lockfile --quiet)
for app in "${apps[@]}"; do
    (cd "$work/$app" && timeout "$build_timeout" cargo fetch --quiet)
done
for app in "${apps[@]}"; do
    printf '   %-14s tokio %s, futures-util %s\n' "$app" \
        "$(cd "$work/$app" && cargo tree -e normal --prefix none -i tokio --depth 0 --frozen | awk '{print $2}')" \
        "$(cd "$work/$app" && cargo tree -e normal --prefix none -i futures-util --depth 0 --frozen | awk '{print $2}')"
done

# -------------------------------------------------------------- the trees
tree_cmd=(cargo tree -e normal --prefix none --frozen)
echo
echo "== unique crates: ${tree_cmd[*]} (host target), 'name version', app excluded"

# unique_crates APP [extra cargo-tree args]: sorted "name version" lines.
unique_crates() {
    local app="$1"; shift
    (cd "$work/$app" && "${tree_cmd[@]}" "$@") |
        awk -v app="$app" 'NF >= 2 && $1 != app { print $1, $2 }' | sort -u
}

declare -A count names
for app in "${apps[@]}"; do
    unique_crates "$app" >"$work/$app.crates"
    count[$app]="$(wc -l <"$work/$app.crates")"
    awk '{print $1}' "$work/$app.crates" | sort -u >"$work/$app.names"
    # For information: every target's dependencies (windows-sys & co.).
    all_targets="$(unique_crates "$app" --target all | wc -l)"
    printf '   %-14s %3d crates (with --target all: %d)\n' "$app" "${count[$app]}" "$all_targets"
done

# with_versions APP NAMES-FILE: "name version" of APP for each name listed.
with_versions() {
    join -o '2.1,2.2' "$2" "$work/$1.crates" | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//'
}
comm -23 "$work/hubbub-echo.names" "$work/tt-echo.names" >"$work/only-hubbub"
comm -13 "$work/hubbub-echo.names" "$work/tt-echo.names" >"$work/only-tt"
comm -12 "$work/hubbub-echo.names" "$work/tt-echo.names" >"$work/both"
only_hubbub="$(with_versions hubbub-echo "$work/only-hubbub")"
only_tt="$(with_versions tt-echo "$work/only-tt")"
echo "   only in hubbub-echo ($(wc -l <"$work/only-hubbub")): ${only_hubbub:-none}"
echo "   only in tt-echo     ($(wc -l <"$work/only-tt")): ${only_tt:-none}"
echo "   in both             ($(wc -l <"$work/both")): $(tr '\n' ' ' <"$work/both")"
# Same name, other version: counted twice in neither list, but worth seeing.
version_diffs="$(join "$work/hubbub-echo.crates" "$work/tt-echo.crates" |
    awk '$2 != $3 {printf "%s %s/%s, ", $1, $2, $3}' | sed 's/, $//')"
echo "   same crate, other version (hubbub-echo/tt-echo): ${version_diffs:-none}"

if [ "${count[hubbub-echo]}" -le "${count[tt-echo]}" ]; then
    crates_verdict="met (${count[hubbub-echo]} <= ${count[tt-echo]})"
else
    crates_verdict="NOT met (${count[hubbub-echo]} > ${count[tt-echo]})"
fi
echo "   (a) hubbub-echo pulls no more unique crates than tt-echo: $crates_verdict"
comm -23 "$work/hubbub-echo-nd.names" "$work/tt-echo.names" >"$work/only-nd"
comm -13 "$work/hubbub-echo-nd.names" "$work/tt-echo.names" >"$work/only-tt-nd"
echo "   without deflate (hubbub-tokio default-features = false): ${count[hubbub-echo-nd]} crates;" \
    "only in hubbub-echo-nd: $(with_versions hubbub-echo-nd "$work/only-nd");" \
    "hubbub-echo minus hubbub-echo-nd: $(comm -23 "$work/hubbub-echo.names" "$work/hubbub-echo-nd.names" | tr '\n' ' ')"

echo
echo "== crates of hubbub-tokio's optional features, in hubbub-echo's tree"
forbidden_ok=1
for crate in serde_derive syn prometheus-client mime_guess dotenvy; do
    if ! grep -q "^$crate " "$work/hubbub-echo.crates"; then
        printf '   %-18s absent\n' "$crate"
        continue
    fi
    # Direct dependents (depth 1 of the inverted tree) of every version in
    # the tree ("name@version": the lock file may hold other versions for
    # other targets), the crate itself excluded.
    dependents="$(grep "^$crate " "$work/hubbub-echo.crates" | while read -r name ver; do
        (cd "$work/hubbub-echo" && "${tree_cmd[@]}" -i "$name@${ver#v}" --depth 1)
    done | awk -v c="$crate" 'NF >= 2 && $1 != c {print $1}' | sort -u)"
    # Crates that are only there because of other allowed proc-macro helpers.
    if [ "$crate" = syn ] && [ "$(echo "$dependents" | tr '\n' ' ')" = "tokio-macros " ]; then
        printf '   %-18s present, pulled only by tokio-macros (the app'"'"'s `#[tokio::main]`; tt-echo has it too): ok\n' "$crate"
    else
        printf '   %-18s PRESENT, pulled by: %s\n' "$crate" "$(echo "$dependents" | tr '\n' ' ')"
        forbidden_ok=0
    fi
done
if [ "$forbidden_ok" = 1 ]; then forbidden_verdict="none of them (syn only via tokio-macros)"; else forbidden_verdict="SOME PRESENT"; fi
echo "   verdict: $forbidden_verdict"

# ------------------------------------------------------------- the builds
echo
echo "== clean release builds: cargo build --release --frozen, empty CARGO_TARGET_DIR each, $rounds round(s), order alternating"
declare -A times
# timed_build APP ROUND: prints the wall-clock seconds of one clean build.
timed_build() {
    local app="$1" target="$work/target-$1-$2" t0 t1 log="$work/build-$1-$2.log"
    rm -rf "$target"
    t0="$(date +%s.%N)"
    if ! (cd "$work/$app" && CARGO_TARGET_DIR="$target" timeout "$build_timeout" \
        cargo build --release --frozen) >"$log" 2>&1; then
        echo "build of $app failed or timed out after ${build_timeout}s:" >&2
        tail -n 30 "$log" >&2
        return 1
    fi
    t1="$(date +%s.%N)"
    rm -rf "$target"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then order=(hubbub-echo tt-echo hubbub-echo-nd); else order=(hubbub-echo-nd tt-echo hubbub-echo); fi
    line="   round $r:"
    for app in "${order[@]}"; do
        s="$(timed_build "$app" "$r")"
        times[$app]="${times[$app]:-} $s"
        line+="  $app ${s}s (load $(cut -d' ' -f1 /proc/loadavg))"
    done
    echo "$line"
done

median() {
    tr ' ' '\n' | grep -v '^$' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med_h="$(echo "${times[hubbub-echo]}" | median)"
med_t="$(echo "${times[tt-echo]}" | median)"
med_n="$(echo "${times[hubbub-echo-nd]}" | median)"
ratio="$(awk -v h="$med_h" -v t="$med_t" 'BEGIN { printf "%.2f", h / t }')"
ratio_n="$(awk -v h="$med_n" -v t="$med_t" 'BEGIN { printf "%.2f", h / t }')"
echo "   medians: hubbub-echo ${med_h}s, tt-echo ${med_t}s, hubbub-echo-nd ${med_n}s;" \
    "ratio hubbub/tt $ratio, no deflate $ratio_n"
if awk -v r="$ratio" 'BEGIN { exit !(r <= 1.1) }'; then
    time_verdict="met ($ratio <= 1.1)"
else
    time_verdict="NOT met ($ratio > 1.1)"
fi
echo "   (b) hubbub-echo builds in at most 1.1x tt-echo's time: $time_verdict"

# ------------------------------------------------------ optional --timings
if [ "$timings" = 1 ] || { [ "$timings" = auto ] && [[ "$time_verdict" == NOT* ]]; }; then
    echo
    echo "== cargo build --release --timings (one more clean build each): slowest units"
    for app in hubbub-echo tt-echo; do
        target="$work/target-$app-timings"
        (cd "$work/$app" && CARGO_TARGET_DIR="$target" timeout "$build_timeout" \
            cargo build --release --frozen --timings) >"$work/timings-$app.log" 2>&1
        html="$(ls "$target"/cargo-timings/cargo-timing-*.html 2>/dev/null | head -n 1)"
        echo "   $app: $(grep -o 'Finished .*' "$work/timings-$app.log" | tail -n 1)"
        if [ -n "$html" ] && command -v python3 >/dev/null; then
            python3 - "$html" <<'EOF'
import json, re, sys
html = open(sys.argv[1]).read()
m = re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S)
units = json.loads(m.group(1)) if m else []
total = sum(u["duration"] for u in units)
print(f"     {len(units)} units, {total:.1f} s of compile time summed over both CPUs")
for u in sorted(units, key=lambda u: -u["duration"])[:10]:
    print(f"     {u['duration']:6.2f} s  {u['name']} {u['version']} {u.get('target', '')}")
EOF
        fi
        rm -rf "$target"
    done
fi

# ------------------------------------------------------------------ table
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
elapsed=$(($(date +%s) - t_start))
echo
echo "== summary ($started, ${elapsed} s, load average $load_before before, $load_after after)"
echo
echo '| app | unique crates | median clean release build, s | builds, s |'
echo '|---|---:|---:|---|'
echo "| tt-echo (tokio-tungstenite 0.30, defaults) | ${count[tt-echo]} | $med_t | $(echo "${times[tt-echo]}" | sed 's/^ //; s/ /, /g') |"
echo "| hubbub-echo (hubbub-tokio, defaults) | ${count[hubbub-echo]} | $med_h | $(echo "${times[hubbub-echo]}" | sed 's/^ //; s/ /, /g') |"
echo "| hubbub-echo-nd (hubbub-tokio, default-features = false: no deflate) | ${count[hubbub-echo-nd]} | $med_n | $(echo "${times[hubbub-echo-nd]}" | sed 's/^ //; s/ /, /g') |"
echo "| ratio hubbub-echo/tt-echo (no deflate) | | $ratio ($ratio_n) | |"
echo
echo "Default features: (a) crates: $crates_verdict; (b) build time: $time_verdict; optional-feature crates in hubbub-echo: $forbidden_verdict."
echo "Crates counted with: ${tree_cmd[*]} (host target), unique 'name version', the app excluded."
echo "hubbub at $rev ($dirty changed file(s) in core/, ws/, runtime-tokio/, Cargo.lock)."
echo "Command: DEPS_ROUNDS=$rounds DEPS_TIMINGS=$timings bash bench/deps.sh"
