#!/usr/bin/env bash
# make bench: ckpt against its baselines, measured in this one script with the same page-cache state.
# Inputs are generated here. Page cache: WARM (every input is read once before timing). Outputs: none are written
# by the timed commands (checksums and reads only). Each figure is the median of $RUNS runs; results are ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DIR=${BENCH_DIR:-.build/bench}
CKPT=.build/release/ckpt
GEN=.build/release/ckpt-bench
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y -qq time >/dev/null 2>&1 || true; }

mkdir -p "$DIR"

# time_us CMD...: wall-clock microseconds of one run (output discarded).
time_us() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
# median_us CMD...: median of $RUNS runs.
median_us() { for _ in $(seq "$RUNS"); do time_us "$@"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# rss_kb CMD...: peak RSS of one run.
rss_kb() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
# paired_us "CMD A" "CMD B": runs A and B alternately $RUNS times (so both see the same disk and cache drift) and
# prints "medianA medianB". Each command is a shell string; "rm -rf" of outputs belongs inside it.
paired_us() {
  local a="" b=""
  for _ in $(seq "$RUNS"); do
    sync; a="$a $(time_us sh -c "$1")"
    sync; b="$b $(time_us sh -c "$2")"
  done
  printf "%s %s\n" "$(echo $a | tr ' ' '\n' | sort -n | awk '{x[NR]=$1} END {print x[int((NR+1)/2)]}')" \
                    "$(echo $b | tr ' ' '\n' | sort -n | awk '{x[NR]=$1} END {print x[int((NR+1)/2)]}')"
}
want() { [ -z "${BENCH_ONLY:-}" ] && [ -z "${BENCH_LARGE:-}" ] || [[ ",${BENCH_ONLY:-}," == *",$1,"* ]]; }  # BENCH_ONLY=checksum,read,convert,delta,lora,quantize,forward,tokenize
if want checksum || want read; then
if [ ! -f "$DIR/one/model.safetensors" ]; then
  echo "generating inputs in $DIR (1.2 GB single file; 1.2 GB in 4 shards)..."
  rm -rf "$DIR/one" "$DIR/shards"
  $GEN gen "$DIR/one" 1.2GB 1
  $GEN gen "$DIR/shards" 1.2GB 4
fi
ONE="$DIR/one/model.safetensors"
SHARDS=("$DIR"/shards/model-*.safetensors)
BYTES_ONE=$(stat -c %s "$ONE")
BYTES_SHARDS=$(cat "${SHARDS[@]}" | wc -c)
cat "$ONE" "${SHARDS[@]}" > /dev/null   # warm the page cache
fi
gbps() { awk -v b="$1" -v us="$2" 'BEGIN {printf "%.2f", b / us / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

if want checksum; then
echo "== checksum, one file ($(awk -v b=$BYTES_ONE 'BEGIN{printf "%.2f", b/1e9}') GB, warm cache, median of $RUNS)"
sha=$(median_us sha256sum "$ONE")
ossl=$(median_us openssl dgst -sha256 "$ONE")
ck=$(median_us $CKPT checksum "$ONE")
ck1=$(CKPT_THREADS=1 median_us env CKPT_THREADS=1 $CKPT checksum "$ONE")
printf "  %-34s %8s GB/s\n" "sha256sum" "$(gbps $BYTES_ONE $sha)" "openssl dgst -sha256" "$(gbps $BYTES_ONE $ossl)" \
  "ckpt checksum (read ∥ hash)" "$(gbps $BYTES_ONE $ck)" "ckpt checksum, 1 thread" "$(gbps $BYTES_ONE $ck1)"
echo "  ratio ckpt / sha256sum:    $(ratio $sha $ck)×   (goal ≈ 3.2×)"
echo "  ratio ckpt / openssl dgst: $(ratio $ossl $ck)×   (goal ≥ 1.0×)"
echo "  peak RSS ckpt: $(rss_kb $CKPT checksum "$ONE") KB"

echo "== checksum, ${#SHARDS[@]} shards ($(awk -v b=$BYTES_SHARDS 'BEGIN{printf "%.2f", b/1e9}') GB)"
shas=$(median_us sha256sum "${SHARDS[@]}")
ossls=$(median_us openssl dgst -sha256 "${SHARDS[@]}")
cks=$(median_us $CKPT checksum "${SHARDS[@]}")
cks1=$(median_us env CKPT_THREADS=1 $CKPT checksum "${SHARDS[@]}")
printf "  %-34s %8s GB/s\n" "sha256sum" "$(gbps $BYTES_SHARDS $shas)" "openssl dgst -sha256" "$(gbps $BYTES_SHARDS $ossls)" \
  "ckpt checksum (2 cores)" "$(gbps $BYTES_SHARDS $cks)" "ckpt checksum, 1 thread" "$(gbps $BYTES_SHARDS $cks1)"
echo "  ratio ckpt shards rate / ckpt one-file rate: $(awk -v a=$BYTES_SHARDS -v ta=$cks -v b=$BYTES_ONE -v tb=$ck 'BEGIN{printf "%.2f", (a/ta)/(b/tb)}')×   (goal ≥ 1.8×)"
echo "  ratio ckpt / sha256sum: $(ratio $shas $cks)×;  ckpt / openssl dgst: $(ratio $ossls $cks)×"
echo "  peak RSS ckpt: $(rss_kb $CKPT checksum "${SHARDS[@]}") KB"

echo "== per-tensor manifest (checksum --tensors: every file and every tensor hashed), ${#SHARDS[@]} shards"
ckt=$(median_us $CKPT checksum --tensors "$DIR/shards")
echo "  ckpt checksum --tensors: $(gbps $((BYTES_SHARDS * 2)) $ckt) GB/s hashed ($(ratio $ckt $cks)× the time of the file checksum; twice the bytes)"
echo "  peak RSS: $(rss_kb $CKPT checksum --tensors "$DIR/shards") KB"
fi

if want read; then
echo "== mapped read of every tensor byte vs cat (one file)"
cat_us=$(median_us sh -c "cat '$ONE' > /dev/null")
rd=$(median_us $GEN read "$DIR/one")
printf "  %-34s %8s GB/s\n" "cat FILE > /dev/null" "$(gbps $BYTES_ONE $cat_us)" "ckpt mapped read (madvise release)" "$(gbps $BYTES_ONE $rd)"
echo "  ratio ckpt read / cat: $(ratio $cat_us $rd)×"
echo "  peak RSS ckpt read: $(rss_kb $GEN read "$DIR/one") KB (file is $((BYTES_ONE / 1024)) KB)"
fi

if want convert; then
echo "== convert .bin → safetensors (fsync on for ckpt and the floor; input in the page cache)"
for size in 1.1GB 4.2GB; do
  src="$DIR/bin-$size"
  [ -f "$src/.ckpt-journal.json" ] || { rm -rf "$src"; $GEN gen "$src" "$size" 3 bin; }
  bytes_in=$(cat "$src"/*.bin | wc -c)
  cat "$src"/*.bin > /dev/null
  out="$DIR/convert-out"
  rm -rf "$out"; $CKPT convert "$src" "$out" > /dev/null
  bytes_out=$(cat "$out"/*.safetensors | wc -c)
  rss=$(rm -rf "$out"; rss_kb $CKPT convert "$src" "$out")
  # The I/O floor: read every input byte (cat) and write and fsync a file of the output's size (dd, 4 MiB blocks).
  read -r conv floor < <(paired_us "rm -rf '$out'; $CKPT convert '$src' '$out' > /dev/null" \
    "rm -f '$DIR/floor.out'; cat '$src'/*.bin > /dev/null && dd if=/dev/zero of='$DIR/floor.out' bs=4M count=$bytes_out iflag=count_bytes conv=fsync status=none")
  echo "  $size input ($(awk -v b=$bytes_in 'BEGIN{printf "%.2f", b/1e9}') GB): ckpt $(awk -v u=$conv 'BEGIN{printf "%.2f", u/1e6}') s, floor $(awk -v u=$floor 'BEGIN{printf "%.2f", u/1e6}') s, ratio $(ratio $conv $floor)× (goal ≤ 1.2×), peak RSS $rss KB (goal ≤ 65536 KB, flat)"
  rm -rf "$out" "$DIR/floor.out"
done
fi

# run_stats "CMD": "wall user sys maxrss_kb" of one run of a shell command (user/sys include its children).
run_stats() { /usr/bin/time -f "%e %U %S %M" sh -c "$1" 2>&1 >/dev/null | tail -1; }
# paired_stats "CMD A" "CMD B": A and B alternately $RUNS times (same disk and cache drift for both); prints the
# medians "wallA userA sysA rssA wallB userB sysB rssB".
paired_stats() {
  local fa="$DIR/.stats-a" fb="$DIR/.stats-b"; : > "$fa"; : > "$fb"
  for _ in $(seq "$RUNS"); do sync; run_stats "$1" >> "$fa"; sync; run_stats "$2" >> "$fb"; done
  med() { sort -n | awk '{x[NR]=$1} END {print x[int((NR+1)/2)]}'; }
  local out=""
  for f in "$fa" "$fb"; do for c in 1 2 3 4; do out="$out $(cut -d' ' -f$c "$f" | med)"; done; done
  echo $out
}
# delta_bench LABEL BASE DELTA: apply-delta vs the I/O floor (read both inputs, write and fsync the output's size).
delta_bench() {
  local label=$1 base=$2 delta=$3 out="$DIR/delta-out"
  cat "$base"/*.safetensors "$delta"/*.bin > /dev/null
  rm -rf "$out"; $CKPT apply-delta --base "$base" --delta "$delta" --target "$out" > /dev/null
  local bytes_out; bytes_out=$(cat "$out"/*.safetensors | wc -c)
  read -r cw cu cs cr fw fu fs fr < <(paired_stats "rm -rf '$out'; $CKPT apply-delta --base '$base' --delta '$delta' --target '$out'" \
    "rm -f '$DIR/floor.out'; cat '$base'/*.safetensors '$delta'/*.bin > /dev/null && dd if=/dev/zero of='$DIR/floor.out' bs=4M count=$bytes_out iflag=count_bytes conv=fsync status=none")
  echo "  $label ($(awk -v b=$bytes_out 'BEGIN{printf "%.2f", b/1e9}') GB out), medians of $RUNS alternated pairs:"
  echo "    ckpt:  wall $cw s, CPU $cu user + $cs sys = $(awk -v a=$cu -v b=$cs 'BEGIN{printf "%.2f", a+b}') s, peak RSS $((cr / 1024)) MiB"
  echo "    floor: wall $fw s, CPU $fu user + $fs sys = $(awk -v a=$fu -v b=$fs 'BEGIN{printf "%.2f", a+b}') s"
  echo "    ratio: wall $(ratio $cw $fw)× (goal ≤ 1.2×), CPU $(awk -v a=$cu -v b=$cs -v c=$fu -v d=$fs 'BEGIN{printf "%.2f", (a+b)/(c+d)}')× (goal ≤ 1.5×), peak RSS $((cr / 1024)) MiB (goal ≤ 64 MiB)"
  rm -rf "$out" "$DIR/floor.out"
}
# rss_row LABEL CMD OUT: peak RSS of one run of a writing command (its output removed before and after).
rss_row() { rm -rf "$3"; echo "    $1: peak RSS $(( $(rss_kb sh -c "$2") / 1024 )) MiB"; rm -rf "$3"; }

if want delta; then
echo "== apply-delta on a generated 1B LLaMA: safetensors base + .bin delta in 3 shards (as vicuna deltas ship); fsync on"
base="$DIR/llama-1b"; delta="$DIR/llama-1b-delta"
[ -f "$base/.ckpt-journal.json" ] || { rm -rf "$base"; $GEN gen-llama "$base"; }
[ -f "$delta/.ckpt-journal.json" ] || { rm -rf "$delta"; $GEN gen-llama "$delta" 2048 5632 16 32000 3 bin delta 2; }
delta_bench "1B (hidden 2048, 16 layers)" "$base" "$delta"
echo "  peak RSS of the other writing commands on the same model:"
rss_row "convert → .bin" "$CKPT convert '$base' '$DIR/rss-out' --to bin" "$DIR/rss-out"
rss_row "quantize int8-channel" "$CKPT quantize '$base' '$DIR/rss-out' --scheme int8-channel" "$DIR/rss-out"
rss_row "quantize q8_0" "$CKPT quantize '$base' '$DIR/rss-out.gguf' --scheme q8_0" "$DIR/rss-out.gguf"
fi

if want lora; then
echo "== merge-lora: a rank-16 adapter on every linear layer of the generated 1B LLaMA → fp16 (fsync on)"
base="$DIR/llama-1b"; adapter="$DIR/lora-1b-r16"; out="$DIR/lora-out"
[ -f "$base/.ckpt-journal.json" ] || { rm -rf "$base"; $GEN gen-llama "$base"; }
[ -f "$adapter/.ckpt-journal.json" ] || { rm -rf "$adapter"; $GEN gen-lora "$adapter" "$base" 16; }
# FastChat's apply_lora.py loads the base's tokenizer: give the generated base the fixture's.
for f in tokenizer.model tokenizer_config.json; do [ -f "$base/$f" ] || cp "Fixtures/tiny-llama/$f" "$base/$f"; done
cat "$base"/*.safetensors "$adapter"/*.safetensors > /dev/null
rm -rf "$out"; $CKPT merge-lora --base "$base" --lora "$adapter" --target "$out" > /dev/null
bytes_out=$(cat "$out"/*.safetensors | wc -c)
read -r cw cu cs cr fw fu fs fr < <(paired_stats "rm -rf '$out'; $CKPT merge-lora --base '$base' --lora '$adapter' --target '$out'" \
  "rm -f '$DIR/floor.out'; cat '$base'/*.safetensors '$adapter'/*.safetensors > /dev/null && dd if=/dev/zero of='$DIR/floor.out' bs=4M count=$bytes_out iflag=count_bytes conv=fsync status=none")
adapter_mib=$(( $(stat -c %s "$adapter/adapter_model.safetensors") / 1048576 ))
echo "  medians of $RUNS alternated pairs ($(awk -v b=$bytes_out 'BEGIN{printf "%.2f", b/1e9}') GB out, adapter $adapter_mib MiB):"
echo "    ckpt:  wall $cw s, CPU $cu user + $cs sys = $(awk -v a=$cu -v b=$cs 'BEGIN{printf "%.2f", a+b}') s, peak RSS $((cr / 1024)) MiB"
echo "    floor: wall $fw s, CPU $fu user + $fs sys = $(awk -v a=$fu -v b=$fs 'BEGIN{printf "%.2f", a+b}') s"
echo "    ratio: wall $(ratio $cw $fw)× (goal ≤ 1.3×), CPU $(awk -v a=$cu -v b=$cs -v c=$fu -v d=$fs 'BEGIN{printf "%.2f", (a+b)/(c+d)}')×, peak RSS $((cr / 1024)) MiB (goal ≤ 64 + $adapter_mib MiB)"
if [ -x .venv/bin/python ] && .venv/bin/python -c "import fastchat.model.apply_lora, peft" 2>/dev/null; then
  rm -rf "$DIR/fastchat-out"
  read -r pw pu ps pr < <(run_stats ".venv/bin/python -m fastchat.model.apply_lora --base-model-path '$base' --target-model-path '$DIR/fastchat-out' --lora-path '$adapter'")
  echo "    FastChat apply_lora.py (same inputs, same run): wall $pw s, CPU $pu user + $ps sys, peak RSS $((pr / 1024)) MiB"
  echo "    ckpt vs FastChat: $(ratio $pw $cw)× faster (wall), $(( pr / (cr > 0 ? cr : 1) ))× less memory"
  rm -rf "$DIR/fastchat-out"
else
  echo "    SKIPPED FastChat's apply_lora.py: no Python environment with fschat and peft (make fixtures-env)"
fi
rm -rf "$out" "$DIR/floor.out"
fi

if [ -n "${BENCH_LARGE:-}" ]; then
echo "== bench-large: a model of LLaMA-7B widths (hidden 4096, intermediate 11008, vocab 32000) with 16 layers (≈7 GB)"
need=$((26 * 1000 * 1000 * 1000))
free=$(df -B1 --output=avail "$DIR" | tail -1)
if [ "$free" -lt "$need" ]; then
  echo "  SKIPPED: $(awk -v b=$free 'BEGIN{printf "%.1f", b/1e9}') GB free in $DIR, needs 26 GB (base + delta + output)"
else
  base="$DIR/llama-7bw"; delta="$DIR/llama-7bw-delta"
  [ -f "$base/.ckpt-journal.json" ] || { rm -rf "$base"; $GEN gen-llama "$base" 4096 11008 16 32000 2 safetensors weights 1; }
  [ -f "$delta/.ckpt-journal.json" ] || { rm -rf "$delta"; $GEN gen-llama "$delta" 4096 11008 16 32000 3 bin delta 2; }
  RUNS=${LARGE_RUNS:-3} delta_bench "7B widths" "$base" "$delta"
  echo "  peak RSS of the other writing commands on the same model:"
  rss_row "convert → .bin" "$CKPT convert '$base' '$DIR/rss-out' --to bin" "$DIR/rss-out"
  rss_row "quantize int8-channel" "$CKPT quantize '$base' '$DIR/rss-out' --scheme int8-channel" "$DIR/rss-out"
  rss_row "quantize q8_0" "$CKPT quantize '$base' '$DIR/rss-out.gguf' --scheme q8_0" "$DIR/rss-out.gguf"
fi
fi

if want quantize; then
echo "== quantize the generated 1B f16 LLaMA (1.9 GB) end to end (fsync on; floor: read input + write and fsync the output's size)"
src="$DIR/llama-1b"
[ -f "$src/.ckpt-journal.json" ] || { rm -rf "$src"; $GEN gen-llama "$src"; }
cat "$src"/*.safetensors > /dev/null
for scheme in q8_0 int8-channel; do
  if [ "$scheme" = q8_0 ]; then out="$DIR/quant.gguf"; else out="$DIR/quant-ct"; fi
  rm -rf "$out"; $CKPT quantize "$src" "$out" --scheme $scheme > /dev/null
  bytes_out=$(du -cb "$out" | tail -1 | cut -f1)
  rss=$(rm -rf "$out"; rss_kb $CKPT quantize "$src" "$out" --scheme $scheme)
  read -r q floor < <(paired_us "rm -rf '$out'; $CKPT quantize '$src' '$out' --scheme $scheme > /dev/null" \
    "rm -f '$DIR/floor.out'; cat '$src'/*.safetensors > /dev/null && dd if=/dev/zero of='$DIR/floor.out' bs=4M count=$bytes_out iflag=count_bytes conv=fsync status=none")
  echo "  $scheme: ckpt $(awk -v u=$q 'BEGIN{printf "%.2f", u/1e6}') s, floor $(awk -v u=$floor 'BEGIN{printf "%.2f", u/1e6}') s, ratio $(ratio $q $floor)× (goal ≤ 1.5×), peak RSS $rss KB"
  rm -rf "$out" "$DIR/floor.out"
done

echo "== Q8_0 kernel alone vs gguf-py's numpy quantizer (same 64 Mi float32 values in memory)"
PY=""
if [ -x .venv/bin/python ] && .venv/bin/python -c "import gguf" 2>/dev/null; then PY=.venv/bin/python
elif [ -x "$DIR/venv/bin/python" ]; then PY="$DIR/venv/bin/python"
else
  echo "  installing gguf + numpy from PyPI into a throwaway venv ($DIR/venv)"
  if python3 -m venv "$DIR/venv" && "$DIR/venv/bin/pip" install -q gguf numpy; then PY="$DIR/venv/bin/python"; fi
fi
N=$((64 * 1024 * 1024))
ck=$($GEN q8-kernel $N)
if [ -n "$PY" ]; then
  np=$($PY Benchmarks/q8_kernel.py $N)
  echo "  ckpt $(awk -v v=$ck 'BEGIN{printf "%.0f", v/1e6}') M values/s ($(nproc) cores), gguf-py numpy $(awk -v v=$np 'BEGIN{printf "%.0f", v/1e6}') M values/s: ratio $(ratio $ck $np)× (goal ≥ 20×)"
else
  echo "  SKIPPED the gguf-py comparison: could not install gguf from PyPI (ckpt alone: $(awk -v v=$ck 'BEGIN{printf "%.0f", v/1e6}') M values/s)"
fi
fi

if want forward; then
echo "== forward pass on a generated ≈1B-parameter f16 LLaMA (hidden 2048, 16 layers, vocab 32000): 32-token prefill, 32 generated tokens"
model="$DIR/llama-1b"
[ -f "$model/.ckpt-journal.json" ] || { rm -rf "$model"; $GEN gen-llama "$model"; }
cat "$model"/model.safetensors > /dev/null
read -r cp cg < <($GEN forward "$model")
weights=$(stat -c %s "$model/model.safetensors")
rd=$(median_us $GEN read "$model")
echo "  ckpt: prefill $cp tokens/s, generation $cg tokens/s; weight-read floor $(awk -v b=$weights -v us=$rd 'BEGIN{printf "%.2f", 1e6/us}') tokens/s (all $(awk -v b=$weights 'BEGIN{printf "%.2f", b/1e9}') GB of weights per token at the mapped-read rate)"
echo "  generation vs floor: $(awk -v g=$cg -v b=$weights -v us=$rd 'BEGIN{printf "%.2f", (1e6/us)/g}')× the floor's time per token (goal ≤ 1.5×)"
PY=""
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, transformers" 2>/dev/null; then PY=.venv/bin/python; fi
if [ -n "$PY" ]; then
  read -r tp32 tg32 < <($PY Benchmarks/forward_transformers.py "$model" f32 2>/dev/null)
  read -r tpbf tgbf < <($PY Benchmarks/forward_transformers.py "$model" bf16 2>/dev/null)
  echo "  transformers fp32: prefill $tp32, generation $tg32 tokens/s; bf16: prefill $tpbf, generation $tgbf tokens/s"
  echo "  ckpt / transformers fp32: prefill $(ratio $cp $tp32)×, generation $(ratio $cg $tg32)× (goal > 1×)"
else
  echo "  SKIPPED transformers: no Python environment with torch and transformers (run 'make fixtures-env'; torch is several GB)"
fi
fi

if want tokenize; then
echo "== tokenize: encode throughput, ckpt vs the reference library on the same text in the same run"
echo "   (best of 5 in-process runs each, tokenizer loaded once; Fixtures/tokenizers/corpus.txt: one string, and its lines as a batch)"
CORPUS=Fixtures/tokenizers/corpus.txt
CB=$(stat -c %s $CORPUS); CL=$(grep -c . $CORPUS)
PY="${BENCH_PYTHON:-}"
if [ -z "$PY" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
if [ -n "$PY" ] && ! "$PY" -c "import sentencepiece, tokenizers" 2>/dev/null; then PY=""; fi
# row LABEL CKPT_TOKENIZER REF_LIB REF_TOKENIZER MODE THREADS: tokens/s of both and the ratio
row() {
  local label=$1 tok=$2 lib=$3 ref=$4 mode=$5 th=$6 renv
  read -r ckn cks < <($GEN tokenize "$tok" $CORPUS $mode $th)
  if [ -n "$PY" ]; then
    if [ "$lib" = tokenizers ] && [ "$th" = 1 ]; then renv="TOKENIZERS_PARALLELISM=false"; else renv="TOKENIZERS_PARALLELISM=true RAYON_NUM_THREADS=$th"; fi
    read -r rfn rfs < <(env $renv "$PY" Benchmarks/tokenize_reference.py $lib "$ref" $CORPUS $mode $th)
    [ "$ckn" = "$rfn" ] || echo "  WARNING: token counts differ (ckpt $ckn, $lib $rfn)"
    printf "  %-46s ckpt %6.2f Mtok/s (%5.1f MB/s)   %-13s %6.2f Mtok/s (%5.1f MB/s)   ratio %5.2f× (goal ≥ 1×)\n" "$label" \
      "$(awk -v n=$ckn -v s=$cks 'BEGIN{print n/s/1e6}')" "$(awk -v b=$CB -v s=$cks 'BEGIN{print b/s/1e6}')" "$lib" \
      "$(awk -v n=$rfn -v s=$rfs 'BEGIN{print n/s/1e6}')" "$(awk -v b=$CB -v s=$rfs 'BEGIN{print b/s/1e6}')" "$(awk -v a=$rfs -v b=$cks 'BEGIN{print a/b}')"
  else
    printf "  %-46s ckpt %6.2f Mtok/s (%5.1f MB/s)   (no Python reference: set BENCH_PYTHON or run make fixtures-env)\n" "$label" \
      "$(awk -v n=$ckn -v s=$cks 'BEGIN{print n/s/1e6}')" "$(awk -v b=$CB -v s=$cks 'BEGIN{print b/s/1e6}')"
  fi
}
SPM=Fixtures/tokenizer/tokenizer.model; SPMJ=Fixtures/tiny-llama/tokenizer.json; BL=Fixtures/tokenizers/llama3.tokenizer.json
echo "  corpus: $CB bytes, $CL lines; SPM = tiny LLaMA tokenizer.model (1,000 pieces); byte-level = LLaMA-3-style tokenizer.json (3,266 tokens)"
row "SPM tokenizer.model, one string, 1 thread" $SPM sentencepiece $SPM one 1
row "SPM tokenizer.model, lines, 1 thread" $SPM sentencepiece $SPM lines 1
row "SPM tokenizer.model, lines, 2 threads" $SPM sentencepiece $SPM lines 2
row "SPM-style tokenizer.json, one string, 1 thread" $SPMJ tokenizers $SPMJ one 1
row "SPM-style tokenizer.json, lines, 1 thread" $SPMJ tokenizers $SPMJ lines 1
row "byte-level tokenizer.json, one string, 1 thread" $BL tokenizers $BL one 1
row "byte-level tokenizer.json, lines, 1 thread" $BL tokenizers $BL lines 1
row "byte-level tokenizer.json, lines, 2 threads" $BL tokenizers $BL lines 2
echo "== tokenize: no blow-up on runs of spaces (one string of 1 MiB vs 8 MiB of U+0020; ckpt, best of 5)"
SP1="$DIR/spaces-1MiB.txt"; SP8="$DIR/spaces-8MiB.txt"
head -c 1048576 /dev/zero | tr '\0' ' ' > "$SP1"; head -c 8388608 /dev/zero | tr '\0' ' ' > "$SP8"
for t in $SPM $SPMJ $BL Fixtures/tokenizers/qwen2.tokenizer.json; do
  read -r _ s1 < <($GEN tokenize "$t" "$SP1" one 1)
  read -r _ s8 < <($GEN tokenize "$t" "$SP8" one 1)
  printf "  %-46s 1 MiB %6.3f s, 8 MiB %6.3f s: %5.2f× (goal ≤ 10×)\n" "$(basename $(dirname $t))/$(basename $t)" $s1 $s8 "$(awk -v a=$s8 -v b=$s1 'BEGIN{print a/b}')"
done
fi
