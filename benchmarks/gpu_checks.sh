#!/usr/bin/env bash
# The GPU checks the open issues name, as one prepared run on the GPU machine (the device tool), about 9 minutes
# on an H200 of a session's 15 (a machine's start takes 1-2 more). Each writes its output to $OUT/NAME.txt.
#
# Prepare here, once (../shared does not travel; carry/ is git-ignored):
#   mkdir -p carry/corpora carry/models && cp -r ../shared/corpora/pkd ../shared/corpora/tiny-shakespeare \
#     ../shared/corpora/MANIFEST.tsv carry/corpora/ && cp -r ../shared/models/gpt2-tokenizer carry/models/
# Then: run(command="bash benchmarks/gpu_checks.sh", carry=["carry"], timeout_s=600), and give_back.
# The device's image has torch, transformers, peft, typer, rich and scikit-learn; the project runs from its tree.
#
#   issue 13: GPT-2 small writes 64 tokens, CUDA graphs and without, against generate (goal >= 4x)
#   issue 18: 8 GB card, --micro-batch auto: GPT-2 small all weights, gpt2-medium LoRA, gpt2-large LoRA + checkpointing
#   issue 17: DDP on one process against none (goal: overhead under 3%)
#   issue 18: GPT-2 throughput at finetune's default 32 blocks per pass against plain transformers (goal >= 4x, 55% MFU)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD GHOSTWRITER_SHARED=$PWD/carry ASSISTANT_CORPORA=$PWD/carry/corpora
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

check() {  # check NAME SECONDS SCRIPT ARGS...: one benchmark, bounded, its output kept whatever happens
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit}s)"
    timeout "$limit" python3 "$@" 2>&1 | tee "$OUT/$name.txt"
}

check generate 90 benchmarks/gpt2_generate.py --device cuda
check memory 200 benchmarks/gpt2_memory.py
check ddp 110 benchmarks/ddp_scaling.py --device cuda --procs 1
check gpt2-throughput 130 benchmarks/gpt2_throughput.py --device cuda --micro 32
