#!/usr/bin/env bash
# The nightly fuzz routine: run every fuzz target (fuzz/, its own cargo
# workspace; one per parser that reads peer bytes: handshake,
# client_response, frames, frames_deflate, http_request, envelope) for a
# bounded time; exit non-zero on a crash (the input is kept under
# fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    (default: 60 s each, all targets)
#
# The corpus lives in the repo (fuzz/corpus/<target>/) and grows in place:
# commit the new files libFuzzer adds when they are worth keeping (small
# ones; `cargo fuzz cmin` shrinks the set). CI does not fuzz; it replays the
# corpus through the same entry points with `cargo test -p hubbub-tests
# --test fuzz_corpus`. A crash found here is fixed in the parser's crate,
# with a regression test there and the input added to the corpus.
#
# How it fuzzes on stable Rust, the best this machine allows:
#   1. asan: cargo-fuzz with AddressSanitizer. cargo-fuzz passes nightly
#      flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the stable
#      compiler take them (the x86_64 Linux toolchain ships the ASan
#      runtime). The same as `cargo +nightly fuzz run`;
#   2. none: cargo-fuzz without a sanitizer (`-s none`), still with
#      RUSTC_BOOTSTRAP=1;
#   3. plain: no cargo-fuzz: the targets built as plain libFuzzer binaries,
#      with the sanitizer-coverage RUSTFLAGS cargo-fuzz would pass.
# cargo-fuzz is installed from crates.io when missing (FUZZ_NO_INSTALL=1 to
# skip). Environment: CARGO_TARGET_DIR (builds go to $CARGO_TARGET_DIR/fuzz),
# FUZZ_MODE=asan|none|plain to force a mode, FUZZ_ARGS for extra libFuzzer
# flags. By hand, one target: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run
# frames_deflate -- -max_total_time=60`.
set -euo pipefail
export RUSTC_BOOTSTRAP=1

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz_dir="$root/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(handshake client_response frames frames_deflate http_request envelope)
fi
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
target_dir="${target_dir%/}/fuzz"
host="$(rustc -vV | sed -n 's/^host: //p')"

log() { echo "fuzz.sh: $*" >&2; }

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
        echo asan
    else
        echo plain
    fi
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
    asan) for t in "${targets[@]}"; do
        (cd "$fuzz_dir" && cargo fuzz build --target-dir "$target_dir" "$t") >&2 || return 1
    done ;;
    none) for t in "${targets[@]}"; do
        (cd "$fuzz_dir" && cargo fuzz build -s none --target-dir "$target_dir" "$t") >&2 || return 1
    done ;;
    plain) build_plain ;;
    *)
        log "unknown FUZZ_MODE=$1"
        exit 2
        ;;
    esac
}

# Fall back a mode when a build fails (a toolchain without its sanitizer
# runtime, say).
until build "$mode"; do
    case "$mode" in
    asan) mode=none ;;
    none) mode=plain ;;
    *)
        log "cannot build the fuzz targets"
        exit 2
        ;;
    esac
    log "build failed; falling back to mode $mode"
done

failed=()
for t in "${targets[@]}"; do
    artifacts="$fuzz_dir/artifacts/$t"
    mkdir -p "$artifacts"
    log "running $t for ${seconds}s"
    start=$(date +%s)
    set +e
    case "$mode" in
    asan) (cd "$fuzz_dir" && cargo fuzz run --target-dir "$target_dir" "$t" -- \
        "${libfuzzer_flags[@]}" "${extra[@]}") ;;
    none) (cd "$fuzz_dir" && cargo fuzz run -s none --target-dir "$target_dir" "$t" -- \
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
