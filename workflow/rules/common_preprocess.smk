# Helpers of preprocess.smk: what the cross-encoder trains on, and the tokenizer preprocess
# tokenizes with.


def training_file(kind):
    """What the cross-encoder trains on: the corpus, train queries, train qrels and hard
    negatives, with the title pseudo-queries added when train.pseudo_queries.n > 0."""
    if TRAIN["pseudo_queries"]["n"]:
        return str(OUT / "pseudo" / "train_aug" / PSEUDO_FILES[kind])
    if kind == "negs":
        return neg_file()
    return qrels_file("train") if kind == "train_qrels" else raw_file(kind)


def preprocess_flags():
    """cross_encoder.preprocess settings shared by its per-part jobs (preprocess.smk)."""
    return flags(
        config["preprocess"],
        "max_len",
        optional=("use_title",),
        tokenizer_name=tokenizer_name(),
        trust_remote_code=TRAIN["trust_remote_code"],
    )


def tokenizer_name():
    """What preprocess tokenizes with: preprocess.tokenizer, or the training model's."""
    return config["preprocess"]["tokenizer"] or TRAIN["model"]


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spm.model",
    "sentencepiece.bpe.model",
)


def tokenizer_files():
    """A local tokenizer folder's files, as inputs of preprocess: a tokenizer replaced in
    place re-tokenizes (another name or path does through params.tokenizer)."""
    folder = Path(tokenizer_name())
    if not folder.is_dir():
        return []
    return [str(folder / name) for name in TOKENIZER_FILES if (folder / name).is_file()]
