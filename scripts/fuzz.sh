#!/usr/bin/env bash
# Run every hubbub-core fuzz target for a bounded time; exit non-zero on a
# crash (the input is kept under core/fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (default: 60 s each, all targets)
#
# How it fuzzes, the best this machine allows:
#   1. cargo-fuzz on nightly, with AddressSanitizer;
#   2. cargo-fuzz on stable, without a sanitizer (-s none);
#   3. no cargo-fuzz: the targets built as plain libFuzzer binaries on stable,
#      with the sanitizer-coverage RUSTFLAGS cargo-fuzz would pass.
# cargo-fuzz is installed from crates.io when missing (FUZZ_NO_INSTALL=1 to
# skip). Environment: CARGO_TARGET_DIR (builds go to $CARGO_TARGET_DIR/fuzz),
# FUZZ_MODE=nightly|stable|plain to force a mode, FUZZ_ARGS for extra
# libFuzzer flags.
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_dir="$root/core/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(handshake frames)
fi
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
target_dir="${target_dir%/}/fuzz"
host="$(rustc -vV | sed -n 's/^host: //p')"

log() { echo "fuzz.sh: $*" >&2; }

have_nightly() {
    rustup toolchain list 2>/dev/null | grep -q '^nightly' &&
        rustup run nightly rustc --version >/dev/null 2>&1
}

have_cargo_fuzz() {
    cargo fuzz --version >/dev/null 2>&1
}

pick_mode() {
    if [ -n "${FUZZ_MODE:-}" ]; then
        echo "$FUZZ_MODE"
        return
    fi
    if ! have_cargo_fuzz && [ "${FUZZ_NO_INSTALL:-0}" != 1 ]; then
        log "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
        cargo install cargo-fuzz --locked >&2 || log "cargo-fuzz install failed"
    fi
    if have_cargo_fuzz; then
        if have_nightly; then echo nightly; else echo stable; fi
    else
        echo plain
    fi
}

# Seed inputs (see each target's header for the layout). Written every run;
# the corpus directories are git-ignored and grow as libFuzzer finds more.
seed() {
    local corpus="$fuzz_dir/corpus/$1"
    mkdir -p "$corpus"
    case "$1" in
    handshake)
        printf 'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n' >"$corpus/seed-request"
        printf 'permessage-deflate; client_max_window_bits, x-webkit-deflate-frame' >"$corpus/seed-extensions"
        ;;
    frames)
        # Server role, whole input at once (flags 0, split 255): masked
        # "Hello" (RFC 6455 §5.7), a ping, a fragmented text and a close 1000.
        local hello='\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'
        local ping='\x89\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58'
        local frag='\x01\x83\x37\xfa\x21\x3d\x7f\x9f\x4d\x80\x82\x37\xfa\x21\x3d\x5b\x95'
        local close='\x88\x82\x37\xfa\x21\x3d\x34\x12'
        # shellcheck disable=SC2059 # the variables hold printf escapes
        printf "\\x00\\xff$hello$ping$frag$close" >"$corpus/seed-server"
        # The same, split in small pieces, with timers, actions and EOF.
        # shellcheck disable=SC2059
        printf "\\xe3\\x00\\x02\\x05\\x0b$hello$ping$frag$close" >"$corpus/seed-server-split"
        # Client role: unmasked server frames.
        printf '\x08\xff\x81\x05Hello\x89\x05Hello\x01\x03Hel\x80\x02lo\x88\x02\x03\xe8' >"$corpus/seed-client"
        printf '\xfa\x00\x01\x07\x81\x05Hello\x89\x05Hello\x01\x03Hel\x80\x02lo\x88\x02\x03\xe8' >"$corpus/seed-client-split"
        ;;
    esac
}

mode="$(pick_mode)"
log "mode: $mode; ${seconds}s per target: ${targets[*]}; builds in $target_dir"

libfuzzer_flags=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1)
# shellcheck disable=SC2206
extra=(${FUZZ_ARGS:-})

build_plain() {
    # What cargo-fuzz does on stable with `-s none`.
    RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks" \
        cargo build --release --manifest-path "$fuzz_dir/Cargo.toml" --target "$host" \
        --target-dir "$target_dir" --bins >&2
}

build() {
    local t
    case "$1" in
    nightly) for t in "${targets[@]}"; do
        (cd "$fuzz_dir" && cargo +nightly fuzz build --target-dir "$target_dir" "$t") >&2 || return 1
    done ;;
    stable) for t in "${targets[@]}"; do
        (cd "$fuzz_dir" && cargo fuzz build -s none --target-dir "$target_dir" "$t") >&2 || return 1
    done ;;
    plain) build_plain ;;
    *)
        log "unknown FUZZ_MODE=$1"
        exit 2
        ;;
    esac
}

# Fall back a mode when a build fails (a nightly without its sanitizer
# runtime, say).
until build "$mode"; do
    case "$mode" in
    nightly) mode=stable ;;
    stable) mode=plain ;;
    *)
        log "cannot build the fuzz targets"
        exit 2
        ;;
    esac
    log "build failed; falling back to mode $mode"
done

failed=()
for t in "${targets[@]}"; do
    seed "$t"
    artifacts="$fuzz_dir/artifacts/$t"
    mkdir -p "$artifacts"
    log "running $t for ${seconds}s"
    start=$(date +%s)
    set +e
    case "$mode" in
    nightly) (cd "$fuzz_dir" && cargo +nightly fuzz run --target-dir "$target_dir" "$t" -- \
        "${libfuzzer_flags[@]}" "${extra[@]}") ;;
    stable) (cd "$fuzz_dir" && cargo fuzz run -s none --target-dir "$target_dir" "$t" -- \
        "${libfuzzer_flags[@]}" "${extra[@]}") ;;
    plain) "$target_dir/$host/release/$t" -artifact_prefix="$artifacts/" "${libfuzzer_flags[@]}" \
        "${extra[@]}" "$fuzz_dir/corpus/$t" ;;
    esac
    status=$?
    set -e
    log "$t: exit $status after $(($(date +%s) - start))s"
    if [ $status -ne 0 ]; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    log "FAILED: ${failed[*]} (crash inputs in $fuzz_dir/artifacts/)"
    exit 1
fi
log "no crash in ${targets[*]}"
